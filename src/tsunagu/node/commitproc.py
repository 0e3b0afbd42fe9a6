"""The solo engine's commit path in a child process (``tsunagu serve --commit-process``).

A node's web server and its commit path share one interpreter lock when they run in one
process: the event loop that parses requests and the thread that executes and writes blocks
take turns, and a 2-core machine leaves a core idle. With a commit process, the node's own
process keeps everything it did (HTTP, admission with the signature check, sequence
numbers, reads, listeners, answers) and a child process opened on the same data folder
executes each ordered batch, writes the block and makes it durable.

The child is a :class:`~tsunagu.node.node.Node` like any other, running the same
``build_block`` and ``write_built`` code, on its own SQLite connection; the parent sends it
the ordered batches (each transaction's leaf bytes, already checked at admission) and gets
back each block's header, signature and results once the block is durable. The parent
checks that the header extends its head and that the log root is the one its own copy of
the log frontier gives, then updates its head and answers the clients. At most
``IN_FLIGHT`` batches are with the child at once: while it works, the next batch grows.

If the child dies, the batches it had are answered 503 (they may or may not be in the
chain, like any write that timed out) and the node refuses writes until it is restarted.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tsunagu.errors import Unavailable
from tsunagu.ledger import merkle
from tsunagu.ledger.block import Block, BlockHeader, TxResult
from tsunagu.ledger.canonical import loads_json
from tsunagu.ledger.tx import Transaction
from tsunagu.node.orderer import Pending

log = logging.getLogger(__name__)

IN_FLIGHT = 2  # batches with the child at once
READY_TIMEOUT = 120.0  # seconds for the child to open the node


def platform_contracts() -> list[Any]:
    """The contracts of every installed application (what ``tsunagu serve`` runs)."""
    from tsunagu.platform import discover_apps
    from tsunagu.platform import platform_contracts as contracts_of

    return contracts_of(discover_apps())


def _child(conn: Connection, data_dir: str) -> None:
    """The child's main loop: build and write each batch, answer once durable."""
    from tsunagu.node.executor import MEMBER_NS, SEQ_NS
    from tsunagu.node.node import Node
    from tsunagu.node.syncer import Syncer

    node = Node(Path(data_dir), platform_contracts())
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    def settle(_: Any, block: Block | None, extra: Any) -> None:
        if block is None:  # the batch failed before it became a block
            send(("error", extra))
            return
        reasons_ja, writes = extra
        send(
            (
                "ok",
                block.header.canonical(),
                block.signature,
                [r.to_json() for r in block.results],
                reasons_ja,
                writes,
            )
        )

    def fail(_: Any, error: BaseException) -> None:
        send(("error", str(error)))

    syncer = Syncer(node.store.sync, settle, fail)
    send(("ready", node.head.height if node.head else -1))
    try:
        while True:
            message = conn.recv()
            if message is None:
                break
            try:
                # The parent decoded every leaf strictly at admission: parse them only.
                txs = [Transaction.from_body(loads_json(leaf), leaf) for leaf in message]
                built = node.build_block(txs)
                block = node.write_built(built, durable=False)
            except Exception as exc:
                syncer.put([], None, f"The block could not be committed: {exc}")  # type: ignore[arg-type]
                continue
            writes = [w for w in built.writes if w[0] in (SEQ_NS, MEMBER_NS)]
            syncer.put([], block, (built.reasons_ja, writes))
    except EOFError:  # the parent is gone
        pass
    finally:
        syncer.stop()
        node.store.close()
        with contextlib.suppress(OSError):
            send(("bye",))


