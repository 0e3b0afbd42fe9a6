"""``tsunagu verify``: re-check a node's whole ``chain.db`` from nothing, read-only.

Everything stored is recomputed and compared with what is stored: the chain of blocks (heights,
canonical headers, hashes, links, chain id, timestamps, counts, proposer signatures), every
transaction (canonical leaf, id, signature), every result and state hash (by replaying the chain
with the contracts on a fresh state held in memory), the Merkle log (each header's root and every
stored node) and, at the end, the whole state table.

Signature checks and strict leaf decoding dominate the cost, so worker processes make them in
batches while this process replays: it parses each leaf for the replay without the strict
checks (:meth:`Transaction.from_body`), and the workers decode it strictly
(:func:`~tsunagu.ledger.tx.decode_leaf`) and check its signature. That split keeps the replaying
process, which cannot be parallelized, at about a third of the work, so that it is not the
bottleneck even when the processes share the cores with other work.

The report names the first problem in chain order: the lowest block height, and within a block
the earliest check (header, proposer signature, transactions in order, results, hashes, log).

Two choices worth knowing:

* The proposer's key comes from ``identity.node`` in the replayed state *before* the block. Block 0
  has no state before it, so its proposer is checked against the state *after* replaying it,
  that is against the ``nodes`` of the genesis payload.
* A transaction whose signer is not registered (its result is then ``unknown_signer``) has no key
  to check a signature against; only its result is checked.

The replayed state is a :class:`MemoryState`: the rows the ``state`` table would hold, in
dictionaries. The state hash does not depend on where state is kept (it chains each block's
sorted writes, see :func:`tsunagu.ledger.block.next_state_hash`), and the final comparison
checks the stored table row by row against it.

The database is opened with ``mode=ro`` inside one read transaction, so a node may keep writing
while it is verified: the verifier sees one consistent snapshot. SQLite may create the empty
``-wal``/``-shm`` side files a WAL database needs; ``chain.db`` itself is never written.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import sqlite3
import sys
import threading
import time
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tsunagu.contracts import Contract
from tsunagu.ledger import merkle
from tsunagu.ledger.block import COMMITTED, ZERO_HASH, BlockHeader, TxResult
from tsunagu.ledger.canonical import canonical, is_hex, loads_json, sha256_hex
from tsunagu.ledger.keys import verify_signature
from tsunagu.ledger.tx import Transaction, decode_leaf
from tsunagu.node.executor import Execution, Executor
from tsunagu.node.node import CHAIN_DB
from tsunagu.node.store import result_json

__all__ = ["MemoryState", "VerifyReport", "verify_chain"]

NODE_NS = "identity.node"
BATCH = 1000  # leaves per worker task: pickling and IPC stay a few percent of the work
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
    # The replay allocates a few short-lived objects per transaction and frees them without
    # cycles: the cyclic collector would only cost time (about 5% of the replay). It is paused
    # when this call owns its process (the command, a benchmark), not in a server's thread.
    pause_gc = threading.current_thread() is threading.main_thread() and gc.isenabled()
    if pause_gc:
        gc.disable()  # before the pool forks, so that its workers run without it too
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
        if pause_gc:
            gc.enable()
    return VerifyReport(
        ok=problem is None,
        height=None if problem is None else problem.height,
        problem=None if problem is None else problem.problem,
        blocks=0 if verifier is None else verifier.blocks,
        transactions=0 if verifier is None else verifier.transactions,
        seconds=time.perf_counter() - started,
    )


# -- the replayed state ----------------------------------------------------------------------

_MISSING: Any = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})
FLAT_CACHE_ENTRIES = 10_000
_KEY_END = "\U0010ffff"  # the scan bound Store's StateStore uses


class MemoryState:
    """State held in memory: what a store's ``state`` table holds after the same writes, read
    the way the store reads it (a :class:`~tsunagu.contracts.StateReader` with ``get_raw``).

    :meth:`apply` takes an execution's writes (``(ns, key, bytes)`` puts, ``(ns, key, None)``
    deletes), as ``Store.write_block`` does. Scans return keys in the store's order (SQLite's
    BINARY collation of UTF-8 text, which is Python's order of ``str``) within the same bounds.
    """

    def __init__(self) -> None:
        self._values: dict[str, dict[str, Any]] = {}
        # Each scanned namespace's keys in order: built by its first scan, then kept in order.
        self._sorted: dict[str, list[str]] = {}
        # Decoded flat objects (members all scalars) by (ns, key), with the bytes they were
        # decoded from: a copy of one is the fresh value json.loads would give.
        self._flat: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}

    def get_raw(self, ns: str, key: str) -> Any:
        values = self._values.get(ns)
        return None if values is None else values.get(key)

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        values = self._values.get(ns)
        raw = None if values is None else values.get(key)
        if raw is None:
            return None
        known = self._flat.get((ns, key))
        if known is not None and known[0] is raw:
            return dict(known[1])  # callers may change what they get
        value = loads_json(raw)
        if type(value) is dict and all(type(v) in _SCALARS for v in value.values()):
            if len(self._flat) >= FLAT_CACHE_ENTRIES:
                self._flat.clear()
            self._flat[(ns, key)] = (raw, dict(value))
        return value

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        values = self._values.get(ns)
        if not values:
            return iter(())
        keys = self._sorted.get(ns)
        if keys is None:
            keys = self._sorted[ns] = sorted(values)
        chosen = keys[bisect_left(keys, prefix) : bisect_left(keys, prefix + _KEY_END)]
        return iter([(key, loads_json(values[key])) for key in chosen])

    def apply(self, writes: Sequence[tuple[str, str, Any]]) -> None:
        all_values = self._values
        for ns, key, value in writes:
            values = all_values.get(ns)
            if values is None:
                values = all_values[ns] = {}
            keys = self._sorted.get(ns)
            if value is None:
                if values.pop(key, _MISSING) is not _MISSING and keys is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if keys is not None and key not in values:
                    insort(keys, key)
                values[key] = value

    def __len__(self) -> int:
        return sum(map(len, self._values.values()))

    def rows(self) -> list[tuple[str, str, Any]]:
        """Every row, ordered by namespace and key."""
        return sorted(
            (ns, key, value) for ns, values in self._values.items() for key, value in values.items()
        )


# -- leaves and signatures, in worker processes -----------------------------------------------

# (height, log index of its first transaction, leaves, the signers' public keys or None)
_TxBlock = tuple[int, int, list[bytes], list[bytes | None]]
# (height, the proposer's public key, the signature column, the canonical header bytes)
_HeaderItem = tuple[int, bytes, Any, bytes]
# (height, stage, index, sub-check, problem): the order of a _Problem and its text
_Failure = tuple[int, int, int, int, str]


def _where(height: int, index: int, log_index: int) -> str:
    return f"block {height}: transaction {index} (log index {log_index})"


def _decode_error(leaf: bytes) -> str:
    """Why :func:`decode_leaf` refuses a leaf that cannot even be parsed for the replay."""
    try:
        decode_leaf(leaf)
    except Exception as exc:
        return str(exc)
    return "it is not a transaction"  # not reachable: decode_leaf is stricter


def _check_batch(headers: list[_HeaderItem], blocks: list[_TxBlock]) -> list[_Failure]:
    """Runs in a worker: verify proposer signatures, decode leaves strictly and verify their
    signatures; return what failed."""
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
    # Every leaf of the batch is decoded first, then every signature verified: alternating the
    # two (Python objects, then the curve arithmetic's tables) costs about 12% more CPU time.
    signed: list[tuple[int, int, int, bytes, str, bytes]] = []
    for height, start, leaves, keys in blocks:
        for index, (leaf, public_key) in enumerate(zip(leaves, keys, strict=True)):
            try:
                tx = decode_leaf(leaf)
            except Exception as exc:  # malformed, not canonical, or not JSON at all
                where = _where(height, index, start + index)
                failures.append((height, _TX, index, 0, f"{where} leaf does not decode: {exc}"))
                continue
            if public_key is not None:
                signed.append((height, start, index, public_key, tx.signature, tx.signing_bytes()))
    for height, start, index, public_key, signature, message in signed:
        # decode_leaf has checked the signature to be 128 lowercase hex characters.
        if not verify_signature(public_key, bytes.fromhex(signature), message):
            where = _where(height, index, start + index)
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
        self._blocks: list[_TxBlock] = []
        self._size = 0
        self._pending: deque[Any] = deque()
        self.first: _Problem | None = None

    def add_header(self, item: _HeaderItem) -> None:
        self._headers.append(item)
        self._size += 1
        if self._size >= BATCH:
            self.flush()

    def add_block(self, item: _TxBlock) -> None:
        self._blocks.append(item)
        self._size += len(item[2])
        if self._size >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not (self._headers or self._blocks):
            return
        batch = (self._headers, self._blocks)
        self._headers, self._blocks, self._size = [], [], 0
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


# -- the replay ------------------------------------------------------------------------------


class _Rows:
    """A cursor with one row of lookahead."""

    def __init__(self, rows: sqlite3.Cursor) -> None:
        self._rows = rows
        self.peek = rows.fetchone()

    def take(self) -> Any:
        row = self.peek
        self.peek = self._rows.fetchone()
        return row

    def take_many(self, count: int) -> list[Any]:
        """Up to ``count`` rows."""
        if count <= 0 or self.peek is None:
            return []
        rows = [self.peek]
        if count > 1:
            rows += self._rows.fetchmany(count - 1)
        self.peek = self._rows.fetchone()
        return rows


def _connect_readonly(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=1")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("BEGIN")  # one snapshot for the whole run, even while the node writes
    return conn


_COMMITTED_CANONICAL = canonical(COMMITTED.to_json())
_COMMITTED_JSON = result_json(COMMITTED)


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
        self.executor = Executor(contracts)
        self.height: int | None = None
        self.blocks = 0
        self.transactions = 0
        self.state = MemoryState()
        self.conn = _connect_readonly(path)
        self.prev: BlockHeader | None = None
        self.prev_hash = ZERO_HASH
        self.frontier = merkle.Frontier.empty()
        self.node_count = 0

    def close(self) -> None:
        self.conn.close()

    def run(self) -> _Problem | None:
        try:
            self._blocks()
        except _Problem as problem:
            self.checks.drain()
            first = self.checks.first
            return first if first is not None and first.order < problem.order else problem
        # The workers finish their last batches while the log and the state table are checked.
        self.checks.flush()
        try:
            self._log_nodes_beyond()
            self._state_table()
            problem = None
        except _Problem as found:
            problem = found
        self.checks.drain()
        first = self.checks.first
        if first is not None and (problem is None or first.order < problem.order):
            return first
        return problem

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
            writes = self._replay(h, header, txs, stored_results)
            self._log(h, header, txs)
            self.state.apply(writes)
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
            header = BlockHeader.from_json(loads_json(raw))
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
        """The block's transactions, parsed for the replay (the workers decode them strictly),
        and their stored results."""
        count = header.tx_count
        start = header.tree_size - count
        rows = self.txs.take_many(count)
        txs: list[Transaction] = []
        from_body = Transaction.from_body
        for i, (log_index, tx_id, height, leaf, _) in enumerate(rows):
            if height != h:
                raise _Problem(
                    h,
                    f"block {h}: the header says {count} transactions but the store has {i} "
                    "at this height",
                )
            problem = None
            if log_index != start + i:
                problem = f"should have log index {start + i}"
            elif not isinstance(leaf, bytes):
                problem = "leaf is not a BLOB"
            else:
                try:
                    tx = from_body(loads_json(leaf), leaf)
                except Exception:  # too broken to replay: decode_leaf says why
                    problem = f"leaf does not decode: {_decode_error(leaf)}"
                else:
                    if tx.id != tx_id:
                        problem = "id column does not match SHA-256 of its leaf"
            if problem is not None:
                # The signatures before it in this block come first in chain order.
                self._signatures_before(h, header, txs)
                raise _Problem(h, f"{_where(h, i, log_index)} {problem}", _TX, i)
            txs.append(tx)
        if len(rows) < count:
            raise _Problem(
                h,
                f"block {h}: the header says {count} transactions but the store has {len(rows)} "
                "at this height",
            )
        row = self.txs.peek
        if row is not None and row[2] == h:
            raise _Problem(
                h,
                f"block {h}: the store has more than the header's {count} "
                "transactions at this height",
            )
        return txs, [row[4] for row in rows]

    def _execute(
        self, h: int, header: BlockHeader, txs: list[Transaction], keys: list[bytes | None]
    ) -> Execution:
        return self.executor.execute(
            self.state,
            txs,
            chain_id=self.chain_id,
            height=h,
            timestamp=header.timestamp,
            first_index=header.tree_size - header.tx_count,
            prev_state_hash=ZERO_HASH if self.prev is None else self.prev.state_hash,
            check_signatures=False,
            signer_keys=keys,
        )

    def _signatures(
        self, h: int, header: BlockHeader, txs: list[Transaction], keys: list[bytes | None]
    ) -> None:
        """Hand the leaves of ``txs`` (the first of the block) and the keys their signatures
        must verify under to the workers."""
        start = header.tree_size - header.tx_count
        self.checks.add_block((h, start, [tx.leaf for tx in txs], keys))

    def _signatures_before(self, h: int, header: BlockHeader, txs: list[Transaction]) -> None:
        """The signatures of a block's first ``txs``, before the one that failed: their keys
        come from replaying them."""
        keys: list[bytes | None] = []
        try:
            self._execute(h, header, txs, keys)
        except Exception:  # the replay would report it, after the failed transaction
            return
        self._signatures(h, header, txs, keys)

    def _replay(
        self, h: int, header: BlockHeader, txs: list[Transaction], stored: list[Any]
    ) -> list[tuple[str, str, bytes | None]]:
        start = header.tree_size - header.tx_count
        keys: list[bytes | None] = []
        try:
            execution = self._execute(h, header, txs, keys)
        except Exception as exc:  # a contract that crashes on the chain's own data
            raise _Problem(h, f"block {h}: replay failed ({exc!r})", _RESULT) from None
        # Leaves go to the workers before the results are compared, so that a bad leaf or
        # signature is found even when a later check of the same block fails first here.
        self._signatures(h, header, txs, keys)
        results = execution.results
        # Exactly what Store.write_block stores for each result.
        expected = [_COMMITTED_JSON if r is COMMITTED else result_json(r) for r in results]
        if expected != stored:
            for i, (mine, theirs) in enumerate(zip(expected, stored, strict=True)):
                if mine != theirs:
                    raise _Problem(
                        h,
                        f"{_where(h, i, start + i)} result differs from the replay: "
                        f"stored {_short(theirs)}, replayed {mine}",
                        _RESULT,
                        i,
                    )
        if _results_hash(results) != header.results_hash:
            raise _Problem(h, f"block {h}: results_hash does not match the results", _HASHES)
        if execution.state_hash != header.state_hash:
            raise _Problem(
                h, f"block {h}: state_hash does not match the replayed state", _HASHES, 1
            )
        return execution.writes

    def _log(self, h: int, header: BlockHeader, txs: list[Transaction]) -> None:
        frontier, nodes = merkle.append(
            self.frontier, [sha256(b"\x00" + tx.leaf).digest() for tx in txs]
        )
        if frontier.root().hex() != header.tree_root:
            raise _Problem(
                h, f"block {h}: tree_root does not match the log recomputed from its leaves", _LOG
            )
        # This block completed a contiguous run of indexes at each level (in the order append
        # completed them): one range read each, compared as a whole.
        by_level: dict[int, list[tuple[int, bytes]]] = {}
        for level, index, node in nodes:
            by_level.setdefault(level, []).append((index, node))
        query = (
            "SELECT idx, hash FROM log_nodes WHERE level = ? AND idx BETWEEN ? AND ? ORDER BY idx"
        )
        for level in sorted(by_level):
            expected = by_level[level]
            stored = self.conn.execute(query, (level, expected[0][0], expected[-1][0])).fetchall()
            if stored == expected:
                continue
            found = dict(stored)
            for index, node in expected:
                got = found.get(index)
                if got != node:
                    state = "is missing" if got is None else "differs"
                    raise _Problem(
                        h, f"block {h}: log node (level {level}, index {index}) {state}", _LOG, 1
                    )
        self.frontier = frontier
        self.node_count += len(nodes)

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
        query = "SELECT ns, key, value FROM state ORDER BY ns, key"
        # Every stored row equal to the replayed one, and as many rows: the tables are equal.
        get_raw = self.state.get_raw
        rows = self.conn.execute(query).fetchall()
        if len(rows) == len(self.state) and all(get_raw(n, k) == v for n, k, v in rows):
            return
        # They differ: name the first differing row in (ns, key) order. Both sides are TEXT
        # ordered by SQLite's BINARY collation, i.e. by UTF-8 bytes, which is Python's str
        # order: one merge pass finds it.
        stored = _Rows(self.conn.execute(query))
        replayed = iter(self.state.rows())
        b = next(replayed, None)
        while stored.peek is not None or b is not None:
            a = stored.peek
            if b is None or (a is not None and (a[0], a[1]) < (b[0], b[1])):
                raise _Problem(None, f"state row {a[0]}/{a[1]} is not in the replayed state")
            if a is None or (b[0], b[1]) < (a[0], a[1]):
                raise _Problem(None, f"state row {b[0]}/{b[1]} is missing from the stored state")
            if a[2] != b[2]:
                raise _Problem(None, f"state row {a[0]}/{a[1]} differs from the replayed state")
            stored.take()
            b = next(replayed, None)
