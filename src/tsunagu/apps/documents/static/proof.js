// Checks a document's proof bundle (GET /api/v1/documents/{sha256} -> "proof") without
// trusting the server: leaf hash, transaction content, RFC 9162 inclusion in the signed
// tree, the node's Ed25519 signature on the tree head, the node's registered key, and the
// block that accepted the transaction (proposer's signature, results, the leaf in its tree).
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
 * Returns, in order, [{id: "leaf" | "tx" | "root" | "signature" | "node" | "block", ok,
 * ...values}].
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
  ];
}
