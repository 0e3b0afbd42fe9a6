"""The community app's private data, off the chain: ``<data>/community.db``.

Everything about a person lives here, never on the chain: their nickname and contact, what
they wrote in a help request, their credentials, each encrypted with AES-256-GCM under a key
of their own. That key is itself wrapped under a key derived from the node's master key. The
salt of their hashed identity is stored in plain text beside it: it is no secret (every
credential of theirs carries it); an erasure deletes it with the rest.

Erasing a resident deletes their key (crypto-shredding) along with the rows. The connection
runs with ``secure_delete`` (deleted content is overwritten with zeros) and the erasure ends
with a ``wal_checkpoint(TRUNCATE)``, so neither ``community.db`` nor its ``-wal`` file keeps a
copy of the key box. A copy made before the erasure (a backup) still holds the wrapped key and
can be opened by whoever also holds the node's master key. The chain keeps only pseudonymous
ids and hashes, so it verifies as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

COMMUNITY_DB = "community.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS community_keys (
    vid TEXT PRIMARY KEY,
    key_box BLOB NOT NULL,
    salt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS community_boxes (
    vid TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    box BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (vid, kind, ref)
);
CREATE INDEX IF NOT EXISTS community_boxes_ref ON community_boxes (kind, ref);
CREATE TABLE IF NOT EXISTS community_erased (vid TEXT PRIMARY KEY, at REAL NOT NULL);
"""
QR_SECONDS = 30  # how long one rotating check-in code lasts
QR_GRACE = 4  # windows a scanned code stays good for (a slow phone, a queue at the door)


