"""Blocks: a signed header over ordered transactions and their results.

The header commits to the transactions through the log: ``tree_root`` is the RFC 9162 root
of the log after the block's ``tx_count`` leaves were appended, at ``tree_size``. The
block hash is SHA-256 of the canonical header; the proposer signs those same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tsunagu.ledger.canonical import canonical, is_hex, sha256, sha256_hex
from tsunagu.ledger.keys import SigningKey, verify_signature
from tsunagu.ledger.tx import Transaction

ZERO_HASH = "0" * 64
HEADER_FIELDS = (
    "chain_id",
    "height",
    "prev_hash",
    "timestamp",
    "tx_count",
    "results_hash",
    "tree_size",
    "tree_root",
    "state_hash",
    "proposer",
)
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def format_timestamp(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``: the only timestamp form on the chain."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError(f"not a chain timestamp: {value!r}")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TxResult:
    """What happened to one transaction: committed, or rejected with a stable code and reason."""

    status: str
    code: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, str]:
        if self.status == "committed":
            return {"status": "committed"}
        return {"status": "rejected", "code": self.code or "rejected", "reason": self.reason or ""}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> TxResult:
        return cls(value["status"], value.get("code"), value.get("reason"))


COMMITTED = TxResult("committed")


def results_hash(results: list[TxResult]) -> str:
    return sha256_hex(canonical([r.to_json() for r in results]))


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: str
    timestamp: str
    tx_count: int
    results_hash: str
    tree_size: int
    tree_root: str
    state_hash: str
    proposer: str

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HEADER_FIELDS}

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @property
    def hash(self) -> str:
        return sha256_hex(self.canonical())

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> BlockHeader:
        if not isinstance(value, dict) or set(value) != set(HEADER_FIELDS):
            raise ValueError("a block header has exactly the fields " + ", ".join(HEADER_FIELDS))
        header = cls(**value)
        for name in ("chain_id", "proposer"):
            text = getattr(header, name)
            if not isinstance(text, str) or not 1 <= len(text) <= 64:
                raise ValueError(f"{name} must be a string of 1 to 64 characters")
        for name in ("height", "tx_count", "tree_size"):
            if type(getattr(header, name)) is not int or getattr(header, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        for name in ("prev_hash", "results_hash", "tree_root", "state_hash"):
            if not is_hex(getattr(header, name), 64):
                raise ValueError(f"{name} must be 64 lowercase hex characters")
        parse_timestamp(header.timestamp)
        return header


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    signature: str
    txs: tuple[Transaction, ...]
    results: tuple[TxResult, ...]

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def hash(self) -> str:
        return self.header.hash

    def to_json(self) -> dict[str, Any]:
        return {
            "header": self.header.to_json(),
            "hash": self.hash,
            "signature": self.signature,
            "transactions": [tx.to_json() for tx in self.txs],
            "results": [r.to_json() for r in self.results],
        }


def sign_header(header: BlockHeader, key: SigningKey) -> str:
    return key.sign(header.canonical()).hex()


def verify_header_signature(header: BlockHeader, signature: str, public_key: bytes) -> bool:
    if not is_hex(signature, 128):
        return False
    return verify_signature(public_key, bytes.fromhex(signature), header.canonical())


def next_state_hash(prev_state_hash: str, writes: list[tuple[str, str, bytes | None]]) -> str:
    """Chain the state hash over one block's writes.

    ``writes`` are ``(namespace, key, canonical value bytes or None for a delete)`` sorted by
    namespace and key, the last write per key only. The result is
    ``SHA-256(prev_state_hash_bytes || SHA-256(canonical([[ns, key, value], ...])))``.
    """
    parts = []
    for ns, key, value in writes:
        parts.append(
            b"[" + canonical(ns) + b"," + canonical(key) + b"," + (value or b"null") + b"]"
        )
    delta = sha256(b"[" + b",".join(parts) + b"]")
    return sha256_hex(bytes.fromhex(prev_state_hash) + delta)
