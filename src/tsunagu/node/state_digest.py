"""Digests of a node's live ``state`` table, so that peers notice a damaged state row.

The state hash in block headers chains each block's writes; it cannot be recomputed from the
table without a replay, so a byte changed in a ``state`` row is invisible to the block
digests. Each node therefore computes a digest of the table itself: SHA-256 over every row
in ``(ns, key)`` order, each of ``ns``, ``key`` and ``value`` prefixed by its length. The
rows and the head height are read in one SQLite read transaction (a snapshot), so the digest
is exactly the state at that height, and two nodes' digests at the same height must be equal.

Heights are made to match in two ways: right after committing a height that is a multiple
of ``every_blocks`` the node pins a snapshot (a read transaction opened in the commit
listener, a fraction of a millisecond) and hashes it later in the peer monitor's thread;
and every ``every_seconds`` the monitor hashes the snapshot at its current head (an idle
consortium sits at one height, so every node hashes the same one). The last few
``{height: digest}`` are published in ``/api/v1/consortium/self``; peers compare the
highest height both hold.

The last digest is also kept in ``state-digest.json`` in the data folder; at start-up, when
the head is still at that height, the table is hashed again and compared with it (damage
made while the node was stopped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from tsunagu.node.store import connect

log = logging.getLogger(__name__)

KEEP = 8  # digests published, newest heights
DIGEST_FILE = "state-digest.json"


def state_digest(conn: sqlite3.Connection) -> str:
    """SHA-256 over the ``state`` rows in ``(ns, key)`` order, read on ``conn``."""
    digest = hashlib.sha256()
    for ns, key, value in conn.execute("SELECT ns, key, value FROM state ORDER BY ns, key"):
        for part in (ns.encode(), key.encode(), bytes(value)):
            digest.update(len(part).to_bytes(4, "big"))
            digest.update(part)
    return digest.hexdigest()


def _head_height(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(height) FROM blocks").fetchone()
    return -1 if row is None or row[0] is None else int(row[0])


def pin(path: Path) -> tuple[sqlite3.Connection, int]:
    """Open a read transaction on ``path``: a snapshot of the head height and the state."""
    conn = connect(path, readonly=True)
    conn.execute("BEGIN")
    return conn, _head_height(conn)  # the first read starts the snapshot


def hash_pinned(conn: sqlite3.Connection) -> str:
    try:
        return state_digest(conn)
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("COMMIT")
        conn.close()


class StateDigests:
    """The state digests of one node, computed at matching heights; thread-safe."""

    def __init__(
        self, path: Path, data_dir: Path, every_blocks: int = 100, every_seconds: float = 10.0
    ) -> None:
        self.path = path
        self.file = data_dir / DIGEST_FILE
        self.every_blocks = every_blocks
        self.every_seconds = every_seconds
        self.digests: dict[int, str] = {}
        self.last_ms = 0.0
        self.rows = 0
        self.startup: dict[str, Any] | None = None  # the start-up check's result
        self._pinned: tuple[sqlite3.Connection, int] | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    # -- commit listener (commit thread) -------------------------------------------------

    def on_block(self, block: Any) -> None:
        height = block.header.height
        if height % self.every_blocks:
            return
        conn, at = pin(self.path)
        if at != height:  # a run of blocks committed at once: the snapshot is past it
            conn.close()
            return
        with self._lock:
            old, self._pinned = self._pinned, (conn, at)
        if old is not None:
            old[0].close()

    # -- monitor thread ------------------------------------------------------------------

    def _record(self, height: int, digest: str, ms: float) -> None:
        with self._lock:
            self.digests[height] = digest
            for old in sorted(self.digests)[:-KEEP]:
                del self.digests[old]
            self.last_ms = ms
        with contextlib.suppress(OSError):
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"height": height, "digest": digest}))
            tmp.replace(self.file)

    def _hash(self, conn: sqlite3.Connection, height: int) -> None:
        started = time.perf_counter()
        digest = hash_pinned(conn)
        self._record(height, digest, (time.perf_counter() - started) * 1000)

    def refresh(self, force: bool = False) -> None:
        """Hash a pinned snapshot if one waits; and the current head when due. The period
        stretches to 50 times the last hash's duration, so a big state costs at most ~2 %
        of one core."""
        with self._lock:
            pinned, self._pinned = self._pinned, None
        if pinned is not None:
            self._hash(*pinned)
        wait = max(self.every_seconds, self.last_ms / 1000 * 50)
        if force or time.monotonic() - self._last >= wait:
            self._last = time.monotonic()
            conn, height = pin(self.path)
            if height < 0:
                conn.close()
                return
            self._hash(conn, height)

    def check_at_startup(self) -> dict[str, Any] | None:
        """Compare the table with the digest recorded before the node stopped, when the head
        has not moved since; the result is also kept in :attr:`startup`."""
        try:
            recorded = json.loads(self.file.read_text())
            height, digest = int(recorded["height"]), str(recorded["digest"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        conn, at = pin(self.path)
        if at != height:
            conn.close()
            return None
        started = time.perf_counter()
        now = hash_pinned(conn)
        self._record(height, now, (time.perf_counter() - started) * 1000)
        self.startup = {"height": height, "ok": now == digest}
        if now != digest:
            log.error("state table differs from the digest recorded at height %d", height)
        return self.startup

    def published(self) -> dict[str, str]:
        with self._lock:
            return {str(h): d for h, d in sorted(self.digests.items())}


def compare(mine: dict[str, str], theirs: Any) -> tuple[int, bool] | None:
    """(height, equal) at the highest height both hold; ``None`` when none is common."""
    if not isinstance(theirs, dict):
        return None
    common = [h for h in mine if h in theirs]
    if not common:
        return None
    height = max(common, key=int)
    return int(height), mine[height] == theirs[height]
