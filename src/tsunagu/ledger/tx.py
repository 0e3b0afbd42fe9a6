"""The transaction envelope.

A transaction is a JSON object with exactly these members::

    {"chain_id", "app", "type", "payload", "signer", "seq", "signature"}

The signature is Ed25519 over the RFC 8785 canonical bytes of the object without
``signature``. The log leaf is the canonical bytes of the whole signed object and the
transaction id is the lowercase hex SHA-256 of that leaf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tsunagu.errors import TsunaguError
from tsunagu.ledger.canonical import canonical, fast_canonical, is_hex, loads_json, sha256_hex
from tsunagu.ledger.keys import SigningKey, verify_signature

ENVELOPE_FIELDS = frozenset({"chain_id", "app", "type", "payload", "signer", "seq", "signature"})
MAX_SEQ = 2**53 - 1
MAX_TX_BYTES = 64 * 1024
MAX_DEPTH = 32  # nesting of arrays and objects inside the payload
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TYPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")


class MalformedTransaction(TsunaguError):
    code = "malformed_transaction"
    status = 400
    message_en = "The transaction is malformed."
    message_ja = "取引データの形式が正しくありません。"


class BadSignature(TsunaguError):
    code = "bad_signature"
    status = 400
    message_en = "The transaction signature does not verify."
    message_ja = "取引の署名を検証できませんでした。"


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed transaction with its canonical leaf bytes and id."""

    chain_id: str
    app: str
    type: str
    payload: dict[str, Any]
    signer: str
    seq: int
    signature: str
    leaf: bytes
    id: str
    # The signed bytes, when decode_tx has cut them out of the leaf it computed (not part of
    # the transaction's value: ignored by ==, hash and repr).
    _signing: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_body(
        cls, body: dict[str, Any], leaf: bytes, signing: bytes | None = None
    ) -> Transaction:
        """The transaction whose envelope ``body`` was parsed from the stored ``leaf``, taking
        both as they are: no shape or canonical-form check (:func:`decode_leaf` makes them).
        ``signing``, when given, is its signed bytes.

        For readers that check each leaf strictly elsewhere, such as ``tsunagu verify``, whose
        workers decode every leaf while the chain is replayed. Raises ``KeyError`` or
        ``TypeError`` when ``body`` is not an object with the envelope's members.
        """
        return cls(
            body["chain_id"],
            body["app"],
            body["type"],
            body["payload"],
            body["signer"],
            body["seq"],
            body["signature"],
            leaf,
            sha256_hex(leaf),
            signing,
        )

    @classmethod
    def from_checked_leaf(cls, leaf: bytes) -> Transaction:
        """The transaction of a leaf that :func:`decode_tx` made (strictly decoded before,
        in this or another process): parsed, not checked again. Its signed bytes are cut out
        of the leaf as :func:`decode_tx` cuts them, so that checking its signature encodes
        nothing: in a canonical envelope the ``signature`` member comes after ``seq`` and
        before ``signer`` and ``type``, whose strings hold no quote, so it is the leaf's last
        occurrence of that member's bytes."""
        body = loads_json(leaf)
        member = b',"signature":"%s"' % body["signature"].encode()
        at = leaf.rfind(member)
        signing = None if at < 0 else leaf[:at] + leaf[at + len(member) :]
        return cls.from_body(body, leaf, signing)

    def body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "app": self.app,
            "type": self.type,
            "payload": self.payload,
            "signer": self.signer,
            "seq": self.seq,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    def signing_bytes(self) -> bytes:
        if self._signing is not None:
            return self._signing
        return canonical(self.body())

    def verify(self, public_key: bytes) -> bool:
        return verify_signature(public_key, bytes.fromhex(self.signature), self.signing_bytes())


def _fail(what: str, what_ja: str) -> MalformedTransaction:
    return MalformedTransaction(
        f"The transaction is malformed: {what}.", f"取引データの形式が正しくありません: {what_ja}"
    )


