// The shop's scanner (the camera loop is /static/qrscan.js). It only opens this site's
// redemption check for an eco-points code (nothing is burnt until the shop confirms on that
// page).
import { startScanner } from "/static/qrscan.js";

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

startScanner(target);
