"""The loop bridge: futures settled on another thread reach their waiters on the loop, with
one wake-up for a burst settled while the loop is busy, errors and cancellations carried
over, abandoned waiters skipped."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from tsunagu.web import bridge


def _run(main):
    """``asyncio.run(main())`` on a thread of its own (a browser test in the same worker may
    leave this thread's event loop running)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(main())))
    thread.start()
    thread.join(30)
    assert out, "the coroutine did not finish"
    return out[0]


def test_a_burst_settled_on_another_thread_reaches_every_waiter():
    async def main() -> list:
        futures = [Future() for _ in range(100)]
        waiters = [bridge.wait(f) for f in futures]
        loop = asyncio.get_running_loop()
        wakeups = 0
        original = loop.call_soon_threadsafe

        def counting(callback, *args):
            nonlocal wakeups
            wakeups += 1
            return original(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]

        def settle() -> None:
            for n, future in enumerate(futures):
                if n == 7:
                    future.set_exception(ValueError("refused"))
                else:
                    future.set_result(n)

        thread = threading.Thread(target=settle)
        thread.start()
        thread.join()  # the whole burst settles while the loop is busy (here, blocked)
        results = await asyncio.gather(*waiters, return_exceptions=True)
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
        return [results, wakeups]

    results, wakeups = _run(main)
    assert results[:7] == list(range(7)) and results[8:] == list(range(8, 100))
    assert isinstance(results[7], ValueError)
    assert wakeups == 1  # one wake-up for the whole burst, not one per future


def test_an_abandoned_waiter_is_skipped_and_a_done_future_answers_at_once():
    async def main() -> tuple:
        slow: Future = Future()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await bridge.wait(slow)
        slow.set_result("late")  # the cancelled waiter is not set again (no InvalidStateError)
        done: Future = Future()
        done.set_result("now")
        cancelled: Future = Future()
        cancelled.cancel()
        now = await bridge.wait(done)
        with pytest.raises(asyncio.CancelledError):
            await bridge.wait(cancelled)
        return now, None

    assert _run(main)[0] == "now"
