"""Ordering through an etcd cluster: the consortium's engine.

Every node, voting or following, runs one ordering thread that owns its commit path:

* **Proposing.** A batch of admitted transactions becomes a block built and signed on the
  node's head at height ``h``; one etcd transaction stores it at ``blocks/<h>`` only if that
  key does not exist yet and ``blocks/<h-1>`` does. The node that creates the key has ordered
  the block: it then commits it to its own SQLite and only then answers its clients. A node
  that loses the height applies the winner's block (checked like any other) and builds again.
* **Following.** Blocks that other nodes ordered arrive in height order through an etcd watch,
  which hands their values to the thread (it reads etcd itself only when the watch is new,
  broken or missed a height, and at least once a second); they are checked (see
  :mod:`tsunagu.node.apply`) and applied. Nothing depends on the watch being complete: a
  block proposed on a height that is already taken loses the create and gets the block that
  holds it.
* **Forwarding.** A node that is not the consortium's proposer hands its batches to it
  (see :mod:`tsunagu.node.forward`) and answers its clients once it has applied the blocks
  that hold them; when the proposer cannot be reached it proposes them itself.
* **Catching up.** etcd keeps only the last ``window`` blocks; a node that needs older ones
  fetches them from its peers' block API and checks them the same way.
* **Losing the quorum.** When etcd cannot order (its majority is down), the batch fails with
  503 and later writes are refused at once, until a probe finds the quorum back. Nothing is
  half-written: a block is in etcd whole or not at all, and a node commits only what etcd holds.

etcd runs with ``--auto-compaction-mode revision``, and the proposer of every hundredth block
deletes the block keys older than the window, so etcd's space stays bounded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import httpx

from tsunagu.errors import Unavailable
from tsunagu.node.apply import BadBlock, Built, check_block
from tsunagu.node.catchup import CatchUp, Prepared, Range
from tsunagu.node.etcd import KV, EtcdClient, EtcdUnavailable, prefix_end
from tsunagu.node.forward import Forwarder
from tsunagu.node.orderer import Pending
from tsunagu.node.wire import decode_block, encode_block

log = logging.getLogger(__name__)

WINDOW = 2000  # blocks kept in etcd
TRIM_EVERY = 100  # the proposer of every such height deletes what lies below the window
IDLE_POLL = 1.0  # seconds between looks at etcd when nothing woke the thread
LOOK_EVERY = 1.0  # seconds: the longest the thread relies on the watch alone
SEEN_MAX = 512  # blocks the watch keeps for the ordering thread (beyond: read from etcd)
PROBE_EVERY = 0.5  # seconds between quorum probes while etcd cannot order
CATCH_UP_BATCH = 64  # blocks per etcd range while catching up
PEER_BATCH = 200  # blocks per request to a peer's block API
TURN = 0.01  # seconds of waiting per rank before proposing at a height (see _take_turn)
MAX_BLOCK_BYTES = 1_000_000  # leaf bytes per proposed block (etcd takes requests up to 8 MiB)
_WAKE = object()


class NoQuorum(Unavailable):
    code = "no_quorum"
    message_en = (
        "The consortium's ordering service (etcd) has no quorum: writes are paused. "
        "Reading and verification still work. Try again shortly."
    )
    message_ja = (
        "コンソーシアムの順序付けサービス（etcd）が過半数を失っているため、書き込みを停止して"
        "います。閲覧と検証はできます。しばらくしてから再度お試しください。"
    )


class Halted(Unavailable):
    code = "node_halted"
    message_en = (
        "This node found a block it cannot accept and stopped following the chain. "
        "Its operator must repair it (tsunagu repair)."
    )
    message_ja = (
        "このノードは受け入れられないブロックを検出したため、チェーンへの追従を停止しました。"
        "運用者による修復（tsunagu repair）が必要です。"
    )


class Diverged(Unavailable):
    code = "node_diverged"
    message_en = (
        "This node's copy of the ledger differs from the one the other nodes agree on: it "
        "takes no writes until its operator repairs it (tsunagu repair). Write through "
        "another node of the consortium."
    )
    message_ja = (
        "このノードの台帳の写しが他のノードの合意しているものと一致しないため、運用者が修復"
        "（tsunagu repair）するまで書き込みを受け付けません。コンソーシアムの他のノードから"
        "書き込んでください。"
    )


class Keys:
    """Where a chain keeps its things in etcd."""

    def __init__(self, chain_id: str) -> None:
        self.prefix = f"/tsunagu/{chain_id}/".encode()
        self.blocks = self.prefix + b"blocks/"
        self.blocks_end = prefix_end(self.blocks)
        self.chain = self.prefix + b"meta/chain_id"
        self.peers = self.prefix + b"peers/"
        self.peers_end = prefix_end(self.peers)

    def block(self, height: int) -> bytes:
        return self.blocks + b"%020d" % height

    def height(self, key: bytes) -> int:
        return int(key[len(self.blocks) :])


class EtcdOrderer:
    """The etcd ordering engine (see the module's description)."""

    def __init__(
        self,
        endpoints: list[str],
        max_txs: int = 500,
        max_wait: float = 0.05,
        *,
        window: int = WINDOW,
        advertise: dict[str, Any] | None = None,
        peer_urls: Callable[[], list[str]] | None = None,
        forward: bool = True,
    ) -> None:
        self.client = EtcdClient(endpoints)
        self.max_txs = max_txs
        self.max_wait = max_wait
        self.window = window
        self.advertise = advertise  # {"url", "role"}: how peers reach this node
        self.peer_urls = peer_urls or (lambda: [])
        self.healthy = False  # etcd can order now (set once prepared)
        self.fault: str | None = None  # why this node stopped following, if it did
        self.behind: str | None = None  # set while this node cannot reach the chain's tip
        self.counts = {"proposed": 0, "lost": 0, "from_etcd": 0, "from_peers": 0}
        # Seconds spent in each step of the ordering thread (shown by info(), for tuning).
        self.seconds = dict.fromkeys(("build", "order", "write", "apply", "turn", "look"), 0.0)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._carry: list[Pending] = []
        self._prepared = False
        self._ranks: dict[str, int] = {}
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.node: Any = None
        self.keys: Keys | None = None
        self.catchup: CatchUp | None = None
        self._peer_client: httpx.Client | None = None
        self.forward = forward  # hand batches to the proposer (see tsunagu.node.forward)
        self.forwarder: Forwarder | None = None
        # Block values the watch delivered, by height, for the ordering thread (see _fed).
        self._seen: dict[int, bytes] = {}
        self._seen_lock = threading.Lock()
        self._watch_epoch = 0  # counts the watches etcd created; 0 while none is live
        self._looked_epoch = -1  # the watch epoch of the ordering thread's last read of etcd
        self._looked_at = 0.0  # time.monotonic() of that read
        self._seen_overflow = False  # the watch dropped a block (too many kept)

    # -- the Orderer interface -------------------------------------------------------------

    def start(self, node: Any) -> None:
        self.node = node
        self.catchup = CatchUp(node)
        # For peers' block API (the ordering thread and its catch-up fetches): one client,
        # since httpx.get() builds a client and its TLS context (about 30 ms) per request.
        self._peer_client = httpx.Client(timeout=10)
        if self.forward:
            self.forwarder = Forwarder(self)
        self._stopping = False
        for target, name in ((self._run, "etcd-orderer"), (self._watch, "etcd-watch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, pending: Pending) -> None:
        if self.fault is not None:
            raise Halted()
        if getattr(self.node.consortium, "diverging", False):
            raise Diverged()  # its blocks would make every other node halt
        if not self.healthy:
            raise NoQuorum()
        self._queue.put(pending)

    def stop(self) -> None:
        self._stopping = True
        self._queue.put(None)
        for thread in self._threads[:1]:  # the watch thread is a daemon blocked on a socket
            thread.join(timeout=10)
        self._threads = []
        if self.forwarder is not None:
            self.forwarder.stop()
            self.forwarder.fail_all(Unavailable())
        if self.catchup is not None:
            self.catchup.close()
        if self._peer_client is not None:
            self._peer_client.close()

    def wake(self) -> None:
        self._queue.put(_WAKE)

    def registry(self, timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Every node registered in etcd (``peers/<node id>``): node id -> ``{"node_id",
        "url", "role"}`` as each node advertised itself (entries that do not parse are left
        out). Raises :class:`EtcdUnavailable` when etcd cannot answer."""
        keys = self.keys
        if keys is None:
            return {}
        kvs, _ = self.client.range(keys.peers, keys.peers_end, serializable=True, timeout=timeout)
        found = {}
        for kv in kvs:
            try:
                entry = json.loads(kv.value)
            except ValueError:
                continue
            if isinstance(entry, dict):
                found[kv.key[len(keys.peers) :].decode()] = entry
        return found

    def hand_back(self, batch: list[Pending]) -> None:
        """Transactions the proposer did not take: this node orders them itself, before
        anything admitted after them (see _collect)."""
        self._queue.put(list(batch))

    def info(self) -> dict[str, Any]:
        return {
            "engine": "etcd",
            "endpoints": self.client.endpoints,
            "quorum": self.healthy,
            "fault": self.fault,
            "behind": self.behind,
            **self.counts,
            **(self.forwarder.counts if self.forwarder is not None else {}),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "checked": dict(self.catchup.checked) if self.catchup is not None else {},
        }

    # -- the ordering thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:  # before the first write arrives: until prepared, writes are refused
            self._prepare()
            self._catch_up()
        except Exception as exc:
            log.warning("etcd is not ready yet: %s", exc)
        while True:
            try:
                item = self._queue.get(timeout=IDLE_POLL if self.healthy else PROBE_EVERY)
            except queue.Empty:
                item = _WAKE
            batch, stop = self._collect(item)
            if stop:
                self.node.fail(batch + self._carry, Unavailable())
                return
            try:
                if not self._prepared:
                    self._prepare()
                elif not self.healthy:
                    self._probe()
                if self.fault is not None:
                    raise Halted()
                if not self.healthy:
                    raise NoQuorum()
                self._catch_up()
                if batch and self.forwarder is not None:
                    # The rest is answered once this node applies the blocks that hold it.
                    batch = self.forwarder.take(batch)
                if batch:
                    self._order(batch)
            except EtcdUnavailable as exc:
                log.warning("etcd cannot order: %s", exc)
                self.healthy = False
                self.node.fail(batch, NoQuorum())
            except Unavailable as exc:
                self.node.fail(batch, exc)
            except Exception as exc:
                log.exception("ordering failed")
                self.node.fail(batch, Unavailable(f"The block could not be ordered: {exc}"))

    def _collect(self, first: Any) -> tuple[list[Pending], bool]:
        """The next batch: what was carried over, then what arrives within ``max_wait`` of
        the first transaction, up to ``max_txs`` transactions and MAX_BLOCK_BYTES."""
        batch, self._carry = self._carry, []
        stop = first is None
        deadline = None
        item = first
        while not stop:
            if isinstance(item, Pending):
                batch.append(item)
            elif isinstance(item, list):  # handed back: they were admitted before the rest
                batch = [p for p in item if not p.future.done()] + batch
            if deadline is None and batch:  # from the first one's arrival (see SoloOrderer)
                deadline = batch[0].arrived + self.max_wait
            if len(batch) >= self.max_txs:
                break
            try:
                if deadline is None:
                    item = self._queue.get_nowait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        item = self._queue.get_nowait()
                    else:
                        item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            stop = item is None
        size = 0
        for i, pending in enumerate(batch):
            size += len(pending.tx.leaf)
            if (i >= self.max_txs or size > MAX_BLOCK_BYTES) and i > 0:
                batch, self._carry = batch[:i], batch[i:]
                break
        return batch, stop

    def _prepare(self) -> None:
        """Agree with etcd on the chain, make sure it holds this node's head when it holds no
        block at all, and say where peers reach this node."""
        node = self.node
        self.keys = keys = Keys(node.chain_id)
        created, existing = self.client.create(keys.chain, node.chain_id.encode())
        if not created and existing is not None and existing.value != node.chain_id.encode():
            self.fault = f"etcd orders another chain ({existing.value.decode()!r})"
            return
        self._anchor()
        if self.advertise:
            body = {"node_id": node.node_id, **self.advertise}
            self.client.put(keys.peers + node.node_id.encode(), json.dumps(body).encode())
        self._prepared = True
        self.healthy = True

    def _anchor(self) -> None:
        keys = self.keys
        assert keys is not None
        kvs, _ = self.client.range(keys.blocks, keys.blocks_end, limit=1, keys_only=True)
        head = self.node.head
        if not kvs and head is not None:
            block = self.node.store.block(head.height)
            self.client.create(keys.block(head.height), encode_block(block))

    def _probe(self) -> None:
        assert self.keys is not None
        self.client.range(self.keys.chain, timeout=1.0)  # linearizable: needs the quorum
        self.healthy = True

    def _order(self, batch: list[Pending]) -> None:
        node = self.node
        keys = self.keys
        assert keys is not None
        while batch:
            self._take_turn()
            batch = [p for p in batch if not p.future.done()]  # answered by a block applied
            if not batch:
                return
            began = time.perf_counter()
            built = node.build_block([p.tx for p in batch])
            height = built.block.height
            value = encode_block(built.block)
            built_at = time.perf_counter()
            self.seconds["build"] += built_at - began
            created, existing = self.client.create(
                keys.block(height), value, require=keys.block(height - 1)
            )
            self.seconds["order"] += time.perf_counter() - built_at
            if created or (existing is not None and existing.value == value):
                began = time.perf_counter()
                # Answered once durable, by the syncer: the next block is built meanwhile.
                block = node.write_built(built, durable=False)
                self.seconds["write"] += time.perf_counter() - began
                node.settle_when_durable(batch, block, built.reasons_ja)
                if self.forwarder is not None:
                    self.forwarder.forget(batch)
                self.counts["proposed"] += 1
                if height % min(TRIM_EVERY, self.window) == 0 and height > self.window:
                    with contextlib.suppress(EtcdUnavailable):
                        self.client.delete_range(keys.blocks, keys.block(height - self.window))
                return
            self.counts["lost"] += 1
            if existing is None:
                # blocks/<h-1> is not in etcd: it was wiped, or this node is behind the window.
                self._anchor()
                if not self._from_peers():
                    raise Unavailable(
                        "This node is catching up with the consortium.",
                        "このノードはコンソーシアムに追いついている途中です。",
                    )
                self._catch_up()
                continue
            block = self._apply_kv(existing)
            self._catch_up()
            ids = {tx.id for tx in block.txs}
            done = [p for p in batch if p.tx.id in ids]
            if done:  # submitted twice (through another node too): answered by that block
                node.settle_when_durable(done, block)  # applied without waiting for the disk
                batch = [p for p in batch if p.tx.id not in ids]
            batch = self._more(batch)

    def _more(self, batch: list[Pending]) -> list[Pending]:
        """``batch`` with what arrived while it waited, so that the next try carries it too
        (fewer, fuller blocks when nodes compete for heights)."""
        size = sum(len(p.tx.leaf) for p in batch)
        while len(batch) < self.max_txs and size < MAX_BLOCK_BYTES:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stopping: put it back for the loop to see
                self._queue.put(None)
                break
            if isinstance(item, Pending):
                if size + len(item.tx.leaf) > MAX_BLOCK_BYTES:
                    self._carry.append(item)  # the next batch starts with it
                    break
                batch.append(item)
                size += len(item.tx.leaf)
        return batch

    def _take_turn(self) -> None:
        """Let the nodes take turns: at each height one node (by rank, rotating with the
        height) proposes at once and each other waits ``TURN`` seconds per rank, unless the
        height gets filled meanwhile. Without this the node that just won a height, already
        at the tip while the others apply its block, wins again and again, and the others'
        clients wait (and their wasted blocks cost CPU)."""
        node = self.node
        head = node.head
        if head is None or (self.forwarder is not None and self.forwarder.is_proposer()):
            return
        if head.height % 100 == 0 or not self._ranks:
            ids = sorted(key for key, _ in node.store.state().scan("identity.node"))
            self._ranks = {ident: i for i, ident in enumerate(ids)}
        count = len(self._ranks)
        mine = self._ranks.get(node.node_id)
        if mine is None or count < 2:
            return
        rank = (mine - (head.height + 1)) % count
        if rank:
            began = time.perf_counter()
            time.sleep(rank * TURN)
            self.seconds["turn"] += time.perf_counter() - began
            self._catch_up()  # the height may have been filled meanwhile

    # -- following ---------------------------------------------------------------------------

    def _apply_kv(self, kv: KV) -> Any:
        try:
            began = time.perf_counter()
            block = decode_block(kv.value)
            built = check_block(self.node, block)
            self.node.write_built(built, durable=False)
            self.seconds["apply"] += time.perf_counter() - began
        except Exception as exc:
            self._halt(f"the block at {kv.key.decode()} in etcd failed its checks: {exc}", exc)
        self.counts["from_etcd"] += 1
        self._settle([built])
        return block

    def _settle(self, builts: list[Built]) -> None:
        if self.forwarder is not None and builts:
            self.forwarder.settle(builts)

    def _halt(self, fault: str, exc: BaseException) -> NoReturn:
        self.fault = fault
        log.error("%s", fault)
        if self.forwarder is not None:
            self.forwarder.fail_all(Halted())
        raise Halted() from exc

    def _catch_up(self) -> None:
        """Apply what etcd holds beyond this node's head, a range at a time (each range one
        run, see :mod:`tsunagu.node.catchup`); while it is behind, the next ranges are fetched
        and checked while one is applied."""
        assert self.keys is not None and self.catchup is not None
        while True:
            head = self.node.head
            want = 0 if head is None else head.height + 1
            ranges = self.catchup.ranges(self._etcd_range, want)
            try:
                for fetched in ranges:
                    kvs = fetched.info
                    if not kvs:
                        self.behind = None
                        return
                    first = self.keys.height(kvs[0].key)
                    if first > fetched.start:  # etcd no longer holds what comes next
                        self.behind = f"blocks {fetched.start} to {first - 1} must come from peers"
                        break
                    self._apply_run(kvs, fetched.prepared or [])
                    if len(kvs) < CATCH_UP_BATCH:
                        self.behind = None
                        return
                else:
                    continue  # the ranges ended where the head is not: look again
            finally:
                ranges.close()
            if not self._from_peers(until=first):
                return

    def _etcd_range(self, start: int) -> Range:
        """etcd's blocks from height ``start`` on (up to CATCH_UP_BATCH): ``info`` holds every
        key etcd answered with, ``raws`` the values of those that continue from ``start``.
        What the watch delivered is taken without asking etcd (see :meth:`_fed`)."""
        fed = self._fed(start)
        if fed is not None:
            return fed
        keys = self.keys
        assert keys is not None
        with self._seen_lock:
            epoch = self._watch_epoch
            self._seen_overflow = False  # what the watch dropped is read now
        began = time.perf_counter()
        kvs, _ = self.client.range(
            keys.block(start), keys.blocks_end, limit=CATCH_UP_BATCH, serializable=True
        )
        self.seconds["look"] += time.perf_counter() - began
        # The watch is relied on only from etcd's tip on: a node behind it reads etcd.
        self._looked_epoch = epoch if len(kvs) < CATCH_UP_BATCH else -1
        self._looked_at = time.monotonic()
        raws = []
        for kv in kvs:
            if keys.height(kv.key) != start + len(raws):
                break
            raws.append(kv.value)
        return Range(start, raws, len(kvs) == CATCH_UP_BATCH and len(raws) == len(kvs), kvs)

    def _fed(self, start: int) -> Range | None:
        """The blocks from height ``start`` on that the watch delivered, or ``None`` when etcd
        must be read instead: no live watch, no read of etcd that reached its tip since the
        watch was created (a put between an earlier read and the watch's start would be
        missed, and a node behind the tip must read what lies before it), the watch dropped
        or skipped a block, or the last read is over LOOK_EVERY old. An empty range
        means nothing new (proposing on a taken height then loses the create and gets the
        block that holds it: correctness never depends on the watch)."""
        keys = self.keys
        assert keys is not None
        with self._seen_lock:
            if (
                self._watch_epoch == 0
                or self._looked_epoch != self._watch_epoch
                or self._seen_overflow
                or time.monotonic() - self._looked_at > LOOK_EVERY
            ):
                return None
            seen = self._seen
            for height in [h for h in seen if h < start]:
                del seen[height]
            raws = []
            while len(raws) < CATCH_UP_BATCH and start + len(raws) in seen:
                raws.append(seen[start + len(raws)])
            if not raws and seen:
                return None  # a later block arrived but not this one: read etcd
        kvs = [KV(keys.block(start + n), raw, 0, 0) for n, raw in enumerate(raws)]
        return Range(start, raws, len(raws) == CATCH_UP_BATCH, kvs)

    def _apply_run(self, kvs: list[KV], prepared: list[Prepared]) -> None:
        assert self.catchup is not None
        began = time.perf_counter()
        before = self.node.head.height if self.node.head is not None else -1
        try:
            builts = self.catchup.apply(prepared)
        except Exception as exc:
            after = self.node.head.height if self.node.head is not None else -1
            self.counts["from_etcd"] += after - before
            failed = kvs[min(after - before, len(kvs) - 1)]
            self._halt(f"the block at {failed.key.decode()} in etcd failed its checks: {exc}", exc)
        self.seconds["apply"] += time.perf_counter() - began
        self.counts["from_etcd"] += len(prepared)
        self._settle(builts)

    def _from_peers(self, until: int | None = None) -> bool:
        """Fetch, check and apply blocks from peers' block API; ``True`` if any was applied.
        With ``until``, every block below that height (the next batches fetched and checked
        while one is applied); without it, one batch from each peer."""
        assert self.catchup is not None
        applied = False
        client = self._peer_client
        assert client is not None
        for url in self.peer_urls():

            def fetch(start: int, url: str = url) -> Range:
                limit = PEER_BATCH if until is None else min(PEER_BATCH, until - start)
                response = client.get(
                    url.rstrip("/") + "/api/v1/consortium/blocks",
                    params={"start": start, "limit": limit},
                )
                blocks = response.json().get("blocks", []) if response.status_code == 200 else []
                if not isinstance(blocks, list):
                    raise ValueError("the peer's blocks are not a list")
                more = until is not None and len(blocks) >= limit and start + limit < until
                return Range(start, blocks[:limit], more)

            ranges = self.catchup.ranges(fetch, self.node.head.height + 1)
            try:
                for fetched in ranges:
                    before = self.node.head.height
                    try:
                        self._settle(self.catchup.apply(fetched.prepared or []))
                    finally:
                        done = self.node.head.height - before
                        self.counts["from_peers"] += done
                        applied = applied or done > 0
            except (httpx.HTTPError, ValueError, KeyError, BadBlock) as exc:
                log.warning("catching up from %s failed: %s", url, exc)
                continue
            finally:
                ranges.close()
            if until is not None and self.node.head.height + 1 >= until:
                break
        return applied

    def _watch(self) -> None:
        """Hand every block put in etcd to the ordering thread and wake it (see _fed)."""
        while not self._stopping:
            keys = self.keys
            if keys is None:
                time.sleep(0.2)
                continue
            try:
                for puts in self.client.watch(keys.blocks, keys.blocks_end, 0):
                    if self._stopping:
                        return
                    if puts is None:  # created: the thread reads etcd once more, then relies
                        with self._seen_lock:  # on what arrives here
                            self._seen.clear()
                            self._watch_epoch = self._watch_epoch % 1_000_000 + 1
                        self.wake()
                    elif puts:
                        self._remember(puts, keys)
                        self.wake()
            except Exception:  # a dead member or a broken stream: try the next one
                with self._seen_lock:
                    self._watch_epoch = 0
                    self._seen.clear()
                self.client.rotate()
                time.sleep(0.3)

    def _remember(self, puts: list[KV], keys: Keys) -> None:
        head = self.node.head
        below = -1 if head is None else head.height
        with self._seen_lock:
            for height in [h for h in self._seen if h <= below]:
                del self._seen[height]
            for kv in puts:
                try:
                    height = keys.height(kv.key)
                except ValueError:
                    continue
                if height <= below:
                    continue
                if len(self._seen) >= SEEN_MAX:
                    self._seen_overflow = True  # read from etcd until it has caught up
                    return
                self._seen[height] = kv.value
