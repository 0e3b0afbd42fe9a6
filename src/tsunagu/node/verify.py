"""``tsunagu verify``: re-check a node's whole ``chain.db`` from nothing, read-only.

Everything stored is recomputed and compared with what is stored: the chain of blocks (heights,
canonical headers, hashes, links, chain id, timestamps, counts, proposer signatures), every
transaction (canonical leaf, id, signature), every result and state hash (by replaying the chain
with the contracts on a fresh in-memory state), the Merkle log (each header's root and every
stored node) and, at the end, the whole state table.

Signature checks and strict leaf decoding dominate the cost, so worker processes do them in
batches while this process replays. The report names the first problem in chain order: the
lowest block height, and within a block the earliest check (header, proposer signature,
transactions in order, results, hashes, log).

Two choices worth knowing:

* The proposer's key comes from ``identity.node`` in the replayed state *before* the block. Block 0
  has no state before it, so its proposer is checked against the state *after* replaying it,
  that is against the ``nodes`` of the genesis payload.
* A transaction whose signer is not registered (its result is then ``unknown_signer``) has no key
  to check a signature against; only its result is checked.

The database is opened with ``mode=ro`` inside one read transaction, so a node may keep writing
while it is verified: the verifier sees one consistent snapshot. SQLite may create the empty
``-wal``/``-shm`` side files a WAL database needs; ``chain.db`` itself is never written.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tsunagu.contracts import Contract
from tsunagu.ledger import merkle
from tsunagu.ledger.block import COMMITTED, ZERO_HASH, BlockHeader, TxResult
from tsunagu.ledger.canonical import canonical, is_hex, sha256_hex
from tsunagu.ledger.keys import key_id, verify_signature
from tsunagu.ledger.tx import Transaction, decode_leaf
from tsunagu.node.executor import GENESIS, MEMBER_NS, Execution, Executor, _genesis_signer
from tsunagu.node.node import CHAIN_DB
from tsunagu.node.store import SCHEMA, STATE_CACHE_ENTRIES, CachedStateStore, _result_json

__all__ = ["VerifyReport", "verify_chain"]

NODE_NS = "identity.node"
BATCH = 2000  # leaves per worker task: enough that pickling and IPC stay a few percent of the work
PROGRESS_EVERY = 100  # blocks

# Check stages, in the order a block is checked; they order problems within one block.
_HEADER, _PROPOSER, _TX, _RESULT, _HASHES, _LOG = range(6)


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_chain`.

    ``height`` is the height of the first bad block, or ``None`` when the chain is good or the
    problem is not tied to one block (a missing file, extra log nodes, a differing state row).
    ``blocks`` and ``transactions`` count what was checked before stopping.
    """

    ok: bool
    height: int | None
    problem: str | None
    blocks: int
    transactions: int
    seconds: float


class _Problem(Exception):
    def __init__(
        self, height: int | None, problem: str, stage: int = _HEADER, index: int = 0, sub: int = 0
    ) -> None:
        super().__init__(problem)
        self.height = height
        self.problem = problem
        self.order = (math.inf if height is None else height, stage, index, sub)


