"""Applying runs of blocks fetched from etcd or from peers: how a node catches up fast.

A node that was down, or that follows the chain, gets blocks in ranges (64 from etcd, 200 from
a peer). Each block is still checked completely (:mod:`tsunagu.node.apply`), but a range is
applied as one *run*:

* **Ahead of the replay, in worker processes.** The leaves of a large run are decoded strictly
  and their signatures verified in a process pool (the same split as ``tsunagu verify``) while
  this process parses them only as much as execution needs. Each signature is checked under a
  *hint*: the signer's key as committed state has it when the run is fetched.
* **Replay.** Each block is executed in order on the state the run has reached (held in
  memory over committed state), with the executor's own signature check off; then every
  transaction's signature must have verified under the key the executor reports for it, as
  state has it just before that transaction. A signer whose key differs from its hint (one
  registered earlier in the same run) is verified then and there; when any signature does not
  verify, the block is executed again with the executor's checks on, so the results are
  always exactly those of :func:`~tsunagu.node.apply.check_block`.
* **One SQLite transaction per run.** The checked blocks are written together and committed
  once, without waiting for the disk (a block taken from etcd or a peer is never acknowledged
  to anyone; a crash may lose it and the node reads it again). Only then does the node's head
  move, block by block. When a block fails its checks, the blocks before it are committed and
  the failure is raised, as if they had been applied one by one.

Small runs (a following node's block or two) are decoded strictly and checked in this
process, as before: a process pool only pays off for many transactions. The pool
(:mod:`tsunagu.node.leafcheck`) starts with the first large run; until a worker is up, blocks
are checked in this process, and if a worker dies, the pool is replaced and the blocks it held
are checked here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tsunagu.ledger.block import Block
from tsunagu.ledger.canonical import loads_json
from tsunagu.node.apply import Ahead, BadBlock, Built, check_next
from tsunagu.node.leafcheck import Task, Workers, check_leaves, light_block
from tsunagu.node.store import Head
from tsunagu.node.wire import block_from_wire

MEMBER_NS = "identity.member"
PARALLEL_MIN_TXS = 256  # a run with fewer transactions is checked in this process
CHUNK_TXS = 256  # transactions per worker task (whole blocks)
HINTS_MAX = 100_000  # signer keys remembered as hints

_MISSING: Any = object()


def _bad(height: Any, what: str) -> BadBlock:
    return BadBlock(f"block {height}: {what}", f"ブロック {height}: {what}", height=height)


# -- the run's state ---------------------------------------------------------------------------


class RunState:
    """Committed state seen through the writes of the blocks checked so far in a run (what
    the ``state`` table will hold once the run is written), read like the store's state."""

    has_raw = True

    def __init__(self, base: Any) -> None:
        self.base = base
        self.values: dict[str, dict[str, bytes | None]] = {}

    def get_raw(self, ns: str, key: str) -> bytes | None:
        values = self.values.get(ns)
        if values is not None:
            value = values.get(key, _MISSING)
            if value is not _MISSING:
                return value
        return self.base.get_raw(ns, key)

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        raw = self.get_raw(ns, key)
        return None if raw is None else loads_json(raw)

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        mine = {k: v for k, v in self.values.get(ns, {}).items() if k.startswith(prefix)}
        if not mine:
            yield from self.base.scan(ns, prefix)
            return
        merged = dict(self.base.scan(ns, prefix))
        for key, raw in mine.items():
            if raw is None:
                merged.pop(key, None)
            else:
                merged[key] = loads_json(raw)
        for key in sorted(merged):
            yield key, merged[key]

    def apply(self, writes: list[tuple[str, str, bytes | None]]) -> None:
        values = self.values
        for ns, key, value in writes:
            space = values.get(ns)
            if space is None:
                space = values[ns] = {}
            space[key] = value


