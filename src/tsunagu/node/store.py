"""The node's SQLite store of blocks, transactions, log nodes and state.

One writer (the commit path) owns the connection that writes; every other thread reads
through its own connection. WAL with ``synchronous=FULL`` makes a committed block durable
before the writer returns, which is what lets a write be acknowledged (the solo engine
commits with ``synchronous=NORMAL`` and syncs the log afterwards, see :meth:`Store.sync`).
A :class:`Checkpointer` thread copies the log back into the database file, off the commit
path.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tsunagu.ledger.block import Block, BlockHeader, TxResult
from tsunagu.ledger.canonical import canonical, loads_json
from tsunagu.ledger.merkle import Frontier, frontier_from_reader
from tsunagu.ledger.tx import Transaction, decode_leaf

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    header BLOB NOT NULL,
    signature TEXT NOT NULL,
    first_index INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    log_index INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    height INTEGER NOT NULL,
    leaf BLOB NOT NULL,
    result BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_id ON txs (id);
CREATE TABLE IF NOT EXISTS log_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Head:
    height: int
    hash: str
    tree_size: int
    tree_root: str
    state_hash: str
    timestamp: str

    @classmethod
    def of(cls, header: BlockHeader) -> Head:
        """The head a block with ``header`` makes."""
        return cls(
            header.height,
            header.hash,
            header.tree_size,
            header.tree_root,
            header.state_hash,
            header.timestamp,
        )


@dataclass(frozen=True, slots=True)
class StoredTx:
    tx: Transaction
    height: int
    log_index: int
    result: TxResult


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{quote(str(Path(path).resolve()))}?mode=ro",
            uri=True,
            check_same_thread=False,
            isolation_level=None,
        )
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class StateStore:
    """State reads on one connection (the writer's inside a block, or a reader's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT value FROM state WHERE ns = ? AND key = ?", (ns, key)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def get_raw(self, ns: str, key: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT value FROM state WHERE ns = ? AND key = ?", (ns, key)
        ).fetchone()
        return None if row is None else row[0]

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        rows = self.conn.execute(
            "SELECT key, value FROM state WHERE ns = ? AND key >= ? AND key < ? ORDER BY key",
            (ns, prefix, prefix + "\U0010ffff"),
        ).fetchall()
        for key, value in rows:
            yield key, json.loads(value)


WRITER_CACHE_KIB = 64 * 1024  # SQLite page cache of the writer connection
# The write-ahead log is copied back into the database by a checkpointer thread (below) at most
# every CHECKPOINT_EVERY seconds while blocks commit; the writer checkpoints by itself only if
# the log grows to WRITER_AUTOCHECKPOINT pages all the same (SQLite's default is 1,000).
CHECKPOINT_EVERY = 0.05
WRITER_AUTOCHECKPOINT = 10_000
STATE_CACHE_ENTRIES = 50_000  # raw state values kept for the commit path; emptied when full
PREFETCH_CHUNK = 500  # keys per query of CachedStateStore.prefetch
_MISSING = object()
loads = loads_json  # json.loads for stored values (see tsunagu.ledger.canonical)


