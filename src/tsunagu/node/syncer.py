"""Group commit: blocks are made durable, and their clients answered, off the commit path.

The solo engine's commit path executes a block and commits it to SQLite without waiting for
the disk, then goes on to the next block. This thread syncs the write-ahead log once for
every block committed since its last sync, and only then answers those blocks' clients: a
write is still acknowledged only once its block is durable, while the next block is built
during the sync instead of after it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from tsunagu.errors import Unavailable
from tsunagu.ledger.block import Block

# ``batch`` is whatever the caller answers with: the node's pendings, or the commit
# process's (count, refusals); ``block`` is None for a batch that became no block.
Settle = Callable[[Any, Block | None, Any], None]
Fail = Callable[[Any, BaseException], None]


class Syncer:
    def __init__(self, sync: Callable[[], None], settle: Settle, fail: Fail) -> None:
        self._sync = sync
        self._settle = settle
        self._fail = fail
        self._queue: queue.SimpleQueue[tuple[Any, Block | None, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="syncer", daemon=True)
        self._thread.start()

    def put(self, batch: Any, block: Block | None, reasons_ja: Any) -> None:
        """Answer ``batch`` from ``block`` (already committed, maybe not yet durable)."""
        self._queue.put((batch, block, reasons_ja))

    def stop(self) -> None:
        """Sync and answer everything already put, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:  # every block committed meanwhile shares this sync
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = None in items
            done = [item for item in items if item is not None]
            if done:
                try:
                    self._sync()
                except Exception as exc:  # not durable: acknowledge nothing
                    error = Unavailable(f"The block could not be made durable: {exc}")
                    for batch, _, _ in done:
                        self._fail(batch, error)
                else:
                    for batch, block, reasons_ja in done:
                        self._settle(batch, block, reasons_ja)
            if stopping:
                return
