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


Deliver = Callable[[list[Pending]], None]


class Orderer(Protocol):
    """``start`` gets the node whose commit path it drives: ``node.deliver(batch)`` makes a
    batch the node's next block (the solo engine); the etcd engine also uses the node's
    ``build_block``, ``write_built``, ``apply_block``, ``settle`` and ``fail``. ``submit``
    raises :class:`~tsunagu.errors.Unavailable` when the engine cannot take writes now."""

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
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_txs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            deliver(batch)