def verify_chain(
    data_dir: Path,
    contracts: Sequence[Contract],
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Re-check everything in ``data_dir/chain.db`` and report the first problem, if any.

    ``contracts`` must be the chain's contracts (they replay it). ``progress(done, total)`` is
    called every 100 blocks and at the end. ``workers`` is the number of processes that decode
    leaves and check signatures (default: one per CPU); 0 does it all in this process.
    """
    started = time.perf_counter()
    path = Path(data_dir) / CHAIN_DB
    if not path.is_file():
        return VerifyReport(False, None, "chain.db is missing", 0, 0, 0.0)
    if workers is None:
        workers = os.cpu_count() or 1
    # The pool forks before any database is open, so no child inherits a live SQLite handle.
    checks = _Checks(workers)
    verifier = None
    try:
        verifier = _Verifier(path, contracts, checks, progress)
        problem = verifier.run()
    except sqlite3.DatabaseError as exc:
        height = None if verifier is None else verifier.height
        problem = _Problem(height, f"chain.db cannot be read: {exc}")
    finally:
        checks.close()
        if verifier is not None:
            verifier.close()
    return VerifyReport(
        ok=problem is None,
        height=None if problem is None else problem.height,
        problem=None if problem is None else problem.problem,
        blocks=0 if verifier is None else verifier.blocks,
        transactions=0 if verifier is None else verifier.transactions,
        seconds=time.perf_counter() - started,
    )


# -- leaves and signatures, in worker processes -----------------------------------------------

# (height, index in block, log index, leaf, the signer's public key or None)
_TxItem = tuple[int, int, int, bytes, bytes | None]
# (height, the proposer's public key, the signature column, the canonical header bytes)
_HeaderItem = tuple[int, bytes, Any, bytes]
# (height, stage, index, sub-check, problem): the order of a _Problem and its text
_Failure = tuple[int, int, int, int, str]


def _where(height: int, index: int, log_index: int) -> str:
    return f"block {height}: transaction {index} (log index {log_index})"


def _check_batch(headers: list[_HeaderItem], txs: list[_TxItem]) -> list[_Failure]:
    """Runs in a worker: verify proposer signatures, decode leaves strictly and verify their
    signatures; return what failed.

    Strict decoding (RFC 8785 canonical form, exact envelope) costs a third as much as a
    signature check, so it is done here too, off the replaying process.
    """
    failures: list[_Failure] = []
    for height, public_key, signature, header in headers:
        # The header bytes were checked to be the header's canonical form, so this is exactly
        # verify_header_signature without canonicalizing the header once more.
        if not (
            is_hex(signature, 128)
            and verify_signature(public_key, bytes.fromhex(signature), header)
        ):
            problem = f"block {height}: the proposer's signature does not verify"
            failures.append((height, _PROPOSER, 0, 0, problem))
    for height, index, log_index, leaf, public_key in txs:
        try:
            tx = decode_leaf(leaf)
        except Exception as exc:  # malformed, not canonical, or not JSON at all
            where = _where(height, index, log_index)
            failures.append((height, _TX, index, 0, f"{where} leaf does not decode: {exc}"))
            continue
        if public_key is None:
            continue
        if not verify_signature(public_key, bytes.fromhex(tx.signature), tx.signing_bytes()):
            where = _where(height, index, log_index)
            failures.append((height, _TX, index, 1, f"{where} signature does not verify"))
    return failures


class _Checks:
    """Runs :func:`_check_batch` over batches, in a process pool when there are workers."""

    def __init__(self, workers: int) -> None:
        self._pool = None
        if workers > 0:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            self._pool = multiprocessing.get_context(method).Pool(workers)
        # Bounded so that a replay faster than the pool cannot pile up leaves in memory.
        self._max_pending = 2 * workers + 2
        self._headers: list[_HeaderItem] = []
        self._txs: list[_TxItem] = []
        self._pending: deque[Any] = deque()
        self.first: _Problem | None = None

    def add_header(self, item: _HeaderItem) -> None:
        self._headers.append(item)
        if len(self._headers) + len(self._txs) >= BATCH:
            self.flush()

    def add_tx(self, item: _TxItem) -> None:
        self._txs.append(item)
        if len(self._headers) + len(self._txs) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not (self._headers or self._txs):
            return
        batch = (self._headers, self._txs)
        self._headers, self._txs = [], []
        if self._pool is None:
            self._record(_check_batch(*batch))
            return
        self._pending.append(self._pool.apply_async(_check_batch, batch))
        while len(self._pending) > self._max_pending:
            self._record(self._pending.popleft().get())

    def poll(self) -> None:
        while self._pending and self._pending[0].ready():
            self._record(self._pending.popleft().get())

    def drain(self) -> None:
        self.flush()
        while self._pending:
            self._record(self._pending.popleft().get())

    def _record(self, failures: list[_Failure]) -> None:
        for height, stage, index, sub, text in failures:
            problem = _Problem(height, text, stage, index, sub)
            if self.first is None or problem.order < self.first.order:
                self.first = problem

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _read_leaf(leaf: bytes) -> Transaction:
    """The transaction the replay needs, without the strict checks (the workers make them).

    Raises on a leaf too broken to replay; :func:`decode_leaf` then says why.
    """
    body = json.loads(leaf)
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
    )


class _KeyedExecutor(Executor):
    """The node's executor, noting for each transaction the public key its signature must verify
    under: the signer's member key in the state just before it (for the genesis transaction, the
    key in its own payload), or ``None`` when the signer is unknown."""

    def __init__(self, contracts: Sequence[Contract]) -> None:
        super().__init__(contracts)
        self.keys: list[bytes | None] = []
        # Member keys by key id. Identity never deletes a member row or changes its key (the id
        # is the key's hash), so a key once found in the replayed state stays the answer.
        self._known: dict[str, bytes] = {}

    def _one(self, state: Any, tx: Transaction, chain_id: str, height: int, *rest: Any) -> Any:
        try:
            key = self._signer_key(state, tx, height)
        except Exception:  # a leaf the workers will refuse; keep keys aligned with the txs
            key = None
        self.keys.append(key)
        return super()._one(state, tx, chain_id, height, *rest)

    def _signer_key(self, state: Any, tx: Transaction, height: int) -> bytes | None:
        if (tx.app, tx.type) == GENESIS and height == 0:
            member = _genesis_signer(tx)
            return None if member is None else member.public_key
        key = self._known.get(tx.signer)
        if key is None:
            raw = state.get(MEMBER_NS, tx.signer)
            if raw is None:
                return None
            key = bytes.fromhex(raw["public_key"])
            if key_id(key) == tx.signer:
                self._known[tx.signer] = key
        return key


# -- the replay ------------------------------------------------------------------------------


class _Rows:
    """A cursor with one row of lookahead."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows = rows
        self.peek = next(rows, None)

    def take(self) -> Any:
        row = self.peek
        self.peek = next(self._rows, None)
        return row