def _check(body: Any) -> None:
    if not isinstance(body, dict):
        raise _fail("it must be a JSON object", "JSONオブジェクトではありません")
    keys = set(body)
    if keys != ENVELOPE_FIELDS:
        missing = sorted(ENVELOPE_FIELDS - keys)
        unknown = sorted(keys - ENVELOPE_FIELDS)
        raise _fail(
            f"missing fields {missing}, unknown fields {unknown}",
            f"不足している項目 {missing}、不明な項目 {unknown}",
        )
    chain_id = body["chain_id"]
    if not isinstance(chain_id, str) or not 1 <= len(chain_id) <= 64:
        raise _fail("chain_id must be a string of 1 to 64 characters", "chain_id が不正です")
    if not isinstance(body["app"], str) or not _NAME.fullmatch(body["app"]):
        raise _fail("app must match [a-z][a-z0-9_]{0,31}", "app が不正です")
    if not isinstance(body["type"], str) or not _TYPE.fullmatch(body["type"]):
        raise _fail("type must match [a-z][a-z0-9_.]{0,63}", "type が不正です")
    if not isinstance(body["payload"], dict):
        raise _fail("payload must be a JSON object", "payload がJSONオブジェクトではありません")
    if _depth(body["payload"]) > MAX_DEPTH:
        # Deeper values cannot be rendered back by the API (serialisers cap recursion), so
        # such a transaction would make its own block unreadable.
        raise _fail(
            f"payload nests deeper than {MAX_DEPTH} levels",
            f"payload の入れ子が {MAX_DEPTH} 段を超えています",
        )
    if not is_hex(body["signer"], 64):
        raise _fail("signer must be 64 lowercase hex characters", "signer が不正です")
    seq = body["seq"]
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise _fail("seq must be an integer from 1 to 2^53-1", "seq が不正です")
    if not is_hex(body["signature"], 128):
        raise _fail("signature must be 128 lowercase hex characters", "signature が不正です")


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (iteratively: no recursion limit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _has_fraction(value: Any) -> bool:
    """Whether a JSON number with a fraction or an exponent (a ``float``) is in ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_tx(body: Any, *, whole_numbers: bool = True) -> Transaction:
    """Check the envelope's shape strictly and compute its leaf bytes and id.

    With ``whole_numbers`` (every new transaction), a number written with a fraction or an
    exponent is refused: RFC 8785 writes ``1.0`` as ``1``, so the leaf would hold an integer
    where the envelope held a float, and the contract's answer on the envelope could differ
    from the answer a replay of the leaf gives. Stored leaves (:func:`decode_leaf`) are taken
    as they are."""
    _check(body)
    # The leaf is canonical(body). _check has made app, type, signer and signature strings
    # that need no escaping and seq an integer in range, so when chain_id and payload take the
    # fast path the leaf is assembled from their canonical bytes, members in RFC 8785 order.
    # Removing the signature member from a canonical object leaves the canonical object
    # without it, which is what was signed: kept, so the signature check encodes nothing.
    chain_id = fast_canonical(body["chain_id"])
    payload = fast_canonical(body["payload"])
    tail = b',"signer":"%s","type":"%s"}' % (body["signer"].encode(), body["type"].encode())
    member = b',"signature":"%s"' % body["signature"].encode()
    signing: bytes | None = None
    if chain_id is not None and payload is not None:
        head = b'{"app":"%s","chain_id":%s,"payload":%s,"seq":%d' % (
            body["app"].encode(),
            chain_id,
            payload,
            body["seq"],
        )
        leaf = head + member + tail
        signing = head + tail
    else:  # floats never take the fast path, so they are looked for only here
        if whole_numbers and _has_fraction(body["payload"]):
            raise _fail(
                "numbers must be whole (no fraction or exponent, not even 1.0)",
                "数値は整数で書いてください（小数や指数表記は使えません。1.0 も不可）",
            )
        try:
            leaf = canonical(body)
        except Exception as exc:  # rfc8785 refuses NaN, huge ints and lone surrogates
            raise _fail(f"not canonicalizable ({exc})", "正規化できない値を含みます") from exc
        if leaf.endswith(member + tail):
            signing = leaf[: len(leaf) - len(member) - len(tail)] + tail
    if len(leaf) > MAX_TX_BYTES:
        raise _fail(f"larger than {MAX_TX_BYTES} bytes", f"{MAX_TX_BYTES} バイトを超えています")
    return Transaction(
        chain_id=body["chain_id"],
        app=body["app"],
        type=body["type"],
        payload=body["payload"],
        signer=body["signer"],
        seq=body["seq"],
        signature=body["signature"],
        leaf=leaf,
        id=sha256_hex(leaf),
        _signing=signing,
    )


def decode_leaf(leaf: bytes) -> Transaction:
    """Rebuild a transaction from stored leaf bytes; the bytes must already be canonical."""
    tx = decode_tx(loads_json(leaf), whole_numbers=False)
    if tx.leaf != leaf:
        raise _fail("leaf bytes are not canonical", "正規化されていません")
    return tx


def build_tx(
    chain_id: str, app: str, type: str, payload: dict[str, Any], key: SigningKey, seq: int
) -> Transaction:
    """Build and sign a transaction with ``key``."""
    body: dict[str, Any] = {
        "chain_id": chain_id,
        "app": app,
        "type": type,
        "payload": payload,
        "signer": key.key_id,
        "seq": seq,
    }
    body["signature"] = key.sign(canonical(body)).hex()
    return decode_tx(body)
