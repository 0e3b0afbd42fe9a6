// The label scanner (the camera loop is /static/qrscan.js). It only navigates to the package
// page of a code read from this site's /r/ URLs.
import { startScanner } from "/static/qrscan.js";

function target(text) {
  try {
    const url = new URL(text, location.origin);
    const match = url.pathname.match(/^\/r\/([A-Za-z0-9_-]{1,64})$/);
    return match ? `/r/${match[1]}` : null;
  } catch {
    return null;
  }
}

startScanner(target);
