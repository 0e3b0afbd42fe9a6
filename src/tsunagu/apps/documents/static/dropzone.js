// A drop zone around a file input: choosing a file or dropping one calls onFile(file).

let guarded = false;

export function wireDropzone(zone, input, onFile) {
  input.addEventListener("change", () => {
    if (input.files && input.files.length) onFile(input.files[0]);
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const type of ["dragleave", "dragend"]) {
    zone.addEventListener(type, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) return;
    try {
      input.files = files; // show the dropped file's name in the input too
    } catch {
      // older browsers cannot assign files; the hash is computed all the same
    }
    onFile(files[0]);
  });
  if (!guarded) {
    guarded = true;
    // A file dropped beside the zone would otherwise replace the page with the file.
    for (const type of ["dragover", "drop"]) {
      window.addEventListener(type, (event) => {
        if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) {
          event.preventDefault();
        }
      });
    }
  }
}

export function formatSize(bytes, lang) {
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toLocaleString(lang, { maximumFractionDigits: digits })} ${units[unit]}`;
}
