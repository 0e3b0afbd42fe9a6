"""Forwarding writes to the consortium's proposer, so that one node builds the blocks.

When every voting node proposes its own clients' transactions, the nodes take turns at the
heights: each block must first be applied by the node that builds the next one, so applying
lies on the chain's critical path, and nodes that build on the same height waste the loser's
work. Instead, each node hands the batches it admitted to the **proposer**: the voting node
with the lowest id among those registered in etcd (``peers/<node id>``, role ``voting``).
The proposer admits them like its own clients' transactions (signature, signer, sequence
number), orders them in its blocks and answers once they are committed there. The
forwarding node answers its clients only when it has applied the block that holds each
transaction itself and made it durable (:meth:`Forwarder.settle`): a block it takes from etcd
is checked like any other, so nothing is taken on the proposer's word.

Nothing depends on there being one proposer. A node that cannot reach the proposer (down,
restarting, too slow) proposes its batches itself for a while, as every node did before, and
etcd's create-if-absent still decides each height. A forwarded transaction that reaches a
block twice (forwarded, then proposed again after a timeout) is answered by its first copy;
the second is refused by the sequence check like any replay.

``POST /api/v1/consortium/forward`` takes the leaves one per line (canonical JSON, which
holds no raw newline) and answers ``{"results": [...]}``, one entry per line in order:
``{"ok": true, "height": h}`` or ``{"problem": {...}}`` (RFC 9457 fields).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tsunagu.errors import TsunaguError, Unavailable
from tsunagu.node.apply import Built
from tsunagu.node.orderer import Pending

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 10.0  # seconds for the proposer to commit a forwarded batch
SUSPECT_FOR = 5.0  # seconds this node proposes itself after the proposer failed it
PROPOSER_EVERY = 10.0  # seconds between looks at etcd's registry for the proposer
FORWARD_CONCURRENCY = 4  # forwarded requests in flight at once
MAX_FORWARD = 2000  # transactions taken from the queue at once
MAX_FORWARD_BYTES = 240 * 1024  # leaf bytes per request (the node's body limit is 256 KiB)
WAIT_MAX = 120.0  # seconds a forwarded transaction may wait for its block here
PATH = "/api/v1/consortium/forward"
# The proposer stopped following the chain, or knows its copy differs: propose here instead.
NOT_PROPOSING = frozenset({"node_halted", "node_diverged"})


def problem_error(problem: dict[str, Any]) -> TsunaguError:
    """The error a proposer's problem object describes, to answer this node's client with."""
    known = {"type", "title", "status", "detail", "code", "detail_en", "detail_ja", "instance"}
    extra = {k: v for k, v in problem.items() if k not in known}
    return TsunaguError(
        str(problem.get("detail_en") or problem.get("detail") or "refused"),
        str(problem.get("detail_ja") or problem.get("detail") or "拒否されました。"),
        code=str(problem.get("code") or "error"),
        status=int(problem.get("status") or 400),
        **extra,
    )


class Forwarder:
    """The forwarding side of one node (see the module): a thread that posts batches to the
    proposer, and the forwarded transactions waiting for their blocks here."""

    def __init__(self, orderer: Any) -> None:
        self.orderer = orderer
        self.counts = {"forwarded": 0, "handed_back": 0}
        self._queue: queue.SimpleQueue[list[Pending] | None] = queue.SimpleQueue()
        self._waiting: dict[str, tuple[Pending, float]] = {}
        self._lock = threading.Lock()
        self._suspect_until = 0.0
        self._proposer: tuple[str, str] | None = None  # (node id, url)
        self._proposer_at = -PROPOSER_EVERY
        self._client = httpx.Client(timeout=FORWARD_TIMEOUT)  # shared by the senders
        self._senders = ThreadPoolExecutor(FORWARD_CONCURRENCY, "etcd-forward-post")
        self._flight: set[str] = set()  # signers of the requests in flight
        self._requests = 0
        self._flight_changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="etcd-forward", daemon=True)
        self._thread.start()

    # -- the ordering thread's side --------------------------------------------------------

    def target(self) -> str | None:
        """The proposer's URL, or ``None`` when this node proposes itself (it is the proposer,
        none is known, or the proposer failed it lately)."""
        now = time.monotonic()
        if now < self._suspect_until:
            return None
        if now - self._proposer_at > PROPOSER_EVERY:
            self._proposer_at = now
            self._proposer = self._look_up()
        if self._proposer is None or self._proposer[0] == self.orderer.node.node_id:
            return None
        return self._proposer[1]

    def is_proposer(self) -> bool:
        """This node is the proposer the others forward to (it need not take turns)."""
        self.target()
        return self._proposer is not None and self._proposer[0] == self.orderer.node.node_id

    def _look_up(self) -> tuple[str, str] | None:
        try:
            registry = self.orderer.registry()
        except Exception as exc:
            log.warning("could not read the consortium's registry: %s", exc)
            return None
        voting = [
            (str(entry.get("node_id", node_id)), str(entry["url"]).rstrip("/"))
            for node_id, entry in registry.items()
            if entry.get("role") == "voting" and entry.get("url")
        ]
        return min(voting) if voting else None

    def take(self, batch: list[Pending]) -> list[Pending]:
        """Forward what of ``batch`` may go to the proposer, when there is one to forward to;
        return what this node proposes itself (what other nodes forwarded to it, and all
        when it is the proposer)."""
        if all(p.propose_here for p in batch) or self.target() is None:
            return batch
        here = [p for p in batch if p.propose_here]
        away = [p for p in batch if not p.propose_here]
        now = time.monotonic()
        with self._lock:
            for p in away:
                self._waiting[p.tx.id] = (p, now)
        self._queue.put(away)
        return here

    def settle(self, builts: list[Built]) -> None:
        """Answer the forwarded transactions that ``builts`` (blocks just applied here, as
        executed here) hold, once they are durable here; give up on those that waited too
        long (answered 503: the client may look the transaction up later)."""
        if not self._waiting:
            return
        done: list[tuple[list[Pending], Built]] = []
        with self._lock:
            for built in builts:
                found = [
                    self._waiting.pop(tx.id)[0] for tx in built.block.txs if tx.id in self._waiting
                ]
                found = [p for p in found if not p.future.done()]
                if found:
                    done.append((found, built))
            late = time.monotonic() - WAIT_MAX
            stale = [p for p, since in self._waiting.values() if since < late]
            for p in stale:
                del self._waiting[p.tx.id]
        for found, built in done:  # applied blocks are written without waiting for the disk
            self.orderer.node.settle_when_durable(found, built.block, built.reasons_ja)
        if stale:
            self.orderer.node.fail([p for p in stale if not p.future.done()], Unavailable())

    def forget(self, batch: list[Pending]) -> None:
        """``batch`` is answered otherwise (this node's own block, or a failure)."""
        with self._lock:
            for p in batch:
                self._waiting.pop(p.tx.id, None)

    def fail_all(self, error: BaseException) -> None:
        with self._lock:
            waiting = [p for p, _ in self._waiting.values()]
            self._waiting.clear()
        self.orderer.node.fail(waiting, error)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=FORWARD_TIMEOUT + 1)
        self._senders.shutdown(wait=True, cancel_futures=False)
        self._client.close()

    # -- the forwarding thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            stop = False
            while len(batch) < MAX_FORWARD:  # whatever else is waiting, in order
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch += more
            batch = [p for p in batch if not p.future.done()]
            if batch:
                # Up to FORWARD_CONCURRENCY requests at once, but never two that hold the
                # same signer: the proposer must admit a signer's transactions in order.
                signers = {p.tx.signer for p in batch}
                with self._flight_changed:
                    while self._requests >= FORWARD_CONCURRENCY or not signers.isdisjoint(
                        self._flight
                    ):
                        self._flight_changed.wait()
                    self._requests += 1
                    self._flight.update(signers)
                self._senders.submit(self._send, batch, signers)
            if stop:
                return

    def _send(self, batch: list[Pending], signers: set[str]) -> None:
        try:
            self._post_all(batch)
        except Exception as exc:  # never leave a transaction unanswered
            log.exception("forwarding failed")
            self._hand_back(batch, f"{type(exc).__name__}: {exc}")
        finally:
            with self._flight_changed:
                self._requests -= 1
                self._flight.difference_update(signers)
                self._flight_changed.notify_all()

    def _post_all(self, batch: list[Pending]) -> None:
        """Post ``batch`` in requests under the node's body limit, in order; once one is
        handed back, so is the rest (a signer's later transactions must not overtake)."""
        chunks: list[list[Pending]] = [[]]
        size = 0
        for p in batch:
            size += len(p.tx.leaf) + 1
            if size > MAX_FORWARD_BYTES and chunks[-1]:
                chunks.append([])
                size = len(p.tx.leaf) + 1
            chunks[-1].append(p)
        for n, chunk in enumerate(chunks):
            if not self._post(chunk):
                rest = [p for later in chunks[n + 1 :] for p in later]
                if rest:
                    self._hand_back(rest, "an earlier request was handed back")
                return

    def _post(self, batch: list[Pending]) -> bool:
        url = self._proposer[1] if self._proposer is not None else None
        if url is None:
            self._hand_back(batch, "no proposer")
            return False
        body = b"\n".join(p.tx.leaf for p in batch)
        try:
            response = self._client.post(
                url + PATH, content=body, headers={"content-type": "application/x-ndjson"}
            )
            results = response.json()["results"] if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._hand_back(batch, f"{type(exc).__name__}: {exc}")
            return False
        if not isinstance(results, list) or len(results) != len(batch):
            self._hand_back(batch, f"HTTP {response.status_code}")
            return False
        self.counts["forwarded"] += len(batch)
        refused, again = [], []
        for p, result in zip(batch, results, strict=True):
            problem = result.get("problem") if isinstance(result, dict) else None
            if problem is None:
                continue
            if problem.get("code") in NOT_PROPOSING:  # the proposer, not the transaction
                again.append(p)
            else:
                refused.append((p, problem_error(problem)))
        if again:
            self._hand_back(again, "the proposer does not propose")
        if refused:
            self.forget([p for p, _ in refused])
            for p, error in refused:
                self.orderer.node.fail([p], error)
        self.orderer.wake()  # its blocks are in etcd: apply them and answer the clients
        return True

    def _hand_back(self, batch: list[Pending], why: str) -> None:
        """The proposer did not take ``batch``: this node proposes it itself for a while.
        Its transactions stay waiting here too: if the proposer did commit some of them,
        the block that holds them answers them (and this node's copy is refused as a
        replay, which answers no one)."""
        log.warning("forwarding to the proposer failed (%s): proposing here", why)
        self._suspect_until = time.monotonic() + SUSPECT_FOR
        self.counts["handed_back"] += len(batch)
        self.orderer.hand_back(batch)
