// Checks, in the browser, that the transaction on this page is in this node's log.
//
// Everything comes from the node's public log API, not from the page: the log entry at the
// transaction's index, the signed tree head (STH) and the inclusion proof against it. The
// browser then recomputes the RFC 9162 hashes and checks the STH's Ed25519 signature under
// the node key registered on the chain. WebCrypto only exists in a secure context (HTTPS or
// localhost), so elsewhere the page says it cannot check.

const box = document.getElementById("proof");
const text = JSON.parse(document.getElementById("proof-text").textContent);
const summary = box.querySelector(".proof-summary");
const checks = box.querySelector(".checks");
const details = box.querySelector(".proof-data");

const fill = (message, values = {}) =>
  message.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? `{${name}}`));

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (value) => Uint8Array.from(value.match(/../g) || [], (h) => parseInt(h, 16));

async function sha256(...parts) {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// RFC 9162 section 2.1.3.2. Plain arithmetic, not bit operators: indexes may pass 2^31.
async function rootFromPath(leafHash, index, size, path) {
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of path) {
    if (sn === 0) throw new Error("inclusion proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("inclusion proof is too short");
  return r;
}

// RFC 8785 for what a tree head holds: plain strings and integers, keys sorted.
function canonical(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

function addCheck(message, passed) {
  const item = document.createElement("li");
  item.className = passed ? "pass" : "fail";
  const mark = document.createElement("span");
  mark.className = "badge " + (passed ? "ok" : "bad");
  mark.textContent = passed ? text.pass : text.fail;
  item.append(mark, " ", message);
  checks.append(item);
  checks.hidden = false;
}

function addFact(term, value, code = true) {
  const list = details.querySelector("dl");
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  const inner = document.createElement(code ? "code" : "span");
  if (code) inner.className = "hash";
  inner.textContent = value;
  dd.append(inner);
  list.append(dt, dd);
  details.hidden = false;
}

function finish(state, message) {
  box.dataset.state = state;
  summary.textContent = message;
  const tone = { ok: "ok", unavailable: "warn" }[state] || "error";
  summary.className = `proof-summary alert ${tone}`;
}

async function check() {
  const index = Number(box.dataset.index);
  const txId = box.dataset.txId;
  const leafHash = box.dataset.leafHash;

  const entries = await getJSON(`/api/v1/log/entries?start=${index}&end=${index}`);
  const leaf = Uint8Array.from(atob(entries.entries[0].leaf), (c) => c.charCodeAt(0));
  const entryOk =
    hex(await sha256(leaf)) === txId && hex(await sha256(Uint8Array.of(0), leaf)) === leafHash;
  addCheck(fill(text.entry, { index }), entryOk);
  if (!entryOk) throw new Error(fill(text.entry, { index }));

  const sth = await getJSON("/api/v1/log/sth");
  const proof = await getJSON(
    `/api/v1/log/proof/inclusion?index=${index}&tree_size=${sth.tree_size}`,
  );
  const path = proof.audit_path.map(unhex);
  let root = null;
  try {
    root = hex(await rootFromPath(unhex(leafHash), index, sth.tree_size, path));
  } catch (error) {
    root = String(error.message);
  }
  const pathOk = root === sth.root_hash;
  addFact(text.tree_size, String(sth.tree_size), false);
  addFact(text.root, sth.root_hash);
  addFact(text.signed_at, sth.timestamp, false);
  addFact(text.node, sth.node_id, false);
  proof.audit_path.forEach((h, i) => addFact(`${text.audit_path} ${i + 1}`, h));
  addCheck(fill(text.path, { count: path.length }), pathOk);
  if (!pathOk) throw new Error(fill(text.path, { count: path.length }));

  const nodes = await getJSON("/api/v1/identity/nodes");
  const node = nodes.nodes.find((n) => n.id === sth.node_id);
  const { signature, ...body } = sth;
  let signedOk = false;
  if (node) {
    const ed = await import("/static/vendor/noble-ed25519.js");
    const message = new TextEncoder().encode(canonical(body));
    signedOk = await ed.verifyAsync(unhex(signature), message, unhex(node.public_key), {
      zip215: false,
    });
  }
  addCheck(fill(text.signed, { node: sth.node_id }), signedOk);
  if (!signedOk) throw new Error(fill(text.signed, { node: sth.node_id }));
  finish("ok", fill(text.ok, { size: sth.tree_size }));
}

if (!(window.isSecureContext && window.crypto && crypto.subtle)) {
  finish("unavailable", text.insecure);
} else {
  box.dataset.state = "checking";
  summary.textContent = text.checking;
  check().catch((error) => finish("failed", fill(text.failed, { reason: error.message })));
}