class CommunityStore:
    """One node's private community data. Small and rare writes: one connection per thread."""

    def __init__(self, data_dir: Path, web_secret: bytes) -> None:
        self._path = Path(data_dir) / COMMUNITY_DB
        self._local = threading.local()
        self._wrap = AESGCM(hashlib.sha256(b"tsunagu-community-wrap\x00" + web_secret).digest())
        self._qr_secret = hashlib.sha256(b"tsunagu-community-qr\x00" + web_secret).digest()
        self._handle_secret = hashlib.sha256(b"tsunagu-community-handle\x00" + web_secret).digest()
        self._share_secret = hashlib.sha256(b"tsunagu-community-share\x00" + web_secret).digest()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    # -- per-resident keys ----------------------------------------------------------------

    def _key(self, vid: str, create: bool = True) -> tuple[AESGCM, str] | None:
        row = (
            self._conn()
            .execute("SELECT key_box, salt FROM community_keys WHERE vid = ?", (vid,))
            .fetchone()
        )
        if row is None:
            if not create or self.erased(vid):
                return None
            key = AESGCM.generate_key(bit_length=256)
            nonce = secrets.token_bytes(12)
            box = nonce + self._wrap.encrypt(nonce, key, vid.encode())
            salt = secrets.token_hex(16)
            self._conn().execute(
                "INSERT OR IGNORE INTO community_keys VALUES (?,?,?)", (vid, box, salt)
            )
            return self._key(vid, create=False)
        box = bytes(row[0])
        return AESGCM(self._wrap.decrypt(box[:12], box[12:], vid.encode())), row[1]

    def salt(self, vid: str) -> str:
        found = self._key(vid)
        if found is None:
            raise KeyError(vid)
        return found[1]

    def erased(self, vid: str) -> bool:
        row = self._conn().execute("SELECT 1 FROM community_erased WHERE vid = ?", (vid,))
        return row.fetchone() is not None

    # -- encrypted boxes ------------------------------------------------------------------

    def put(self, vid: str, kind: str, ref: str, value: Any) -> None:
        found = self._key(vid)
        if found is None:
            return  # erased: nothing more is kept about this person
        aead, _ = found
        nonce = secrets.token_bytes(12)
        aad = f"{vid}/{kind}/{ref}".encode()
        box = nonce + aead.encrypt(nonce, json.dumps(value, ensure_ascii=False).encode(), aad)
        self._conn().execute(
            "INSERT OR REPLACE INTO community_boxes VALUES (?,?,?,?,?)",
            (vid, kind, ref, box, time.time()),
        )

    def get(self, vid: str, kind: str, ref: str) -> Any:
        row = (
            self._conn()
            .execute(
                "SELECT box FROM community_boxes WHERE vid = ? AND kind = ? AND ref = ?",
                (vid, kind, ref),
            )
            .fetchone()
        )
        return None if row is None else self._open(vid, kind, ref, bytes(row[0]))

    def _open(self, vid: str, kind: str, ref: str, box: bytes) -> Any:
        found = self._key(vid, create=False)
        if found is None:
            return None
        aad = f"{vid}/{kind}/{ref}".encode()
        return json.loads(found[0].decrypt(box[:12], box[12:], aad))

    def all(self, vid: str, kind: str) -> dict[str, Any]:
        rows = (
            self._conn()
            .execute(
                "SELECT ref, box FROM community_boxes WHERE vid = ? AND kind = ?"
                " ORDER BY created_at",
                (vid, kind),
            )
            .fetchall()
        )
        return {ref: self._open(vid, kind, ref, bytes(box)) for ref, box in rows}

    def by_ref(self, kind: str, ref: str) -> tuple[str, Any] | None:
        """The owner and value of a box found by its reference (e.g. a credential's hash)."""
        row = (
            self._conn()
            .execute("SELECT vid, box FROM community_boxes WHERE kind = ? AND ref = ?", (kind, ref))
            .fetchone()
        )
        if row is None:
            return None
        return row[0], self._open(row[0], kind, ref, bytes(row[1]))

    def profile(self, vid: str) -> dict[str, Any]:
        return self.get(vid, "profile", "me") or {}

    # -- export and erasure ---------------------------------------------------------------

    def export(self, vid: str) -> dict[str, Any]:
        kinds = (
            self._conn()
            .execute("SELECT DISTINCT kind FROM community_boxes WHERE vid = ?", (vid,))
            .fetchall()
        )
        found = self._key(vid, create=False)
        return {
            "salt": found[1] if found else None,
            **{kind: self.all(vid, kind) for (kind,) in kinds},
        }

    def erase(self, vid: str) -> None:
        """Crypto-shredding: the resident's key, salt and every box are deleted for good.

        ``secure_delete`` zeroes the freed pages; the checkpoint then copies them into the
        database file and truncates the WAL, so no copy of the key box is left in either file.
        """
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM community_keys WHERE vid = ?", (vid,))
            conn.execute("DELETE FROM community_boxes WHERE vid = ?", (vid,))
            conn.execute("INSERT OR IGNORE INTO community_erased VALUES (?,?)", (vid, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it; raise if a reader held it back."""
        for _ in range(50):
            busy, _, _ = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("community.db: the WAL could not be checkpointed after an erasure")

    # -- opaque handles and share links ---------------------------------------------------

    def handle(self, vid: str) -> str:
        """How other residents see a person: an HMAC of their id that only this node can link
        back to it (:meth:`vid_of`), so a page never shows the key id that signs on the chain."""
        return "n-" + hmac.new(self._handle_secret, vid.encode(), hashlib.sha256).hexdigest()[:24]

    def vid_of(self, handle: str, candidates: Iterable[str]) -> str | None:
        """The id among ``candidates`` whose handle is ``handle``, if any."""
        for vid in candidates:
            if hmac.compare_digest(self.handle(vid), handle):
                return vid
        return None

    def share_token(self, digest: str) -> str:
        """The secret of a credential's share link (``?k=``): without it, only the owner sees
        the credential on this node."""
        return hmac.new(self._share_secret, digest.encode(), hashlib.sha256).hexdigest()[:32]

    def share_valid(self, digest: str, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.share_token(digest).encode())

    # -- rotating check-in codes ----------------------------------------------------------

    def qr_token(self, activity: str, now: float | None = None) -> str:
        window = int((time.time() if now is None else now) // QR_SECONDS)
        return f"{window}.{self._mac(activity, window)}"

    def _mac(self, activity: str, window: int) -> str:
        message = f"{activity}|{window}".encode()
        return hmac.new(self._qr_secret, message, hashlib.sha256).hexdigest()[:20]

    def qr_valid(self, activity: str, token: str, now: float | None = None) -> bool:
        window_text, _, mac = token.partition(".")
        if not window_text.isdigit() or len(window_text) > 12:
            return False
        window = int(window_text)
        current = int((time.time() if now is None else now) // QR_SECONDS)
        if not current - QR_GRACE <= window <= current:
            return False
        return hmac.compare_digest(mac, self._mac(activity, window))


_stores: dict[str, CommunityStore] = {}
_lock = threading.Lock()


def store_for(data_dir: Path, web_secret: bytes) -> CommunityStore:
    with _lock:
        key = str(Path(data_dir).resolve())
        if key not in _stores:
            _stores[key] = CommunityStore(Path(data_dir), web_secret)
        return _stores[key]
