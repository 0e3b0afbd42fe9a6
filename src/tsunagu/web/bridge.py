"""Waiting on the node's futures from an event loop, one wake-up per block.

The commit thread settles a whole block's transactions at once. ``asyncio.wrap_future``
would schedule one callback per transaction across threads (each a write to the loop's
self-pipe and a wake-up); a :class:`Bridge` queues the settled futures and wakes its loop
once for however many settle before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from concurrent.futures import Future
from functools import partial
from typing import Any

_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Bridge] = weakref.WeakKeyDictionary()


class Bridge:
    """Copies settled :class:`concurrent.futures.Future` outcomes into one loop's futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._settled: list[tuple[asyncio.Future, Future]] = []
        self._scheduled = False

    def watch(self, future: Future) -> asyncio.Future:
        """A future of this loop with ``future``'s outcome (call on the loop's thread)."""
        mirror = self.loop.create_future()
        future.add_done_callback(partial(self._settle, mirror))
        return mirror

    def _settle(self, mirror: asyncio.Future, future: Future) -> None:
        # Runs on whichever thread settled ``future``.
        with self._lock:
            self._settled.append((mirror, future))
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            settled, self._settled = self._settled, []
            self._scheduled = False
        for mirror, future in settled:
            if mirror.done():  # the waiter gave up (timeout, disconnect)
                continue
            if future.cancelled():
                mirror.cancel()
                continue
            error = future.exception()
            if error is None:
                mirror.set_result(future.result())
            else:
                mirror.set_exception(error)


def wait(future: Future) -> asyncio.Future[Any]:
    """An awaitable for ``future`` on the running loop."""
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = Bridge(loop)
    return bridge.watch(future)
