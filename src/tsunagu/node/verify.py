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

The worker side is :mod:`tsunagu.node.verifycheck`. The replayed state is a
:class:`~tsunagu.node.memstate.MemoryState`: the rows the ``state`` table would hold, in
dictionaries. The state hash does not depend on where state is kept (it chains each block's
sorted writes, see :func:`tsunagu.ledger.block.next_state_hash`), and the final comparison
checks the stored table row by row against it.

The database is opened with ``mode=ro`` inside one read transaction, so a node may keep writing
while it is verified: the verifier sees one consistent snapshot. SQLite may create the empty
``-wal``/``-shm`` side files a WAL database needs; ``chain.db`` itself is never written.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tsunagu.contracts import Contract
from tsunagu.ledger import merkle
from tsunagu.ledger.block import COMMITTED, ZERO_HASH, BlockHeader, TxResult
from tsunagu.ledger.canonical import canonical, loads_json, sha256_hex
from tsunagu.ledger.tx import Transaction
from tsunagu.node.executor import Execution, Executor
from tsunagu.node.memstate import MemoryState
from tsunagu.node.node import CHAIN_DB
from tsunagu.node.store import result_json
from tsunagu.node.verifycheck import (
    HASHES,
    HEADER,
    LOG,
    PROPOSER,
    RESULT,
    TX,
    Checks,
    Problem,
    decode_error,
    tx_where,
)

__all__ = ["VerifyReport", "verify_chain"]

NODE_NS = "identity.node"
PROGRESS_EVERY = 100  # blocks


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
    checks = Checks(workers)
    verifier = None
    try:
        verifier = _Verifier(path, contracts, checks, progress)
        problem = verifier.run()
    except sqlite3.DatabaseError as exc:
        height = None if verifier is None else verifier.height
        problem = Problem(height, f"chain.db cannot be read: {exc}")
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
        checks: Checks,
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

    def run(self) -> Problem | None:
        try:
            self._blocks()
        except Problem as problem:
            self.checks.drain()
            first = self.checks.first
            return first if first is not None and first.order < problem.order else problem
        # The workers finish their last batches while the log and the state table are checked.
        self.checks.flush()
        try:
            self._log_nodes_beyond()
            self._state_table()
            problem = None
        except Problem as found:
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
            raise Problem(None, "meta has no chain_id")
        self.chain_id = row[0]
        total = conn.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        if total == 0:
            raise Problem(None, "the chain has no blocks")
        self.txs = _Rows(
            conn.execute("SELECT log_index, id, height, leaf, result FROM txs ORDER BY log_index")
        )
        blocks = conn.execute(
            "SELECT height, hash, header, signature, first_index FROM blocks ORDER BY height"
        )
        for h, (height, stored_hash, raw, signature, first_index) in enumerate(blocks):
            self.height = h
            if type(height) is not int:
                raise Problem(h, f"block {h}: the height column holds {_short(height)}")
            if height != h:
                if h == 0:
                    raise Problem(0, f"block 0 is missing (heights start at {height})")
                raise Problem(h, f"block {h} is missing (heights jump from {h - 1} to {height})")
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
            raise Problem(
                None,
                f"transaction at log index {log_index} (height {_short(height)}) lies beyond "
                f"the last block {self.blocks - 1}",
            )

    def _header(self, h: int, raw: Any, stored_hash: Any, first_index: Any) -> BlockHeader:
        def bad(what: str) -> Problem:
            return Problem(h, f"block {h}: {what}", HEADER)

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
            raise Problem(
                h, f"block {h}: proposer {header.proposer!r} is not a registered node", PROPOSER
            )
        try:
            public_key = bytes.fromhex(node["public_key"])
        except (KeyError, TypeError, ValueError):
            raise Problem(
                h, f"block {h}: node {header.proposer!r} has no valid public key", PROPOSER
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
                raise Problem(
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
                    problem = f"leaf does not decode: {decode_error(leaf)}"
                else:
                    if tx.id != tx_id:
                        problem = "id column does not match SHA-256 of its leaf"
            if problem is not None:
                # The signatures before it in this block come first in chain order.
                self._signatures_before(h, header, txs)
                raise Problem(h, f"{tx_where(h, i, log_index)} {problem}", TX, i)
            txs.append(tx)
        if len(rows) < count:
            raise Problem(
                h,
                f"block {h}: the header says {count} transactions but the store has {len(rows)} "
                "at this height",
            )
        row = self.txs.peek
        if row is not None and row[2] == h:
            raise Problem(
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
            raise Problem(h, f"block {h}: replay failed ({exc!r})", RESULT) from None
        # Leaves go to the workers before the results are compared, so that a bad leaf or
        # signature is found even when a later check of the same block fails first here.
        self._signatures(h, header, txs, keys)
        results = execution.results
        # Exactly what Store.write_block stores for each result.
        expected = [_COMMITTED_JSON if r is COMMITTED else result_json(r) for r in results]
        if expected != stored:
            for i, (mine, theirs) in enumerate(zip(expected, stored, strict=True)):
                if mine != theirs:
                    raise Problem(
                        h,
                        f"{tx_where(h, i, start + i)} result differs from the replay: "
                        f"stored {_short(theirs)}, replayed {mine}",
                        RESULT,
                        i,
                    )
        if _results_hash(results) != header.results_hash:
            raise Problem(h, f"block {h}: results_hash does not match the results", HASHES)
        if execution.state_hash != header.state_hash:
            raise Problem(h, f"block {h}: state_hash does not match the replayed state", HASHES, 1)
        return execution.writes

    def _log(self, h: int, header: BlockHeader, txs: list[Transaction]) -> None:
        frontier, nodes = merkle.append(
            self.frontier, [sha256(b"\x00" + tx.leaf).digest() for tx in txs]
        )
        if frontier.root().hex() != header.tree_root:
            raise Problem(
                h, f"block {h}: tree_root does not match the log recomputed from its leaves", LOG
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
                    raise Problem(
                        h, f"block {h}: log node (level {level}, index {index}) {state}", LOG, 1
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
        raise Problem(None, problem)

    def _state_table(self) -> None:
        row = self.conn.execute(
            "SELECT ns, key FROM state WHERE typeof(ns) != 'text' OR typeof(key) != 'text' LIMIT 1"
        ).fetchone()
        if row is not None:
            raise Problem(None, f"state row {_short(row[0])}/{_short(row[1])} has a non-text key")
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
                raise Problem(None, f"state row {a[0]}/{a[1]} is not in the replayed state")
            if a is None or (b[0], b[1]) < (a[0], a[1]):
                raise Problem(None, f"state row {b[0]}/{b[1]} is missing from the stored state")
            if a[2] != b[2]:
                raise Problem(None, f"state row {a[0]}/{a[1]} differs from the replayed state")
            stored.take()
            b = next(replayed, None)