class ProcessCommitter:
    """The parent's side: sends ordered batches to the child, applies its answers."""

    def __init__(self) -> None:
        self._conn: Connection | None = None
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._slots = threading.Semaphore(IN_FLIGHT)
        self._in_flight: collections.deque[list[Pending]] = collections.deque()
        self._lock = threading.Lock()
        self.dead: str | None = None  # why the child is gone, once it is
        self.node: Any = None

    def start(self, node: Any) -> None:
        self.node = node
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-m", __name__, str(theirs.fileno())]
        self._process = subprocess.Popen(
            [*argv, str(node.data_dir), str(os.getpid())],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        conn = self._conn = Connection(ours.detach())
        if not conn.poll(READY_TIMEOUT):
            self._process.kill()
            raise RuntimeError("the commit process did not start")
        message = conn.recv()
        head = node.head.height if node.head else -1
        if message != ("ready", head):
            self._process.kill()
            raise RuntimeError(f"the commit process opened another chain state: {message}")
        self._reader = threading.Thread(target=self._read, name="commit-reader", daemon=True)
        self._reader.start()

    def deliver(self, batch: list[Pending]) -> None:
        """Send one ordered batch (the solo orderer's thread; waits while ``IN_FLIGHT``
        batches are with the child, so that the next batch grows meanwhile)."""
        self._slots.acquire()
        with self._lock:
            if self.dead is not None or self._conn is None:
                self._slots.release()
                self.node.fail(batch, Unavailable(f"The commit process is gone: {self.dead}"))
                return
            self._in_flight.append(batch)
            try:
                self._conn.send([p.tx.leaf for p in batch])
            except OSError as exc:
                self._in_flight.pop()
                self._slots.release()
                self.node.fail(batch, Unavailable(f"The commit process is gone: {exc}"))

    def stop(self) -> None:
        """After the orderer stopped: the child finishes what it has, then exits."""
        if self._conn is None:
            return
        with self._lock, contextlib.suppress(OSError):
            self._conn.send(None)
        if self._reader is not None:
            self._reader.join(timeout=30)
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._conn.close()
        self._conn = None

    def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError) as exc:
                self._gone(f"{type(exc).__name__}: {exc}")
                return
            if message[0] == "bye":
                self._gone("stopped")
                return
            with self._lock:
                batch = self._in_flight.popleft()
            try:
                if message[0] == "ok":
                    self._committed(batch, *message[1:])
                else:
                    self.node.fail(batch, Unavailable(message[1]))
            except Exception as exc:  # the child's block does not fit this node's head
                log.exception("the commit process's block was not taken")
                self.node.fail(batch, Unavailable(str(exc)))
                self._gone(str(exc))
                return
            finally:
                self._slots.release()

    def _committed(
        self,
        batch: list[Pending],
        header_bytes: bytes,
        signature: str,
        results: list[dict[str, Any]],
        reasons_ja: list[str | None],
        writes: list[tuple[str, str, bytes | None]],
    ) -> None:
        import json

        node = self.node
        header = BlockHeader.from_json(json.loads(header_bytes))
        txs = tuple(p.tx for p in batch)
        head = node.head
        if head is None or header.prev_hash != head.hash or header.height != head.height + 1:
            raise RuntimeError(f"block {header.height} does not extend this node's head")
        frontier, _ = merkle.append(node.frontier, [merkle.leaf_hash(tx.leaf) for tx in txs])
        if frontier.root().hex() != header.tree_root:
            raise RuntimeError(f"block {header.height}: the log root differs")
        block = Block(header, signature, txs, tuple(TxResult.from_json(r) for r in results))
        node._committed_block(block, frontier, writes)
        node.settle(batch, block, reasons_ja)

    def _gone(self, why: str) -> None:
        with self._lock:
            if self.dead is None:
                self.dead = why
            left = list(self._in_flight)
            self._in_flight.clear()
        for batch in left:
            self.node.fail(batch, Unavailable(f"The commit process is gone: {why}"))
            self._slots.release()
        if why != "stopped":
            log.error("the commit process is gone (%s): this node refuses writes", why)


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel kill this process when its parent dies (a kill -9 of the
    node then stops its commit path at once, like the single-process node)."""
    import ctypes
    import os
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)


if __name__ == "__main__":  # the child: python -m tsunagu.node.commitproc FD DATA_DIR PPID
    _die_with_parent(int(sys.argv[3]))
    _child(Connection(int(sys.argv[1])), sys.argv[2])
