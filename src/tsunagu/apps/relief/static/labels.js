// "Print the checked labels on A4": collect the checked match ids into the form's ids field.
const button = document.querySelector("[data-print-all]");
if (button) {
  const form = button.form;
  form.addEventListener("submit", (event) => {
    const ids = [...form.querySelectorAll("[data-pick]:checked")].map((box) => box.value);
    if (ids.length === 0) {
      event.preventDefault();
      return;
    }
    form.querySelector("[data-ids]").value = ids.join(",");
  });
}
