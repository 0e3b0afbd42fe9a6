"""Ordering: one small interface, several engines.

An orderer takes admitted transactions and hands back ordered batches, each of which the
node turns into exactly one block. The node never asks which engine it has.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from tsunagu.ledger.tx import Transaction


@dataclass(slots=True)
class Pending:
    """An admitted transaction waiting for its block."""

    tx: Transaction
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)  # when the node was handed it
    # Admitted without its signature and sequence checks: an engine that ``checks_signatures``
    # runs them (Node.screen) just before the transaction's block is built.
    unchecked: bool = False
    # Handed over by another node of the consortium (tsunagu.node.forward): ordered here,
    # never forwarded again.
    propose_here: bool = False


Deliver = Callable[[list[Pending]], None]


class Orderer(Protocol):
    """``start`` gets the node whose commit path it drives: ``node.deliver(batch)`` makes a
    batch the node's next block (the solo engine); the etcd engine also uses the node's
    ``build_block``, ``write_built``, ``apply_block``, ``settle`` and ``fail``; the commit
    process engine (``commitproc.ProcessOrderer``) has its child build and write the blocks
    and uses the node's ``settle`` and ``fail``. ``submit`` is called in admission order with
    the node's lock held, and raises :class:`~tsunagu.errors.Unavailable` when the engine
    cannot take writes now. An engine whose ``checks_signatures`` is true is handed
    client-signed transactions before their signature and sequence checks (``unchecked``) and
    runs them itself, in order, with :meth:`~tsunagu.node.node.Node.screen`."""

    def start(self, node: Any) -> None: ...
    def submit(self, pending: Pending) -> None: ...
    def stop(self) -> None: ...


class SoloOrderer:
    """Orders in-process: cuts a batch at ``max_txs`` transactions or ``max_wait`` seconds
    after the first transaction of the batch arrived, whichever comes first."""

    def __init__(self, max_txs: int = 500, max_wait: float = 0.05) -> None:
        self.max_txs = max_txs
        self.max_wait = max_wait
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self, node: Any) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(node.deliver,), name="solo-orderer", daemon=True
        )
        self._thread.start()

    def submit(self, pending: Pending) -> None:
        self._queue.put(pending)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self, deliver: Deliver) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            # The wait counts from the first transaction's arrival, not from when this thread
            # took it: one that came while the last batch was being delivered has waited.
            deadline = first.arrived + self.max_wait
            while len(batch) < self.max_txs:
                remaining = deadline - time.monotonic()
                try:  # past the deadline, what is already waiting still joins
                    item = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            deliver(batch)
