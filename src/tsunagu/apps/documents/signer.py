"""Who signed a document's transaction: the signer's member record, for the proof bundle.

The contract accepted the document because its signer's key was registered for a
municipality with role ``staff``. A third party checks that from the chain itself: the bundle
carries the committed identity transactions that set the key's organisation and roles (its
registration, then any ``member.roles`` before the document), each proven like the document's
own transaction (see :func:`tsunagu.apps.documents.api.proof_bundle`).

Finding them means reading the identity transactions of the whole log. They are few, so the
log is read once per node and then only its new part, keeping for each key id the log
indexes of the transactions that concern it.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.keys import key_id

IDENTITY = b'{"app":' + canonical("identity") + b","  # a leaf is canonical: app comes first
REGISTERING = ("member.add", "node.add", "device.add")


def _keys_set(tx: dict[str, Any]) -> list[str]:
    """The key ids whose organisation or roles a committed identity transaction sets."""
    payload = tx.get("payload") or {}
    kind = tx.get("type")
    if kind == "genesis":
        entries = [*payload.get("nodes", []), *payload.get("members", [])]
        return [key_id(bytes.fromhex(e["public_key"])) for e in entries]
    if kind in REGISTERING:
        return [key_id(bytes.fromhex(payload["public_key"]))]
    if kind == "member.roles":
        return [payload["key_id"]]
    return []


class _Index:
    """Key id -> the log indexes of the committed identity transactions that concern it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scanned = 0  # log indexes below this one are read
        self.by_key: dict[str, list[int]] = {}

    def update(self, conn: Any) -> None:
        top = conn.execute("SELECT COALESCE(MAX(log_index), -1) FROM txs").fetchone()[0]
        rows = conn.execute(
            "SELECT log_index, leaf, result FROM txs WHERE log_index BETWEEN ? AND ?"
            " AND substr(leaf, 1, ?) = ? ORDER BY log_index",
            (self.scanned, top, len(IDENTITY), IDENTITY),
        ).fetchall()
        for index, leaf, result in rows:
            if json.loads(result).get("status") != "committed":
                continue
            for kid in _keys_set(json.loads(bytes(leaf))):
                self.by_key.setdefault(kid, []).append(index)
        self.scanned = max(self.scanned, top + 1)


_indexes: weakref.WeakKeyDictionary[Any, _Index] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def member_indexes(store: Any, signer: str, before: int) -> list[int]:
    """Log indexes, oldest first, of the committed identity transactions before log index
    ``before`` that set the organisation or roles of key id ``signer``."""
    with _indexes_lock:
        index = _indexes.setdefault(store, _Index())
    with index.lock:
        if index.scanned < before:
            index.update(store.reader())
        return [i for i in index.by_key.get(signer, []) if i < before]