def _connect_readonly(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=1")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("BEGIN")  # one snapshot for the whole run, even while the node writes
    return conn


_COMMITTED_CANONICAL = canonical(COMMITTED.to_json())


def _results_hash(results: list[TxResult]) -> str:
    """:func:`~tsunagu.ledger.block.results_hash`, without canonicalizing the (mostly equal)
    committed results one by one: an RFC 8785 array is its canonical items joined by commas."""
    items = [
        _COMMITTED_CANONICAL if r.status == "committed" else canonical(r.to_json()) for r in results
    ]
    return sha256_hex(b"[" + b",".join(items) + b"]")


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Verifier:
    def __init__(
        self,
        path: Path,
        contracts: Sequence[Contract],
        checks: _Checks,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.checks = checks
        self.progress = progress
        self.executor = _KeyedExecutor(contracts)
        self.height: int | None = None
        self.blocks = 0
        self.transactions = 0
        self.state_db = sqlite3.connect(":memory:", isolation_level=None)
        self.state_db.executescript(SCHEMA)
        # Read the replayed state the way the node's commit path reads committed state.
        self.state_cache: dict[tuple[str, str], bytes | None] = {}
        self.state = CachedStateStore(self.state_db, self.state_cache)
        self.conn = _connect_readonly(path)
        self.prev: BlockHeader | None = None
        self.prev_hash = ZERO_HASH
        self.frontier = merkle.Frontier.empty()
        self.node_count = 0

    def close(self) -> None:
        self.conn.close()
        self.state_db.close()

    def run(self) -> _Problem | None:
        try:
            self._blocks()
        except _Problem as problem:
            self.checks.drain()
            first = self.checks.first
            return first if first is not None and first.order < problem.order else problem
        self.checks.drain()
        if self.checks.first is not None:
            return self.checks.first
        try:
            self._log_nodes_beyond()
            self._state_table()
        except _Problem as problem:
            return problem
        return None

    # -- blocks --------------------------------------------------------------------------

    def _blocks(self) -> None:
        conn = self.conn
        row = conn.execute("SELECT v FROM meta WHERE k = 'chain_id'").fetchone()
        if row is None:
            raise _Problem(None, "meta has no chain_id")
        self.chain_id = row[0]
        total = conn.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        if total == 0:
            raise _Problem(None, "the chain has no blocks")
        self.txs = _Rows(
            conn.execute("SELECT log_index, id, height, leaf, result FROM txs ORDER BY log_index")
        )
        blocks = conn.execute(
            "SELECT height, hash, header, signature, first_index FROM blocks ORDER BY height"
        )
        for h, (height, stored_hash, raw, signature, first_index) in enumerate(blocks):
            self.height = h
            if type(height) is not int:
                raise _Problem(h, f"block {h}: the height column holds {_short(height)}")
            if height != h:
                if h == 0:
                    raise _Problem(0, f"block 0 is missing (heights start at {height})")
                raise _Problem(h, f"block {h} is missing (heights jump from {h - 1} to {height})")
            header = self._header(h, raw, stored_hash, first_index)
            if h > 0:
                self._proposer(h, header, raw, signature)
            txs, stored_results = self._transactions(h, header)
            execution = self._replay(h, header, txs, stored_results)
            self._log(h, header, txs)
            self._apply(execution)
            if h == 0:
                self._proposer(h, header, raw, signature)
            self.prev = header
            self.prev_hash = stored_hash  # checked equal to the header's hash
            self.blocks += 1
            self.transactions += len(txs)
            if self.progress is not None and (self.blocks % PROGRESS_EVERY == 0):
                self.progress(self.blocks, total)
            self.checks.poll()
            first = self.checks.first
            if first is not None and first.order[0] <= h:
                raise first
        if self.progress is not None and self.blocks % PROGRESS_EVERY:
            self.progress(self.blocks, total)
        if self.txs.peek is not None:
            log_index, _, height, _, _ = self.txs.peek
            raise _Problem(
                None,
                f"transaction at log index {log_index} (height {_short(height)}) lies beyond "
                f"the last block {self.blocks - 1}",
            )

    def _header(self, h: int, raw: Any, stored_hash: Any, first_index: Any) -> BlockHeader:
        def bad(what: str) -> _Problem:
            return _Problem(h, f"block {h}: {what}", _HEADER)

        if not isinstance(raw, bytes):
            raise bad("the stored header is not a BLOB")
        try:
            header = BlockHeader.from_json(json.loads(raw))
        except Exception as exc:  # JSON errors, wrong fields or types: all mean a bad header
            raise bad(f"the stored header does not parse ({exc})") from None
        if header.canonical() != raw:
            raise bad("the stored header bytes are not canonical")
        if header.height != h:
            raise bad(f"the header says height {header.height}")
        if stored_hash != sha256_hex(raw):  # raw is header.canonical(): this is header.hash
            raise bad("the stored hash does not match the header's hash")
        if header.chain_id != self.chain_id:
            raise bad(f"chain_id {header.chain_id!r} is not the chain's {self.chain_id!r}")
        prev = self.prev
        if header.prev_hash != self.prev_hash:
            raise bad(
                "prev_hash is not all zeros"
                if prev is None
                else f"prev_hash is not the hash of block {h - 1}"
            )
        if not isinstance(header.proposer, str):
            raise bad("proposer is not a string")
        prev_size = 0 if prev is None else prev.tree_size
        if prev is not None and header.timestamp < prev.timestamp:
            raise bad(f"timestamp {header.timestamp} is before block {h - 1}'s {prev.timestamp}")
        if header.tree_size != prev_size + header.tx_count:
            raise bad(
                f"tree_size {header.tree_size} is not the previous {prev_size} plus "
                f"tx_count {header.tx_count}"
            )
        if first_index != prev_size:
            raise bad(f"first_index is {_short(first_index)}, expected {prev_size}")
        return header

    def _proposer(self, h: int, header: BlockHeader, raw: bytes, signature: Any) -> None:
        node = self.state.get(NODE_NS, header.proposer)
        if node is None:
            raise _Problem(
                h, f"block {h}: proposer {header.proposer!r} is not a registered node", _PROPOSER
            )
        try:
            public_key = bytes.fromhex(node["public_key"])
        except (KeyError, TypeError, ValueError):
            raise _Problem(
                h, f"block {h}: node {header.proposer!r} has no valid public key", _PROPOSER
            ) from None
        self.checks.add_header((h, public_key, signature, raw))

    def _transactions(self, h: int, header: BlockHeader) -> tuple[list[Transaction], list[Any]]:
        start = header.tree_size - header.tx_count
        txs: list[Transaction] = []
        results: list[Any] = []
        for i in range(header.tx_count):
            row = self.txs.peek
            if row is None or row[2] != h:
                raise _Problem(
                    h,
                    f"block {h}: the header says {header.tx_count} transactions but the store "
                    f"has {i} at this height",
                )
            log_index, tx_id, _, leaf, result = self.txs.take()
            where = _where(h, i, log_index)
            if log_index != start + i:
                raise _Problem(h, f"{where} should have log index {start + i}", _TX, i)
            if not isinstance(leaf, bytes):
                raise _Problem(h, f"{where} leaf is not a BLOB", _TX, i)
            try:
                tx = _read_leaf(leaf)
            except Exception:
                try:
                    decode_leaf(leaf)
                    message = "leaf does not decode"  # not reachable: decode_leaf is stricter
                except Exception as exc:
                    message = f"leaf does not decode: {exc}"
                raise _Problem(h, f"{where} {message}", _TX, i) from None
            if tx.id != tx_id:
                raise _Problem(h, f"{where} id column does not match SHA-256 of its leaf", _TX, i)
            txs.append(tx)
            results.append(result)
        row = self.txs.peek
        if row is not None and row[2] == h:
            raise _Problem(
                h,
                f"block {h}: the store has more than the header's {header.tx_count} "
                "transactions at this height",
            )
        return txs, results

    def _replay(
        self, h: int, header: BlockHeader, txs: list[Transaction], stored: list[Any]
    ) -> Execution:
        start = header.tree_size - header.tx_count
        self.executor.keys = []
        try:
            execution = self.executor.execute(
                self.state,
                txs,
                chain_id=self.chain_id,
                height=h,
                timestamp=header.timestamp,
                first_index=start,
                prev_state_hash=ZERO_HASH if self.prev is None else self.prev.state_hash,
                check_signatures=False,
            )
        except Exception as exc:  # a contract that crashes on the chain's own data
            raise _Problem(h, f"block {h}: replay failed ({exc!r})", _RESULT) from None
        # Leaves go to the workers before the results are compared, so that a bad leaf or
        # signature is found even when a later check of the same block fails first here.
        for i, (tx, key) in enumerate(zip(txs, self.executor.keys, strict=True)):
            self.checks.add_tx((h, i, start + i, tx.leaf, key))
        for i, (result, stored_result) in enumerate(zip(execution.results, stored, strict=True)):
            expected = _result_json(result)  # exactly what Store.write_block stores
            if stored_result != expected:
                raise _Problem(
                    h,
                    f"{_where(h, i, start + i)} result differs from the replay: "
                    f"stored {_short(stored_result)}, replayed {expected}",
                    _RESULT,
                    i,
                )
        if _results_hash(execution.results) != header.results_hash:
            raise _Problem(h, f"block {h}: results_hash does not match the results", _HASHES)
        if execution.state_hash != header.state_hash:
            raise _Problem(
                h, f"block {h}: state_hash does not match the replayed state", _HASHES, 1
            )
        return execution

    def _log(self, h: int, header: BlockHeader, txs: list[Transaction]) -> None:
        leaf_hash = merkle.leaf_hash
        frontier, nodes = merkle.append(self.frontier, [leaf_hash(tx.leaf) for tx in txs])
        if frontier.root().hex() != header.tree_root:
            raise _Problem(
                h, f"block {h}: tree_root does not match the log recomputed from its leaves", _LOG
            )
        # This block completed a contiguous run of indexes at each level: one range read each.
        by_level: dict[int, list[tuple[int, bytes]]] = {}
        for level, index, node in nodes:
            by_level.setdefault(level, []).append((index, node))
        query = "SELECT idx, hash FROM log_nodes WHERE level = ? AND idx BETWEEN ? AND ?"
        for level in sorted(by_level):
            expected = by_level[level]
            stored = dict(self.conn.execute(query, (level, expected[0][0], expected[-1][0])))
            for index, node in expected:
                got = stored.get(index)
                if got != node:
                    state = "is missing" if got is None else "differs"
                    raise _Problem(
                        h, f"block {h}: log node (level {level}, index {index}) {state}", _LOG, 1
                    )
        self.frontier = frontier
        self.node_count += len(nodes)

    def _apply(self, execution: Execution) -> None:
        # The same statements Store.write_block runs, so the final tables compare byte for byte.
        puts = [(ns, key, value) for ns, key, value in execution.writes if value is not None]
        deletes = [(ns, key) for ns, key, value in execution.writes if value is None]
        db = self.state_db
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO state (ns, key, value) VALUES (?,?,?)", puts)
        db.executemany("DELETE FROM state WHERE ns = ? AND key = ?", deletes)
        db.execute("COMMIT")
        cache = self.state_cache
        if len(cache) > STATE_CACHE_ENTRIES:
            cache.clear()
        for ns, key, value in execution.writes:
            cache[(ns, key)] = value

    # -- after the last block ------------------------------------------------------------

    def _log_nodes_beyond(self) -> None:
        self.height = None
        (count,) = self.conn.execute("SELECT COUNT(*) FROM log_nodes").fetchone()
        extra = count - self.node_count
        if extra == 0:
            return  # every recomputed node was found stored, so the two sets are equal
        size = self.frontier.size
        row = self.conn.execute(
            "SELECT level, idx FROM log_nodes WHERE level < 0 OR idx < 0 OR idx >= (? >> level) "
            "ORDER BY level, idx LIMIT 1",
            (size,),
        ).fetchone()
        problem = (
            f"log_nodes holds {extra} node{'s' if extra != 1 else ''} that the log recomputed "
            f"from the chain's {size} leaves does not have"
        )
        if row is not None:
            problem += f", e.g. (level {row[0]}, index {row[1]})"
        if row is not None and tuple(row) == (0, size):
            problem += f": the blocks after height {self.blocks - 1} may have been removed"
        raise _Problem(None, problem)

    def _state_table(self) -> None:
        row = self.conn.execute(
            "SELECT ns, key FROM state WHERE typeof(ns) != 'text' OR typeof(key) != 'text' LIMIT 1"
        ).fetchone()
        if row is not None:
            raise _Problem(None, f"state row {_short(row[0])}/{_short(row[1])} has a non-text key")
        # Both sides are TEXT ordered by SQLite's BINARY collation, i.e. by UTF-8 bytes, which is
        # Python's str order: one merge pass names the first differing row.
        query = "SELECT ns, key, value FROM state ORDER BY ns, key"
        stored = _Rows(self.conn.execute(query))
        replayed = _Rows(self.state_db.execute(query))
        while stored.peek is not None or replayed.peek is not None:
            a, b = stored.peek, replayed.peek
            if b is None or (a is not None and (a[0], a[1]) < (b[0], b[1])):
                raise _Problem(None, f"state row {a[0]}/{a[1]} is not in the replayed state")
            if a is None or (b[0], b[1]) < (a[0], a[1]):
                raise _Problem(None, f"state row {b[0]}/{b[1]} is missing from the stored state")
            if a[2] != b[2]:
                raise _Problem(None, f"state row {a[0]}/{a[1]} differs from the replayed state")
            stored.take()
            replayed.take()
