#!/usr/bin/env python3
"""A minimal independent Tsunagu client, written from docs/protocol.md alone.

It uses only the Python standard library and ``cryptography`` (for Ed25519); it imports nothing
from ``tsunagu``. It shows the three things an outside party does with a Tsunagu node:

* **audit** the log: fetch the signed tree head (STH), check its signature against the node key
  published at ``/api/v1/identity/nodes``, fetch the log entries, recompute the root from them,
  and check an inclusion proof and a consistency proof served by the node;
* **build and sign** a transaction with a key it holds (an Ed25519 seed given in hex);
* **submit** it to ``/api/v1/tx`` and read the receipt.

Usage::

    python client.py key --seed-hex 000102...1f
    python client.py --url http://127.0.0.1:8000 audit [--state sth.json]
    python client.py --url http://127.0.0.1:8000 submit --seed-hex 000102...1f \\
        --app documents --type register \\
        --payload '{"sha256": "…64 hex…", "title": "…", "category": "notice"}' [--seq N]

The key must already be registered on the chain (an ``identity/member.add`` transaction signed by
a consortium admin) for the node to accept its transactions.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_SAFE_INTEGER = 2**53 - 1
ENVELOPE_FIELDS = ("chain_id", "app", "type", "payload", "signer", "seq", "signature")
STH_FIELDS = ("chain_id", "node_id", "tree_size", "root_hash", "timestamp")


# --- Canonical JSON (RFC 8785) for the value set the protocol allows ------------------------


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical bytes of ``value``.

    Only the protocol's value set is accepted: ``None``, ``bool``, ``int`` within
    ±(2**53 - 1), ``str`` (no lone surrogates), ``list``/``tuple`` and ``dict`` with ``str``
    keys. Floats are refused: the protocol carries no floating-point numbers.
    """
    parts: list[str] = []
    _emit(value, parts)
    return "".join(parts).encode("utf-8")


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError("strings must not contain lone surrogates")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _emit(value: Any, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside ±(2^53-1)")
        parts.append(str(int(value)))
    elif isinstance(value, float):
        raise TypeError("floats are not allowed; use integers")
    elif isinstance(value, str):
        parts.append(_string(value))
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for i, item in enumerate(value):
            if i:
                parts.append(",")
            _emit(item, parts)
        parts.append("]")
    elif isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("object keys must be strings")
        for k in value:
            _string(k)  # refuse lone surrogates before sorting by UTF-16
        parts.append("{")
        # RFC 8785 3.2.3: members sorted by their names' UTF-16 code units.
        for i, k in enumerate(sorted(value, key=lambda k: k.encode("utf-16-be"))):
            if i:
                parts.append(",")
            parts.append(_string(k))
            parts.append(":")
            _emit(value[k], parts)
        parts.append("}")
    else:
        raise TypeError(f"{type(value).__name__} is not a protocol value")


# --- Keys, transactions ---------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def public_key_of(seed: bytes) -> bytes:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def key_id(public_key: bytes) -> str:
    """Lowercase hex SHA-256 of the 32 raw public key bytes."""
    return hashlib.sha256(public_key).hexdigest()


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def build_transaction(
    seed: bytes, chain_id: str, app: str, tx_type: str, payload: dict[str, Any], seq: int
) -> tuple[dict[str, Any], bytes, str]:
    """Sign a transaction; return ``(envelope, leaf bytes, tx id)``."""
    body = {
        "chain_id": chain_id,
        "app": app,
        "type": tx_type,
        "payload": payload,
        "signer": key_id(public_key_of(seed)),
        "seq": seq,
    }
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(canonical_json(body))
    envelope = {**body, "signature": signature.hex()}
    leaf = canonical_json(envelope)
    return envelope, leaf, hashlib.sha256(leaf).hexdigest()


# --- RFC 9162 Merkle tree -------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return sha256(b"\x00" + leaf)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH (RFC 9162 2.1.1) of a list of leaf hashes, by its recursive definition."""
    n = len(leaf_hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(merkle_root(leaf_hashes[:k]), merkle_root(leaf_hashes[k:]))


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: is ``leaf`` (a leaf hash) leaf ``index`` of the tree with ``root``?"""
    if index >= tree_size or index < 0:
        return False
    fn, sn = index, tree_size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: does the tree ``(second, second_root)`` extend ``(first, first_root)``?"""
    if first == second:
        return not path and first_root == second_root
    if not 0 < first < second or not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:  # first is an exact power of two
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def verify_sth(sth: dict[str, Any], nodes: list[dict[str, Any]]) -> bool:
    """Check a signed tree head against the node keys from ``/api/v1/identity/nodes``."""
    node = next((n for n in nodes if n.get("id") == sth.get("node_id")), None)
    if node is None:
        return False
    signed = canonical_json({name: sth[name] for name in STH_FIELDS})
    return ed25519_verify(
        bytes.fromhex(node["public_key"]), bytes.fromhex(sth["signature"]), signed
    )


# --- HTTP -----------------------------------------------------------------------------------

# transport(method, path with query, JSON body or None, extra headers) -> (status, JSON body)
Transport = Callable[[str, str, Any, dict[str, str]], tuple[int, Any]]


class ProtocolError(Exception):
    """The node answered with an error (an RFC 9457 problem) or with something that fails a
    check."""

    def __init__(self, message: str, status: int | None = None, problem: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem if isinstance(problem, dict) else {}


def urllib_transport(base_url: str, timeout: float = 60.0) -> Transport:
    """A transport over ``urllib`` to a node at ``base_url`` (e.g. ``http://127.0.0.1:8000``)."""

    def transport(method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        data = None
        headers = {"Accept": "application/json", **headers}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            base_url.rstrip("/") + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, {"detail": raw.decode("utf-8", "replace")}

    return transport


class Client:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        status, answer = self.transport(method, path, body, {})
        if status >= 400:
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            raise ProtocolError(f"{method} {path}: {status} {detail}", status, answer)
        return answer

    def status(self) -> dict[str, Any]:
        return self.call("GET", "/api/v1/status")

    def sth(self) -> dict[str, Any]:
        return self.call("GET", "/api/v1/log/sth")

    def nodes(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v1/identity/nodes")["nodes"]

    def entries(self, start: int, end: int) -> list[bytes]:
        """Leaves ``start`` to ``end`` inclusive, fetched page by page."""
        leaves: list[bytes] = []
        while start <= end:
            page = self.call("GET", "/api/v1/log/entries", start=start, end=end)["entries"]
            if not page:
                raise ProtocolError(f"no entries returned from index {start}")
            for entry in page:
                if entry["index"] != start:
                    raise ProtocolError(f"expected entry {start}, got {entry['index']}")
                leaves.append(base64.b64decode(entry["leaf"], validate=True))
                start += 1
        return leaves

    def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        return self.call("GET", "/api/v1/log/proof/inclusion", index=index, tree_size=tree_size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        answer = self.call("GET", "/api/v1/log/proof/consistency", first=first, second=second)
        return [bytes.fromhex(h) for h in answer["proof"]]

    def submit(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/api/v1/tx", envelope)


# --- What a client does ---------------------------------------------------------------------


def audit(
    client: Client, previous: tuple[int, bytes] | None = None, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Check the node's log end to end; return the verified STH.

    ``previous`` is an earlier verified ``(tree_size, root)``; without one, the client checks
    consistency from half the current size, with that root recomputed from the entries.
    Raises :class:`ProtocolError` on the first failed check.
    """
    sth = client.sth()
    if not verify_sth(sth, client.nodes()):
        raise ProtocolError("the signed tree head's signature does not verify")
    size, root = sth["tree_size"], bytes.fromhex(sth["root_hash"])
    say(f"STH: size {size}, root {sth['root_hash']}, signed by {sth['node_id']}: signature ok")

    leaves = client.entries(0, size - 1)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    if merkle_root(hashes) != root:
        raise ProtocolError("the entries do not hash to the STH root")
    for leaf in leaves:
        envelope = json.loads(leaf)
        if canonical_json(envelope) != leaf or set(envelope) != set(ENVELOPE_FIELDS):
            raise ProtocolError("an entry is not a canonical transaction envelope")
    say(f"entries 0..{size - 1}: {size} canonical transactions, root recomputed: ok")

    index = size - 1
    proof = client.inclusion_proof(index, size)
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    if bytes.fromhex(proof["leaf_hash"]) != hashes[index]:
        raise ProtocolError("the inclusion proof is for another leaf")
    if not verify_inclusion(hashes[index], index, size, path, root):
        raise ProtocolError(f"the inclusion proof of leaf {index} does not verify")
    tx_id = hashlib.sha256(leaves[index]).hexdigest()
    say(f"inclusion of leaf {index} (tx {tx_id}) in size {size}: ok")

    if previous is None:
        first = max(1, size // 2)
        previous = (first, merkle_root(hashes[:first]))
    first, first_root = previous
    proof_hashes = client.consistency_proof(first, size)
    if not verify_consistency(first, size, first_root, root, proof_hashes):
        raise ProtocolError(f"the log of size {size} is not consistent with size {first}")
    say(f"consistency from size {first} to size {size}: ok")
    return sth


def submit(
    client: Client,
    seed: bytes,
    app: str,
    tx_type: str,
    payload: dict[str, Any],
    seq: int | None = None,
) -> dict[str, Any]:
    """Build, sign and submit one transaction; return the node's receipt.

    Without ``seq`` the client uses the current Unix time in milliseconds: gaps are allowed, so
    a clock-based number is always above the ones this key used before, as long as the key
    submits at most one transaction per millisecond. If the node says the number was used
    (409 ``replayed_seq``), the client retries once above the ``last_seq`` the node reports.
    """
    chain_id = client.status()["chain_id"]
    if seq is None:
        seq = int(time.time() * 1000)
    envelope, _, tx_id = build_transaction(seed, chain_id, app, tx_type, payload, seq)
    try:
        receipt = client.submit(envelope)
    except ProtocolError as error:
        if error.problem.get("code") != "replayed_seq" or "last_seq" not in error.problem:
            raise
        seq = error.problem["last_seq"] + 1
        envelope, _, tx_id = build_transaction(seed, chain_id, app, tx_type, payload, seq)
        receipt = client.submit(envelope)
    if receipt["tx_id"] != tx_id:
        raise ProtocolError(f"the node's tx id {receipt['tx_id']} is not ours ({tx_id})")
    return receipt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A minimal independent Tsunagu client.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the node's base URL")
    commands = parser.add_subparsers(dest="command", required=True)
    key = commands.add_parser("key", help="print the public key and key id of a seed")
    key.add_argument("--seed-hex", required=True)
    check = commands.add_parser("audit", help="verify the STH, entries and proofs")
    check.add_argument("--state", type=Path, help="a file keeping the last verified tree head")
    send = commands.add_parser("submit", help="sign and submit one transaction")
    send.add_argument("--seed-hex", required=True, help="the signer's 32-byte Ed25519 seed")
    send.add_argument("--app", required=True)
    send.add_argument("--type", required=True)
    send.add_argument("--payload", required=True, help="the payload as a JSON object")
    send.add_argument("--seq", type=int)
    args = parser.parse_args(argv)

    if args.command == "key":
        public = public_key_of(bytes.fromhex(args.seed_hex))
        print(json.dumps({"public_key": public.hex(), "key_id": key_id(public)}))
        return 0
    client = Client(urllib_transport(args.url))
    try:
        if args.command == "audit":
            previous = None
            if args.state and args.state.exists():
                saved = json.loads(args.state.read_text())
                previous = (saved["tree_size"], bytes.fromhex(saved["root_hash"]))
            sth = audit(client, previous)
            if args.state:
                args.state.write_text(json.dumps(sth))
        else:
            payload = json.loads(args.payload)
            receipt = submit(
                client, bytes.fromhex(args.seed_hex), args.app, args.type, payload, args.seq
            )
            print(json.dumps(receipt))
    except ProtocolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
