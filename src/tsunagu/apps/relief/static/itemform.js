// Post forms: show the chosen item's unit, and offer its sizes (clothing) as suggestions.
for (const form of document.querySelectorAll("[data-item-form]")) {
  const select = form.querySelector("select[name=item]");
  const unit = form.querySelector("[data-unit]");
  const sizes = form.querySelector("[data-size-field]");
  const update = () => {
    const option = select.selectedOptions[0];
    unit.textContent = option && option.value ? `(${option.dataset.unit})` : "";
    const list = sizes.querySelector("datalist");
    list.replaceChildren(
      ...(option?.dataset.sizes ? option.dataset.sizes.split(",") : []).map((size) => {
        const entry = document.createElement("option");
        entry.value = size;
        return entry;
      }),
    );
  };
  select.addEventListener("change", update);
  update();
}
