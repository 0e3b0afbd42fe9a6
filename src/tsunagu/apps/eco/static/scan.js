// The shop's scanner: BarcodeDetector where the browser has it, else jsQR on camera frames.
// It only opens this site's redemption check for an eco-points code (nothing is burnt until
// the shop confirms on that page).
const root = document.querySelector("[data-scanner]");
const video = root.querySelector("[data-video]");
const canvas = root.querySelector("[data-canvas]");
const status = root.querySelector("[data-scan-status]");

function target(text) {
  try {
    const url = new URL(text, location.origin);
    const code = url.pathname === "/eco/shop" ? url.searchParams.get("code") : text;
    return code && /^ECO1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(code)
      ? `/eco/shop?code=${encodeURIComponent(code)}`
      : null;
  } catch {
    return null;
  }
}

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
