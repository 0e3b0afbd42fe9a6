// The public verify page: hash a file here, look it up, and check its proof here.
import { formatSize, wireDropzone } from "./dropzone.js";
import { checkProof } from "./proof.js";
import { hashFile } from "./sha256.js";

const MESSAGES = JSON.parse(document.getElementById("verify-messages").textContent);
const lang = document.documentElement.lang;
const $ = (id) => document.getElementById(id);
const t = (key, values = {}) =>
  (MESSAGES[key] ?? key).replace(/\{(\w+)\}/g, (whole, name) =>
    name in values ? String(values[name]) : whole,
  );

let run = 0; // a newer file or hash makes an older, slower check stop writing

// Chain timestamps are UTC; show them in Tokyo time like the server's `tokyo` filter.
function tokyo(iso) {
  const moment = new Date(Date.parse(iso) + 9 * 3600 * 1000);
  if (Number.isNaN(moment.getTime())) return String(iso);
  const two = (n) => String(n).padStart(2, "0");
  return (
    `${moment.getUTCFullYear()}-${two(moment.getUTCMonth() + 1)}-${two(moment.getUTCDate())} ` +
    `${two(moment.getUTCHours())}:${two(moment.getUTCMinutes())}`
  );
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const hashCode = (hex) => el("code", { class: "hash" }, hex);
const short = (hex) => `${String(hex).slice(0, 16)}…`;

function progress(text) {
  $("progress").textContent = text;
}

function fact(dl, term, ...value) {
  dl.append(el("dt", {}, term), el("dd", {}, ...value));
}

function startResult() {
  $("result").hidden = false;
  $("verdict").replaceChildren();
  $("record").replaceChildren();
  $("checks").replaceChildren();
  $("overall").replaceChildren();
  $("overall").className = "overall";
  $("proof").hidden = true;
}

function finish() {
  progress("");
  $("result-h").focus();
}

function verdict(ok, text) {
  const mark = el("span", { class: "mark", "aria-hidden": "true" }, ok ? "✓" : "✗");
  $("verdict").replaceChildren(
    el("p", { class: `verdict ${ok ? "ok" : "bad"}`, id: "verdict-text" }, mark, " ", text),
  );
}

function showSource(dl, sha, source) {
  if (source.file) {
    fact(dl, t("file"), `${source.file.name} (${formatSize(source.file.size, lang)})`);
  }
  fact(dl, source.file ? t("file_hash") : t("given_hash"), hashCode(sha));
}

function showRecord(doc, sha, source) {
  const dl = $("record");
  const orgName = (lang === "ja" ? doc.org_name_ja : doc.org_name_en) || doc.org;
  const status = el(
    "span",
    { class: `badge doc-status doc-status-${doc.status}`, id: "result-status" },
    t(`status:${doc.status}`),
  );
  verdict(true, t("registered"));
  const last = doc.history[doc.history.length - 1];
  if (doc.status !== "active" && last) {
    const tone = doc.status === "withdrawn" ? "error" : "warn";
    const note = el("div", { class: `alert status-note ${tone}`, id: "status-note" });
    note.append(el("p", {}, t(`${doc.status}_note`, { date: tokyo(last.at) })));
    if (doc.superseded_by) {
      const newer = el("a", { href: `/documents/${doc.superseded_by}` }, t("see_newer"));
      note.append(el("p", {}, newer));
    }
    $("verdict").append(note);
  }
  showSource(dl, sha, source);
  fact(dl, t("title"), doc.title);
  fact(dl, t("organisation"), el("span", { id: "result-org" }, orgName));
  fact(dl, t("category"), t(`category:${doc.category}`));
  const registeredAt = el("time", { datetime: doc.registered_at }, tokyo(doc.registered_at));
  fact(dl, t("registered_at"), registeredAt);
  fact(dl, t("status"), status);
  if (doc.status === "superseded" && doc.superseded_by) {
    const href = `/documents/${doc.superseded_by}`;
    fact(dl, t("newer"), el("a", { href, id: "result-newer" }, short(doc.superseded_by)));
  }
  if (doc.status === "withdrawn" && last && last.reason) {
    fact(dl, t("withdrawn_reason"), last.reason);
  }
  if (doc.supersedes) {
    fact(dl, t("older"), el("a", { href: `/documents/${doc.supersedes}` }, short(doc.supersedes)));
  }
  fact(dl, t("details"), el("a", { href: `/documents/${doc.sha256}` }, short(doc.sha256)));
  return orgName;
}

function showChecks(checks, orgName) {
  const list = $("checks");
  for (const check of checks) {
    const key = { signature: "sig" }[check.id] ?? check.id;
    const values = { ...check };
    if (values.leaf) values.leaf = short(values.leaf);
    if (values.root) values.root = short(values.root);
    if (values.time) values.time = tokyo(values.time);
    if (check.id === "member") {
      values.slug = check.org;
      values.org = orgName;
      values.roles = check.roles.map((role) => t(`role:${role}`)).join(t("role_separator"));
    }
    list.append(
      el(
        "li",
        {
          class: `check ${check.ok ? "pass" : "fail"}`,
          "data-check": check.id,
          "data-ok": String(check.ok),
        },
        el("span", { class: "mark", "aria-hidden": "true" }, check.ok ? "✓" : "✗"),
        " ",
        el("span", { class: "visually-hidden" }, check.ok ? t("ok") : t("failed")),
        " ",
        el("span", { class: "words" }, t(`check_${key}_${check.ok ? "ok" : "bad"}`, values)),
      ),
    );
  }
  const allOk = checks.every((c) => c.ok);
  const overall = $("overall");
  overall.className = `overall ${allOk ? "ok" : "bad"}`;
  overall.dataset.ok = String(allOk);
  overall.append(
    el("span", { class: "mark", "aria-hidden": "true" }, allOk ? "✓" : "✗"),
    " ",
    allOk ? t("all_ok", { org: orgName }) : t("some_failed"),
  );
}

async function lookUp(sha, source) {
  const mine = run;
  try {
    await showLookUp(sha, source, mine);
  } catch {
    // A malformed answer is reported like an unreachable ledger, never as a pass.
    if (mine !== run) return;
    startResult();
    verdict(false, t("lookup_failed"));
    finish();
  }
}

async function showLookUp(sha, source, mine) {
  progress(t("looking_up"));
  let response;
  try {
    response = await fetch(`/api/v1/documents/${sha}`, { headers: { Accept: "application/json" } });
  } catch {
    response = null;
  }
  if (mine !== run) return;
  startResult();
  if (response && response.status === 404) {
    verdict(false, t("not_registered"));
    $("verdict").append(el("p", {}, t("not_registered_help")));
    showSource($("record"), sha, source);
    finish();
    return;
  }
  if (!response || !response.ok) {
    verdict(false, t("lookup_failed"));
    finish();
    return;
  }
  const { document: doc, proof } = await response.json();
  const orgName = showRecord(doc, sha, source);
  progress(t("checking"));
  let nodes = [];
  try {
    nodes = (await (await fetch("/api/v1/identity/nodes")).json()).nodes;
  } catch {
    // no node list: the node-key check fails, and says so
  }
  const checks = await checkProof(proof, sha, nodes, doc);
  if (mine !== run) return;
  $("proof").hidden = false;
  showChecks(checks, orgName);
  finish();
}

async function verifyFile(file) {
  const mine = ++run;
  progress(t("hashing"));
  let sha;
  try {
    sha = await hashFile(file, (done, total) => {
      progress(`${t("hashing")} ${Math.floor((100 * done) / total)}%`);
    });
  } catch {
    if (mine === run) progress(t("read_failed"));
    return;
  }
  if (mine === run) await lookUp(sha, { file });
}

wireDropzone($("dropzone"), $("file"), verifyFile);

$("hash-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run += 1;
  lookUp($("sha").value.trim().toLowerCase(), {});
});

if ($("sha").value) {
  run += 1;
  lookUp($("sha").value.trim().toLowerCase(), {});
}
