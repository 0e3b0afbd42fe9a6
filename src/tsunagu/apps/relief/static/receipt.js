// ⑦ The receipt form works offline: a receipt that cannot be sent now is kept on this device
// with its client_ref and sent when the browser is back online (or on the next page load).
// The server accepts a client_ref once, so a receipt sent twice is recorded exactly once.
const KEY = "tsunagu.relief.pendingReceipts";

function pending() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "[]");
  } catch {
    return [];
  }
}

function store(list) {
  localStorage.setItem(KEY, JSON.stringify(list));
}

function clientRef() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function send(entry) {
  const response = await fetch(`/api/v1/relief/matches/${entry.match}/receipt`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Accept-Language": entry.lang || "ja" },
    body: JSON.stringify(entry.body),
  });
  const answer = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, answer };
}

let flushing = false;
async function flush(onSent) {
  if (flushing || !navigator.onLine) return;
  flushing = true;
  try {
    for (const entry of pending()) {
      let result;
      try {
        result = await send(entry);
      } catch {
        return; // still offline: keep everything
      }
      // Sent, or refused for good (not a network fault): either way it leaves the device.
      if (result.ok || (result.status >= 400 && result.status < 500)) {
        store(pending().filter((e) => e.body.client_ref !== entry.body.client_ref));
        onSent?.(entry, result);
      }
    }
  } finally {
    flushing = false;
  }
}

const form = document.querySelector("[data-receipt-form]");
const status = form?.querySelector("[data-receipt-status]");

function report(entry, result) {
  if (!status || entry.match !== form.dataset.match) return;
  if (result.ok) {
    status.textContent = form.dataset.msgSent;
    status.className = "status ok";
    setTimeout(() => location.reload(), 600);
  } else {
    status.textContent = `${form.dataset.msgFailed} ${result.answer.detail || result.status}`;
    status.className = "status error";
  }
}

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const outcome = data.get("outcome");
    const body = { outcome, client_ref: clientRef() };
    const quantity = String(data.get("quantity") || "").trim();
    if (outcome !== "full" && /^\d+$/.test(quantity)) body.quantity = Number(quantity);
    const note = String(data.get("note") || "").trim();
    if (note) body.note = note;
    const entry = { match: form.dataset.match, lang: form.dataset.lang, body };
    store([...pending(), entry]);
    form.querySelector("button[type=submit]").disabled = true;
    if (!navigator.onLine) {
      status.textContent = form.dataset.msgOffline;
      status.className = "status saved";
      return;
    }
    status.textContent = form.dataset.msgSending;
    let result;
    try {
      result = await send(entry);
    } catch {
      status.textContent = form.dataset.msgOffline;
      status.className = "status saved";
      return;
    }
    store(pending().filter((e) => e.body.client_ref !== body.client_ref));
    if (!result.ok) form.querySelector("button[type=submit]").disabled = false;
    report(entry, result);
  });
}

window.addEventListener("online", () => flush(report));
flush(report);

// A receipt kept from an earlier visit while this device is still offline: say so.
if (form && !navigator.onLine && pending().length > 0) {
  status.textContent = form.dataset.msgPending.replace("{count}", pending().length);
  status.className = "status saved";
}
