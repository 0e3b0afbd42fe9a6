"""Strict leaf decoding and signature checks in worker processes, for a node catching up.

:func:`check_leaves` is what a worker runs: decode each leaf strictly
(:func:`~tsunagu.ledger.tx.decode_leaf`) and verify each transaction's signature under a key
given with it. :class:`Workers` owns the process pool: started from a ``forkserver`` (a serving
node has threads and open databases that a forked child must not inherit), one worker per CPU,
each exiting when the node's process is gone (even by ``kill -9``). A thread of its own starts
the pool and hands it the tasks, so that a caller never waits for the workers to start: until
one is up (:attr:`Workers.up`), a caller may cancel a task and check its leaves itself. A pool
that breaks (a worker killed) fails its tasks and is replaced.

:func:`light_block` parses a wire block only as far as execution needs, for a caller that
leaves the strict decoding to the workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sys
import threading
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

from tsunagu.ledger.block import Block
from tsunagu.ledger.canonical import loads_json
from tsunagu.ledger.keys import verify_signature
from tsunagu.ledger.tx import Transaction, decode_leaf
from tsunagu.node.wire import block_from_wire

# Per block: the leaves and the key hint of each (or None).
Task = list[tuple[list[bytes], list[bytes | None]]]
# Per block: whether each signature verified under its hint, and the first leaf that does not
# decode strictly (its index and why), if any.
Verdict = tuple[list[bool], tuple[int, str] | None]


def check_leaves(task: Task) -> list[Verdict]:
    """Runs in a worker: decode every leaf strictly and verify each signature under its hint."""
    verdicts: list[Verdict] = []
    for leaves, keys in task:
        # All leaves first, then all signatures (as tsunagu verify's workers do: less CPU).
        bad = None
        signed: list[tuple[int, bytes, str, bytes]] = []
        for i, leaf in enumerate(leaves):
            try:
                tx = decode_leaf(leaf)
            except Exception as exc:  # malformed, not canonical, or not JSON at all
                bad = (i, str(exc))
                break
            key = keys[i]
            if key is not None:
                signed.append((i, key, tx.signature, tx.signing_bytes()))
        valid = [False] * len(leaves)
        if bad is None:
            for i, key, signature, message in signed:
                # decode_leaf has checked the signature to be 128 lowercase hex characters.
                valid[i] = verify_signature(key, bytes.fromhex(signature), message)
        verdicts.append((valid, bad))
    return verdicts


def _light_tx(leaf: bytes) -> Transaction:
    try:
        return Transaction.from_body(loads_json(leaf), leaf)
    except Exception:  # too broken to parse at all: decode_leaf says why
        decode_leaf(leaf)
        raise ValueError("the leaf is not a transaction") from None


def light_block(raw: Any) -> Block:
    """:func:`~tsunagu.node.wire.block_from_wire` with each leaf parsed only for execution
    (:meth:`Transaction.from_body`): its strict decoding is left to :func:`check_leaves`."""
    return block_from_wire(raw, _light_tx)


def _copy_result(target: Future, source: Future) -> None:
    if source.cancelled():
        target.set_exception(BrokenProcessPool("the task was cancelled"))
    elif source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


def _worker_start() -> None:
    """In each worker: exit as soon as the node's process is gone (even by ``kill -9``), so
    that no worker outlives it waiting for tasks."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


# Each worker runs the node's main module again as ``__mp_main__`` (multiprocessing does, to
# find what it may unpickle); the server has imported it already, which runpy warns about.
warnings.filterwarnings(
    "ignore", r".* found in sys\.modules after import of package", RuntimeWarning, "runpy"
)


def _pool_context() -> Any:
    """Workers started from a fresh process (``forkserver``): a serving node has threads and
    open databases that a forked child must not inherit. The server imports this module and
    the node's main module once (each worker imports the main module again, cheaply then)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    main = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    preload = [__name__]
    if isinstance(main, str) and not main.endswith("__main__"):
        preload.append(main)
    context.set_forkserver_preload(preload)
    return context


class Workers:
    """A pool of worker processes running :func:`check_leaves` (see the module)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.up = threading.Event()  # a worker is up: submitted tasks will be run
        self._pool: ProcessPoolExecutor | None = None  # this object's thread's
        self._queue: queue.SimpleQueue[tuple[Future | None, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        self._queue.put((None, None))  # the thread shuts the pool down
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def submit(self, task: Task) -> Future:
        """A future for the task's verdicts. This object's thread hands it to a worker once
        the pool is up; until then the caller may cancel it and check the leaves itself (see
        :attr:`up`), so that starting the workers never holds it up."""
        verdicts: Future = Future()
        self._queue.put((verdicts, task))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="catch-up-submit", daemon=True)
            self._thread.start()
        return verdicts

    def _run(self) -> None:
        pool: ProcessPoolExecutor | None = None
        try:
            while True:
                verdicts, task = self._queue.get()
                if verdicts is None:
                    return
                if pool is None or getattr(pool, "_broken", False):
                    self.up.clear()
                    if pool is not None:
                        pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._pool = ProcessPoolExecutor(
                        self.workers, mp_context=_pool_context(), initializer=_worker_start
                    )
                    # Until a worker is up; a pool that cannot start fails its tasks, and
                    # the caller checks their leaves itself.
                    with contextlib.suppress(Exception):
                        pool.submit(check_leaves, []).result()
                    self.up.set()
                if not verdicts.set_running_or_notify_cancel():
                    continue  # cancelled: the caller checked the leaves itself
                try:
                    inner = pool.submit(check_leaves, task)
                except Exception as exc:  # broken or shut down: the caller checks them
                    verdicts.set_exception(exc)
                    continue
                inner.add_done_callback(partial(_copy_result, verdicts))
        finally:
            if pool is not None:  # waits for the running tasks (a fraction of a second)
                pool.shutdown(wait=True, cancel_futures=True)

    def warm_up(self) -> None:
        """Start the workers and wait until one is up."""
        self.submit([]).result()
