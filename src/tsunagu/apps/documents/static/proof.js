// Checks a document's proof bundle (GET /api/v1/documents/{sha256} -> "proof") without
// trusting the server: leaf hash, transaction content, RFC 9162 inclusion in the signed
// tree, the node's Ed25519 signature on the tree head, the node's registered key, the
// block that accepted the transaction (proposer's signature, results, the leaf in its tree),
// and the signer's member record (which organisation registered the key, with which roles).
// No DOM here, so tests can import and exercise every function.
import * as ed from "/static/vendor/noble-ed25519.js";
import { fromHex, hasWebCrypto, sha256, toHex } from "./sha256.js";
import { sha512 } from "./sha512.js";

if (!hasWebCrypto()) {
  // noble's async API hashes with crypto.subtle; give it a pure-JS SHA-512 instead.
  ed.etc.sha512Async = async (...messages) => sha512(ed.etc.concatBytes(...messages));
}

const utf8 = new TextEncoder();
const HEX64 = /^[0-9a-f]{64}$/;
const DOCUMENT_TYPES = { register: "sha256", supersede: "new_sha256" };

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

export const base64ToBytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** RFC 8785 (JCS) text of JSON data. Object keys sort by UTF-16 code units, as
 * Array.prototype.sort does; strings and numbers are serialized as JSON.stringify does. */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const members = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`);
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** RFC 9162 section 2.1.1: SHA-256(0x00 || leaf). */
export const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));

/** RFC 9162 section 2.1.1: SHA-256(0x01 || left || right). */
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/**
 * The root that an inclusion proof leads to, following RFC 9162 section 2.1.3.2 step by
 * step; null when the proof is malformed for this index and tree size. BigInt keeps the
 * bit operations exact for every index up to 2 ** 53.
 */
export async function rootFromInclusionProof(hash, index, treeSize, path) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize)) return null;
  if (index < 0 || index >= treeSize) return null;
  let fn = BigInt(index);
  let sn = BigInt(treeSize - 1);
  let r = hash;
  for (const p of path) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

/** True when `path` (hex strings) proves `hash` is leaf `index` of the tree with `rootHex`. */
export async function verifyInclusion(hash, index, treeSize, path, rootHex) {
  const nodes = path.map(fromHex);
  if (!nodes.every((n) => n !== null && n.length === 32)) return false;
  const root = await rootFromInclusionProof(hash, index, treeSize, nodes);
  return root !== null && toHex(root) === rootHex;
}

/** The exact bytes a node signs for a tree head (see Node.signed_tree_head). */
export function treeHeadBytes(sth) {
  const { chain_id, node_id, root_hash, timestamp, tree_size } = sth;
  return utf8.encode(canonicalJson({ chain_id, node_id, root_hash, timestamp, tree_size }));
}

export async function verifyTreeHead(sth, publicKeyHex) {
  try {
    return await ed.verifyAsync(sth.signature, treeHeadBytes(sth), publicKeyHex, { zip215: false });
  } catch {
    return false; // malformed hex, wrong lengths, a point not on the curve
  }
}

/**
 * The block check: the block holding the leaf was signed by its proposer (a registered
 * node), its results hash to the header's results_hash, the leaf's own result there is
 * "committed", and the leaf is at its position in the header's own tree root.
 */
export async function checkBlock(block, index, leafHashBytes, chainId, nodes) {
  try {
    const header = block.header;
    const first = header.tree_size - header.tx_count;
    const position = index - first;
    const results = block.results;
    const proposer = (nodes ?? []).find((n) => n.id === header.proposer);
    const signed =
      Boolean(proposer) &&
      (await ed.verifyAsync(
        block.signature,
        utf8.encode(canonicalJson(header)),
        proposer.public_key,
        { zip215: false },
      ));
    const resultsOk =
      Array.isArray(results) &&
      results.length === header.tx_count &&
      toHex(await sha256(utf8.encode(canonicalJson(results)))) === header.results_hash;
    const accepted =
      Number.isSafeInteger(position) &&
      position >= 0 &&
      position < header.tx_count &&
      resultsOk &&
      results[position].status === "committed";
    const inTree =
      Array.isArray(block.audit_path) &&
      (await verifyInclusion(
        leafHashBytes,
        index,
        header.tree_size,
        block.audit_path,
        header.tree_root,
      ));
    return {
      ok: signed && accepted && inTree && header.chain_id === chainId,
      height: header.height,
      node: header.proposer,
    };
  } catch {
    return { ok: false, height: "?", node: "?" }; // a missing or malformed block
  }
}

/** The roles with which the contract lets a key register documents. */
const REGISTRAR_ROLES = ["staff", "admin"];

const sameList = (a, b) =>
  Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The signer's member record: each record is a committed identity transaction before the
 * document (`index`) in the signed tree (of `treeSize` entries: the size the bundle gives for
 * its audit paths must be the signed one) and in its block; the first registers the key whose
 * SHA-256 is the document transaction's `signer` (genesis, member.add, node.add, device.add),
 * later ones are member.roles for it. Together they must give the organisation and roles the
 * bundle names, the organisation the page shows (`org`, when given), and a registrar role.
 */
export async function checkMember(member, index, treeSize, signer, sth, nodes, org = null) {
  const failed = { ok: false, org: member?.org ?? "?", roles: [], index: "?", height: "?" };
  try {
    const records = member.records;
    if (!Array.isArray(records) || records.length === 0) return failed;
    if (treeSize !== sth.tree_size) return failed;
    let found = null;
    let height = "?";
    let first = "?";
    for (const record of records) {
      const leaf = base64ToBytes(record.leaf);
      const hash = await leafHash(leaf);
      const tx = parseLeaf(leaf);
      if (!tx || tx.app !== "identity" || tx.chain_id !== sth.chain_id) return failed;
      if (!Number.isSafeInteger(record.index) || record.index >= index) return failed;
      const inTree = await verifyInclusion(
        hash,
        record.index,
        sth.tree_size,
        record.audit_path,
        sth.root_hash,
      );
      const block = await checkBlock(record.block, record.index, hash, sth.chain_id, nodes);
      if (!inTree || !block.ok) return failed;
      const payload = tx.payload ?? {};
      if (found === null) {
        const nodeKeys = (payload.nodes ?? []).map((n) => ({ ...n, roles: ["node"] }));
        const entries =
          tx.type === "genesis" ? [...(payload.members ?? []), ...nodeKeys] : [payload];
        for (const entry of entries) {
          const key = fromHex(String(entry.public_key ?? ""));
          if (key && key.length === 32 && toHex(await sha256(key)) === signer) found = entry;
        }
        if (found === null) return failed;
        const fixed = { "node.add": ["node"], "device.add": ["device"] }[tx.type];
        found = { org: found.org, roles: fixed ?? found.roles };
        first = record.index;
        height = record.block.header.height;
      } else if (tx.type === "member.roles" && payload.key_id === signer) {
        found = { ...found, roles: payload.roles };
      } else {
        return failed;
      }
    }
    const ok =
      member.key_id === signer &&
      found.org === member.org &&
      sameList(found.roles, member.roles) &&
      (org === null || found.org === org) &&
      found.roles.some((r) => REGISTRAR_ROLES.includes(r));
    return { ok, org: found.org, roles: found.roles, index: first, height };
  } catch {
    return failed; // a missing or malformed member record
  }
}

function parseLeaf(leaf) {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(leaf);
    const tx = JSON.parse(text);
    // A leaf is canonical JSON; anything else (say, duplicate keys) is not a real leaf.
    return canonicalJson(tx) === text ? tx : null;
  } catch {
    return null;
  }
}

/**
 * Every check of a proof bundle for a file whose SHA-256 is `sha256Hex`, against the
 * consortium's registered `nodes` ([{id, public_key}]). When the server's `record` of the
 * document is given, the transaction must also carry the title and category it shows.
 * Returns, in order, [{id: "leaf" | "tx" | "root" | "signature" | "node" | "block" |
 * "member", ok, ...values}].
 */
export async function checkProof(bundle, sha256Hex, nodes, record = null) {
  const sth = bundle.sth ?? {};
  let leaf = new Uint8Array();
  try {
    leaf = base64ToBytes(bundle.leaf);
  } catch {
    // an unreadable leaf fails every check that needs it
  }
  const computed = await leafHash(leaf);
  const tx = parseLeaf(leaf);
  const field = tx && tx.app === "documents" ? DOCUMENT_TYPES[tx.type] : undefined;
  const payload = (field && tx.payload) || {};
  const recorded = payload[field];
  const describes =
    record === null || (payload.title === record.title && payload.category === record.category);
  const sizesAgree = bundle.tree_size === sth.tree_size;
  const rootOk =
    sizesAgree &&
    HEX64.test(sth.root_hash ?? "") &&
    Array.isArray(bundle.audit_path) &&
    (await verifyInclusion(
      computed,
      bundle.index,
      bundle.tree_size,
      bundle.audit_path,
      sth.root_hash,
    ));
  const node = (nodes ?? []).find((n) => n.id === sth.node_id);
  return [
    { id: "leaf", ok: toHex(computed) === bundle.leaf_hash, leaf: toHex(computed) },
    {
      id: "tx",
      ok:
        HEX64.test(sha256Hex) &&
        recorded === sha256Hex &&
        describes &&
        tx.chain_id === sth.chain_id,
      type: tx ? `${tx.app}/${tx.type}` : "?",
    },
    { id: "root", ok: rootOk, index: bundle.index, size: sth.tree_size, root: sth.root_hash },
    {
      id: "signature",
      ok: await verifyTreeHead(sth, bundle.node_public_key),
      node: sth.node_id,
      time: sth.timestamp,
    },
    {
      id: "node",
      ok: Boolean(node) && node.public_key === bundle.node_public_key,
      node: sth.node_id,
    },
    { id: "block", ...(await checkBlock(bundle.block ?? {}, bundle.index, computed, sth.chain_id, nodes)) },
    {
      id: "member",
      ...(await checkMember(
        bundle.member,
        bundle.index,
        bundle.tree_size,
        tx?.signer,
        sth,
        nodes,
        record === null ? null : record.org,
      )),
    },
  ];
}
