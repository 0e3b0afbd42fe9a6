// ⑦ The receipt form works offline: a receipt that cannot be sent now is kept on this device
// with its client_ref and sent when the browser is back online (or on the next page load of a
// page that loads this script: the package page /r/…, and the hub and inbox).
// The server accepts a client_ref once, so a receipt sent twice is recorded exactly once.
//
// What happens to a kept receipt when it is sent:
// - recorded (2xx): it leaves the device;
// - 401/403 (the session expired, or someone else is logged in): it stays, and the page says
//   to log in (with a link back here); it is sent after logging in;
// - 409/422 refused by the contract (already received, cancelled, bad quantity…): it leaves the
//   device and the refusal is listed on whatever relief page is open, until dismissed;
// - anything else (offline, a server error): it stays and is tried again later.
const KEY = "tsunagu.relief.pendingReceipts";
const FAILED = "tsunagu.relief.failedReceipts";

const TEXT = {
  ja: {
    login: "受領の記録を送るにはログインしてください。端末に保存した受領は消えていません。",
    loginLink: "ログイン",
    failedTitle: "次の受領は受け付けられませんでした（端末から削除しました）:",
    package: "荷物",
    dismiss: "閉じる",
    retry: "送信できませんでした。端末に保存したので、後でもう一度送ります。",
  },
  en: {
    login: "Log in to send the receipt. The receipt kept on this device is not lost.",
    loginLink: "Log in",
    failedTitle: "These receipts were refused (removed from this device):",
    package: "Package",
    dismiss: "Dismiss",
    retry: "Could not send. It is kept on this device and will be sent again later.",
  },
};

function read(key) {
  try {
    const value = JSON.parse(localStorage.getItem(key) || "[]");
    return Array.isArray(value) ? value : [];
  } catch {
    return [];
  }
}

const pending = () => read(KEY);
const store = (list) => localStorage.setItem(KEY, JSON.stringify(list));
const failures = () => read(FAILED);
const storeFailures = (list) => localStorage.setItem(FAILED, JSON.stringify(list));
const without = (list, ref) => list.filter((e) => e.body.client_ref !== ref);

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

// What to do with a kept receipt after an answer: "sent", "login", "refused" or "keep".
function verdict(result) {
  if (result.ok) return "sent";
  if (result.status === 401 || result.status === 403) return "login";
  if ((result.status === 409 || result.status === 422) && result.answer.code) return "refused";
  return "keep";
}

const form = document.querySelector("[data-receipt-form]");
const status = form?.querySelector("[data-receipt-status]");
const submit = form?.querySelector("button[type=submit]");
const lang = (form?.dataset.lang || document.documentElement.lang || "ja").startsWith("en")
  ? "en"
  : "ja";
const text = TEXT[lang];

// A box of its own at the top of the page, for pages without the receipt form.
function notice(id) {
  let box = document.getElementById(id);
  if (!box) {
    box = document.createElement("div");
    box.id = id;
    box.setAttribute("role", "status");
    (document.querySelector("main") || document.body).prepend(box);
  }
  return box;
}

function showLogin() {
  const next = location.pathname + location.search;
  const target = status || notice("relief-receipt-login");
  target.className = status ? "status error" : "alert error";
  target.replaceChildren(document.createTextNode(`${text.login} `));
  const link = document.createElement("a");
  link.href = `/login?next=${encodeURIComponent(next)}`;
  link.textContent = text.loginLink;
  link.dataset.receiptLogin = "";
  target.append(link);
}

function showFailures() {
  const list = failures();
  const existing = document.getElementById("relief-receipt-failures");
  if (list.length === 0) {
    existing?.remove();
    return;
  }
  const box = notice("relief-receipt-failures");
  box.className = "alert error";
  box.dataset.receiptFailures = "";
  const title = document.createElement("p");
  title.textContent = text.failedTitle;
  const items = document.createElement("ul");
  for (const f of list) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/relief/matches/${encodeURIComponent(f.match)}`;
    link.textContent = `${text.package} ${f.match}`;
    li.append(link, document.createTextNode(`: ${f.detail}`));
    items.append(li);
  }
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = text.dismiss;
  dismiss.addEventListener("click", () => {
    storeFailures([]);
    showFailures();
  });
  box.replaceChildren(title, items, dismiss);
}

function refused(entry, result) {
  const detail = result.answer.detail || result.answer.title || String(result.status);
  const list = failures().filter((f) => f.client_ref !== entry.body.client_ref);
  storeFailures([...list, { match: entry.match, client_ref: entry.body.client_ref, detail }]);
  showFailures();
}

function report(entry, result) {
  const onScreen = status && entry.match === form.dataset.match;
  const what = verdict(result);
  if (what === "login") {
    showLogin();
    return;
  }
  if (what === "refused" && !onScreen) refused(entry, result); // listed until dismissed
  if (!onScreen) return;
  if (what === "sent") {
    status.textContent = form.dataset.msgSent;
    status.className = "status ok";
    setTimeout(() => location.reload(), 600);
  } else if (what === "refused") {
    status.textContent = `${form.dataset.msgFailed} ${result.answer.detail || result.status}`;
    status.className = "status error";
    submit.disabled = false;
  } else {
    status.textContent = text.retry;
    status.className = "status saved";
  }
}

let flushing = false;
async function flush() {
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
      const what = verdict(result);
      if (what === "sent" || what === "refused") store(without(pending(), entry.body.client_ref));
      report(entry, result);
      if (what === "login") return; // the others would be refused the same way: keep them all
    }
  } finally {
    flushing = false;
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
    submit.disabled = true;
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
    const what = verdict(result);
    if (what === "sent" || what === "refused") store(without(pending(), body.client_ref));
    report(entry, result);
  });
}

showFailures();
window.addEventListener("online", () => flush());
flush();

// A receipt kept from an earlier visit while this device is still offline: say so.
if (form && !navigator.onLine && pending().length > 0) {
  status.textContent = form.dataset.msgPending.replace("{count}", pending().length);
  status.className = "status saved";
}