class CachedStateStore(StateStore):
    """Committed state as the commit path reads it: point reads are served from the store's
    cache of raw committed values, and scans go to SQLite.

    The cache holds exactly what the ``state`` table holds: entries are filled from the
    writer's reads, replaced by each block's writes once that block has committed, and
    dropped whenever another connection has changed the database (``PRAGMA data_version``).
    Callers get freshly decoded values, so a contract may modify what it reads.
    """

    def __init__(self, conn: sqlite3.Connection, cache: dict) -> None:
        super().__init__(conn)
        self._cache = cache

    def get_raw(self, ns: str, key: str) -> bytes | None:
        raw = self._cache.get((ns, key), _MISSING)
        if raw is _MISSING:
            raw = super().get_raw(ns, key)
            self._cache[(ns, key)] = raw
        return raw  # type: ignore[return-value]

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        raw = self._cache.get((ns, key), _MISSING)
        if raw is _MISSING:
            raw = super().get_raw(ns, key)
            self._cache[(ns, key)] = raw
        return None if raw is None else loads(raw)  # type: ignore[arg-type]

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the committed values of ``keys`` (``(ns, key)`` pairs) that are not cached yet
        into the cache, a key without a value as absent, in one query per namespace and
        ``PREFETCH_CHUNK`` keys: what a run of blocks will read, read before it is executed
        instead of one query per key when execution first asks (each query hands the
        interpreter lock to whichever thread wants it, and gets it back only when that thread
        lets go)."""
        cache = self._cache
        wanted: dict[str, dict[str, None]] = {}
        for ns, key in keys:
            if type(ns) is str and type(key) is str and (ns, key) not in cache:
                wanted.setdefault(ns, {})[key] = None
        for ns, names in wanted.items():
            todo = list(names)
            for i in range(0, len(todo), PREFETCH_CHUNK):
                chunk = todo[i : i + PREFETCH_CHUNK]
                marks = ",".join("?" * len(chunk))
                found = dict(
                    self.conn.execute(
                        f"SELECT key, value FROM state WHERE ns = ? AND key IN ({marks})",
                        (ns, *chunk),
                    ).fetchall()
                )
                for key in chunk:
                    cache[(ns, key)] = found.get(key)


# What write_block stores as the result of every committed transaction (computed the way it
# stores any result, once).
_COMMITTED_JSON = json.dumps(TxResult("committed").to_json(), ensure_ascii=False)


def _result_json(result: TxResult) -> str:
    if result.status == "committed":
        return _COMMITTED_JSON
    return json.dumps(result.to_json(), ensure_ascii=False)


result_json = _result_json  # public: the exact text write_block stores for a result


class Store:
    """Blocks, transactions, the Merkle log and state of one node, in ``chain.db``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = connect(path)
        # A bigger page cache for the one writer (the default is 2 MiB): the commit path reads
        # and updates the state and index b-trees of every block.
        self.writer.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        self.writer.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}")
        self.writer.executescript(SCHEMA)
        self.checkpointer = Checkpointer(path)
        self._local = threading.local()
        self._state_cache: dict[tuple[str, str], bytes | None] = {}
        self._data_version: int | None = None
        self._wal_fd: int | None = None

    # -- reading ---------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    def state(self, conn: sqlite3.Connection | None = None) -> StateStore:
        return StateStore(conn or self.reader())

    def committed_state(self) -> CachedStateStore:
        """State for the commit path, on :attr:`writer` inside its open transaction."""
        version = self.writer.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version or len(self._state_cache) > STATE_CACHE_ENTRIES:
            self._state_cache.clear()
            self._data_version = version
        return CachedStateStore(self.writer, self._state_cache)

    def state_committed(self, writes: list[tuple[str, str, bytes | None]]) -> None:
        """Tell the state cache that a block with ``writes`` has committed."""
        cache = self._state_cache
        for ns, key, value in writes:
            cache[(ns, key)] = value

    def meta(self, key: str, conn: sqlite3.Connection | None = None) -> str | None:
        row = (conn or self.reader()).execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def head(self, conn: sqlite3.Connection | None = None) -> Head | None:
        row = (
            (conn or self.reader())
            .execute("SELECT header FROM blocks ORDER BY height DESC LIMIT 1")
            .fetchone()
        )
        if row is None:
            return None
        header = BlockHeader.from_json(json.loads(row[0]))
        return Head.of(header)

    def header(self, height: int) -> tuple[BlockHeader, str] | None:
        stored = self._stored(self.reader(), height)
        return None if stored is None else (stored[0], stored[1])

    @staticmethod
    def _stored(conn: sqlite3.Connection, height: int) -> tuple[BlockHeader, str, int] | None:
        """The header, signature and first log index of the block at ``height``. txs has no
        index on height: a block's rows are found by log index (the primary key), from its
        first index for its tx_count ("WHERE height = ?" alone scans the whole table)."""
        row = conn.execute(
            "SELECT header, signature, first_index FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        return None if row is None else (BlockHeader.from_json(json.loads(row[0])), *row[1:])

    def block(self, height: int, conn: sqlite3.Connection | None = None) -> Block | None:
        conn = conn or self.reader()
        stored = self._stored(conn, height)
        if stored is None:
            return None
        header, signature, first = stored
        rows = conn.execute(
            "SELECT leaf, result FROM txs WHERE log_index BETWEEN ? AND ? AND height = ?"
            " ORDER BY log_index",
            (first, first + header.tx_count - 1, height),
        ).fetchall()
        return Block(
            header=header,
            signature=signature,
            txs=tuple(decode_leaf(leaf) for leaf, _ in rows),
            results=tuple(TxResult.from_json(json.loads(result)) for _, result in rows),
        )

    def app_txs(
        self, height: int, app: str, conn: sqlite3.Connection | None = None
    ) -> tuple[BlockHeader, list[tuple[int, Transaction, TxResult]]] | None:
        """The header of the block at ``height`` and, of its transactions, only ``app``'s,
        each with its log index and result (``None`` when there is no such block): what an
        application's listener reads to catch up. The other transactions are not decoded, nor
        even read out of SQLite: a leaf is canonical JSON, whose first member is ``app`` (the
        envelope's keys in order), so ``app``'s leaves are those that begin with
        ``{"app":"<app>",``."""
        conn = conn or self.reader()
        stored = self._stored(conn, height)
        if stored is None:
            return None
        header, _, first = stored
        prefix = b'{"app":' + canonical(app) + b","
        rows = conn.execute(
            "SELECT log_index, leaf, result FROM txs WHERE log_index BETWEEN ? AND ?"
            " AND height = ? AND substr(leaf, 1, ?) = ? ORDER BY log_index",
            (first, first + header.tx_count - 1, height, len(prefix), prefix),
        ).fetchall()
        return header, [
            (index, decode_leaf(leaf), TxResult.from_json(json.loads(result)))
            for index, leaf, result in rows
        ]

    def blocks_desc(self, limit: int, before: int | None = None) -> list[BlockHeader]:
        conn = self.reader()
        if before is None:
            rows = conn.execute(
                "SELECT header FROM blocks ORDER BY height DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT header FROM blocks WHERE height < ? ORDER BY height DESC LIMIT ?",
                (before, limit),
            ).fetchall()
        return [BlockHeader.from_json(json.loads(r[0])) for r in rows]

    def tx(self, tx_id: str) -> StoredTx | None:
        rows = (
            self.reader()
            .execute(
                "SELECT leaf, height, log_index, result FROM txs WHERE id = ? ORDER BY log_index",
                (tx_id,),
            )
            .fetchall()
        )
        if not rows:
            return None
        # A replayed copy can only ever be rejected; the committed one is the answer.
        chosen = next((r for r in rows if '"committed"' in r[3]), rows[0])
        leaf, height, log_index, result = chosen
        return StoredTx(
            decode_leaf(leaf), height, log_index, TxResult.from_json(json.loads(result))
        )

    def tx_at(self, log_index: int) -> StoredTx | None:
        row = (
            self.reader()
            .execute(
                "SELECT leaf, height, log_index, result FROM txs WHERE log_index = ?", (log_index,)
            )
            .fetchone()
        )
        if row is None:
            return None
        leaf, height, index, result = row
        return StoredTx(decode_leaf(leaf), height, index, TxResult.from_json(json.loads(result)))

    def leaves(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return (
            self.reader()
            .execute(
                "SELECT log_index, leaf FROM txs"
                " WHERE log_index BETWEEN ? AND ? ORDER BY log_index",
                (start, end),
            )
            .fetchall()
        )

    def node_reader(self, conn: sqlite3.Connection | None = None):
        """A Merkle node reader over the stored perfect-subtree nodes."""
        conn = conn or self.reader()
        query = "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?"

        def get(level: int, index: int) -> bytes:
            row = conn.execute(query, (level, index)).fetchone()
            if row is None:
                raise LookupError(f"log node ({level}, {index}) is missing")
            return bytes(row[0])

        return get

    def frontier(self, conn: sqlite3.Connection | None = None) -> Frontier:
        head = self.head(conn)
        if head is None:
            return Frontier.empty()
        return frontier_from_reader(head.tree_size, self.node_reader(conn or self.writer))

    # -- writing (commit path only) ----------------------------------------------------

    def write_block(
        self,
        block: Block,
        first_index: int,
        nodes: list[tuple[int, int, bytes]],
        writes: list[tuple[str, str, bytes | None]],
        meta: dict[str, str] | None = None,
    ) -> None:
        """Persist one block with its log nodes and state writes, atomically and durably.

        The caller has already opened the transaction (``BEGIN IMMEDIATE``) on
        :attr:`writer`, so that execution read the same snapshot it writes over.
        """
        conn = self.writer
        header = block.header
        conn.execute(
            "INSERT INTO blocks (height, hash, header, signature, first_index) VALUES (?,?,?,?,?)",
            (header.height, header.hash, header.canonical(), block.signature, first_index),
        )
        conn.executemany(
            "INSERT INTO txs (log_index, id, height, leaf, result) VALUES (?,?,?,?,?)",
            [
                (
                    first_index + i,
                    tx.id,
                    header.height,
                    tx.leaf,
                    _result_json(result),
                )
                for i, (tx, result) in enumerate(zip(block.txs, block.results, strict=True))
            ],
        )
        conn.executemany("INSERT INTO log_nodes (level, idx, hash) VALUES (?,?,?)", nodes)
        puts = [(ns, key, value) for ns, key, value in writes if value is not None]
        deletes = [(ns, key) for ns, key, value in writes if value is None]
        if puts:
            conn.executemany("INSERT OR REPLACE INTO state (ns, key, value) VALUES (?,?,?)", puts)
        if deletes:
            conn.executemany("DELETE FROM state WHERE ns = ? AND key = ?", deletes)
        for key, value in (meta or {}).items():
            conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def sync(self) -> None:
        """Make every transaction committed so far durable: ``fsync`` the write-ahead log.

        For commits made with ``synchronous=NORMAL`` (see :meth:`Node.write_built`): SQLite
        then writes the WAL frames of a commit without syncing them (and stays consistent
        across a power loss: it syncs before and after each checkpoint); one ``fsync`` of
        the WAL file afterwards makes all of them durable, for however many commits."""
        if self._wal_fd is None:
            wal = Path(f"{self.path}-wal")
            fd = os.open(wal, os.O_RDONLY)  # the writer's WAL exists once it has committed
            directory = os.open(wal.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the WAL's own directory entry, once
            finally:
                os.close(directory)
            self._wal_fd = fd
        os.fsync(self._wal_fd)

    def close(self) -> None:
        self.checkpointer.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self.writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


class Checkpointer:
    """Copies the write-ahead log back into the database, on its own connection and thread.

    SQLite's automatic checkpoint runs inside the commit that crosses its threshold: every
    thousand pages or so, one block's commit also copies those pages into the database file
    and syncs it, on the commit path. Here a passive checkpoint (it never blocks the writer or
    a reader) runs on another thread after commits, at most every ``CHECKPOINT_EVERY``
    seconds; SQLite does the copying and syncing without holding the interpreter lock, so the
    commit path goes on meanwhile. Durability is unchanged: a commit is in the log, and a
    checkpoint only moves what the log already holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.passes = 0  # checkpoints run so far

    def committed(self) -> None:
        """A transaction has committed on the writer: a checkpoint is due soon."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run, name="checkpointer", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        try:
            conn = connect(self.path)
        except sqlite3.Error:  # the writer's own automatic checkpoint still runs
            log.warning("the checkpointer could not open %s", self.path, exc_info=True)
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()  # before looking: a close from now on wakes the next wait
                if self._closed:
                    return
                time.sleep(CHECKPOINT_EVERY)  # let more commits join this pass
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy with another checkpoint: the next pass copies it
                    log.debug("passive checkpoint skipped", exc_info=True)
                self.passes += 1
        finally:
            conn.close()
