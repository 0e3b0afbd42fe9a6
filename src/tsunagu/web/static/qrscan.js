// The camera QR scanner shared by the apps' scan pages: BarcodeDetector where the browser has
// it, else jsQR (/static/vendor/jsQR.js, loaded by the page) on camera frames.
//
// The page holds an element with [data-scanner] containing [data-video], [data-canvas],
// [data-scan-status] and a [data-start] button, with the messages in data-msg-no-camera and
// data-msg-scanning. `startScanner(target)` wires it: `target(text)` returns the same-site
// path to open for a decoded text, or null to keep scanning.
export function startScanner(target) {
  const root = document.querySelector("[data-scanner]");
  const video = root.querySelector("[data-video]");
  const canvas = root.querySelector("[data-canvas]");
  const status = root.querySelector("[data-scan-status]");

  async function detector() {
    if ("BarcodeDetector" in window) {
      try {
        const formats = await window.BarcodeDetector.getSupportedFormats();
        if (formats.includes("qr_code")) {
          const d = new window.BarcodeDetector({ formats: ["qr_code"] });
          return async () => (await d.detect(video)).map((c) => c.rawValue);
        }
      } catch {
        /* fall through to jsQR */
      }
    }
    const context = canvas.getContext("2d", { willReadFrequently: true });
    return async () => {
      if (!window.jsQR || !video.videoWidth) return [];
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const code = window.jsQR(image.data, image.width, image.height);
      return code ? [code.data] : [];
    };
  }

  root.querySelector("[data-start]").addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch {
      status.textContent = root.dataset.msgNoCamera;
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    status.textContent = root.dataset.msgScanning;
    const detect = await detector();
    const tick = async () => {
      for (const text of await detect().catch(() => [])) {
        const path = target(text);
        if (path) {
          stream.getTracks().forEach((t) => t.stop());
          location.assign(path);
          return;
        }
      }
      requestAnimationFrame(tick);
    };
    tick();
  });
}
