// Register and supersede forms: hash the chosen file here and fill the SHA-256 field.
// The file input has no name, so the file itself is never posted.
import { formatSize, wireDropzone } from "./dropzone.js";
import { hashFile } from "./sha256.js";

const fill = (template, values) =>
  template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));

for (const field of document.querySelectorAll("[data-hash-field]")) {
  const zone = field.querySelector("[data-dropzone]");
  const input = field.querySelector("[data-hash-file]");
  const target = field.querySelector("[data-hash-target]");
  const status = field.querySelector("[data-hash-status]");
  const submit = field.closest("form").querySelector("button[type=submit]");
  const lang = document.documentElement.lang;
  let run = 0;

  wireDropzone(zone, input, async (file) => {
    const mine = ++run;
    submit.disabled = true;
    target.value = "";
    status.textContent = field.dataset.msgHashing;
    try {
      const hex = await hashFile(file, (done, total) => {
        status.textContent = fill(field.dataset.msgProgress, {
          percent: Math.floor((100 * done) / total),
        });
      });
      if (mine !== run) return;
      target.value = hex;
      target.removeAttribute("aria-invalid");
      status.textContent = fill(field.dataset.msgDone, {
        name: file.name,
        size: formatSize(file.size, lang),
      });
    } catch {
      if (mine === run) status.textContent = field.dataset.msgFailed;
    } finally {
      if (mine === run) submit.disabled = false;
    }
  });
}