@dataclass(slots=True)
class Prepared:
    """One fetched block on its way to being applied: the block (or why it could not be
    decoded) and, for a run checked in workers, where its verdict will come from."""

    label: Any  # its height as far as known, for messages
    block: Block | None
    error: BaseException | None = None
    keys: list[bytes | None] | None = None
    verdicts: Future | None = None
    index: int = 0  # this block's place in its task's verdicts
    up: threading.Event | None = None  # set while a worker is up

    def ahead(self) -> Ahead | None:
        """The signature checks made ahead (waiting for the workers), or ``None`` when the
        block is checked in this process; raises :class:`BadBlock` for a leaf that does not
        decode strictly."""
        if self.verdicts is None:
            return None
        assert self.block is not None and self.keys is not None
        verdicts = self.verdicts
        if self.up is not None and not self.up.is_set():
            verdicts.cancel()  # no worker is up (yet): this block is checked here meanwhile
        try:
            valid, bad = verdicts.result()[self.index]
        except Exception:  # cancelled, or the pool broke (a worker was killed): check here
            leaves = [tx.leaf for tx in self.block.txs]
            valid, bad = check_leaves([(leaves, self.keys)])[0]
        if bad is not None:
            index, reason = bad
            raise _bad(self.label, f"transaction {index}: the leaf does not decode ({reason})")
        return Ahead(self.keys, valid)


def _label(raw: Any, fallback: Any) -> Any:
    try:
        return raw["header"]["height"]
    except Exception:
        return fallback


@dataclass(slots=True)
class Range:
    """Blocks fetched from one source: ``raws`` (wire objects or their JSON bytes) are the
    consecutive blocks from height ``start``; ``more`` when blocks may follow them; ``info``
    is the source's own (etcd: the keys it answered with)."""

    start: int
    raws: list[Any]
    more: bool
    info: Any = None
    prepared: list[Prepared] | None = None

    def prepare(self, catchup: CatchUp) -> None:
        if self.prepared is None:
            self.prepared = catchup.prepare(self.raws, self.start) if self.raws else []


# -- running it ----------------------------------------------------------------------------------


class CatchUp:
    """Prepares and applies runs of blocks for one node (see the module)."""

    def __init__(
        self, node: Any, workers: int | None = None, parallel_min: int = PARALLEL_MIN_TXS
    ) -> None:
        self.node = node
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.parallel_min = parallel_min
        self.pool = Workers(self.workers)
        # Transactions whose leaves and signatures were checked by the workers, or here.
        self.checked = {"workers": 0, "here": 0}
        self._fetcher: ThreadPoolExecutor | None = None
        self._hints: dict[str, bytes] = {}

    def warm_up(self) -> None:
        """Start the workers and wait until one is up (until then, blocks are checked here)."""
        if self.workers > 0:
            self.pool.warm_up()

    def close(self) -> None:
        self.pool.close()
        if self._fetcher is not None:
            self._fetcher.shutdown(wait=False, cancel_futures=True)
            self._fetcher = None

    # -- preparing (any thread) ------------------------------------------------------------

    def prepare(self, raws: list[Any], first: int = 0) -> list[Prepared]:
        """Decode fetched blocks (wire objects, or their JSON bytes) and, for a large run,
        hand their leaves to the workers; ``first`` is the height the first should have."""
        parsed = []
        for n, raw in enumerate(raws):
            if isinstance(raw, bytes | bytearray):
                try:
                    raw = loads_json(raw)
                except Exception as exc:
                    parsed.append((first + n, None, exc))
                    continue
            parsed.append((_label(raw, first + n), raw, None))
        count = 0
        for _, raw, _ in parsed:
            leaves = raw.get("leaves") if isinstance(raw, dict) else None
            count += len(leaves) if isinstance(leaves, list) else 0
        parallel = self.workers > 0 and count >= self.parallel_min
        prepared: list[Prepared] = []
        for label, raw, error in parsed:
            if error is not None:
                prepared.append(Prepared(label, None, _bad(label, f"it does not decode ({error})")))
                break
            try:
                block = light_block(raw) if parallel else block_from_wire(raw)
            except Exception as exc:
                prepared.append(Prepared(label, None, _bad(label, f"it does not decode ({exc})")))
                break
            prepared.append(Prepared(label, block))
        if parallel:
            self._dispatch([p for p in prepared if p.block is not None])
        return prepared

    def _dispatch(self, prepared: list[Prepared]) -> None:
        task: Task = []
        members: list[Prepared] = []
        size = 0
        for n, item in enumerate(prepared):
            assert item.block is not None
            item.keys = [self._hint(tx.signer) for tx in item.block.txs]
            item.index = len(task)
            task.append(([tx.leaf for tx in item.block.txs], item.keys))
            members.append(item)
            size += len(item.block.txs)
            if size >= CHUNK_TXS or n == len(prepared) - 1:
                verdicts = self.pool.submit(task)
                for member in members:
                    member.verdicts = verdicts
                    member.up = self.pool.up
                task, members, size = [], [], 0

    def _hint(self, signer: str) -> bytes | None:
        """The signer's key as committed state has it (a member's key never changes: its id is
        the key's hash), or ``None``; only a hint, never trusted (see the module)."""
        key = self._hints.get(signer)
        if key is None:
            try:
                value = self.node.store.state().get(MEMBER_NS, signer)
                key = None if value is None else bytes.fromhex(value["public_key"])
            except Exception:  # a value no contract writes: no hint
                key = None
            if key is not None:
                if len(self._hints) >= HINTS_MAX:
                    self._hints.clear()
                self._hints[signer] = key
        return key

    def ranges(self, fetch: Callable[[int], Range], start: int) -> Iterator[Range]:
        """Ranges of blocks from height ``start`` on, each prepared, for the caller to apply
        one after the other (call from the commit path).

        ``fetch(height)`` returns the range of blocks from ``height`` (``more`` when there may
        be blocks after it). While the caller applies a range, the next one has already been
        prepared (its signatures are being checked by the workers) and the one after it is
        being fetched and prepared in a background thread. A fetch that fails raises here.
        The ranges end when one is not ``more``, or when the node's head is not where the next
        one starts (the caller looks again)."""
        current = fetch(start)
        current.prepare(self)
        fetching: tuple[int, Future] | None = None
        try:
            while True:
                following = None
                if current.more and current.raws:
                    at = current.start + len(current.raws)
                    if fetching is not None and fetching[0] == at:
                        following = fetching[1].result()
                    else:
                        following = fetch(at)
                    fetching = None
                    following.prepare(self)
                    if following.more and following.raws:
                        after = at + len(following.raws)
                        fetching = (after, self._background().submit(self._fetched, fetch, after))
                yield current
                head = self.node.head
                if following is None or head is None or head.height + 1 != following.start:
                    return
                current = following
        finally:
            if fetching is not None:
                fetching[1].cancel()

    def _fetched(self, fetch: Callable[[int], Range], start: int) -> Range:
        """``fetch(start)``, prepared: on the background thread, while the caller applies
        the range before it, so that it costs the commit path nothing more."""
        fetched = fetch(start)
        fetched.prepare(self)
        return fetched

    def _background(self) -> ThreadPoolExecutor:
        if self._fetcher is None:
            self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="catch-up-fetch")
        return self._fetcher

    # -- applying (the commit path only) ----------------------------------------------------

    def apply(self, prepared: list[Prepared]) -> list[Built]:
        """Check the blocks in order on the node's head and commit them in one SQLite
        transaction; return them as built here. When one fails, the blocks before it are
        committed and its failure is raised."""
        node = self.node
        head, frontier = node.head, node.frontier
        state = RunState(node.state_for([tx for p in prepared if p.block for tx in p.block.txs]))
        builts: list[Built] = []
        failure: BaseException | None = None
        for item in prepared:
            try:
                if item.block is None:
                    raise item.error or _bad(item.label, "it does not decode")
                ahead = item.ahead()
                built = check_next(node, item.block, head, frontier, state, ahead)
            except Exception as exc:
                failure = exc
                break
            state.apply(built.writes)
            header = item.block.header
            verdicts = item.verdicts
            ahead_of_time = (
                verdicts is not None and not verdicts.cancelled() and verdicts.exception() is None
            )
            self.checked["workers" if ahead_of_time else "here"] += header.tx_count
            head = Head.of(header)
            frontier = built.frontier
            builts.append(built)
        if builts:
            write_run(node, builts)
        if failure is not None:
            raise failure
        return builts


def write_run(node: Any, builts: list[Built]) -> None:
    """Commit checked blocks in one SQLite transaction without waiting for the disk (a block
    taken from etcd or a peer is never acknowledged to anyone), then move the head."""
    node.write_run(builts, durable=False)
