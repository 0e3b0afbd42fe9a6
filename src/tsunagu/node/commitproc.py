"""The solo engine with its commit path in a child process (``tsunagu serve --commit-process``).

A node's web server and its commit path share one interpreter lock when they run in one
process: the event loop that parses requests and the thread that executes and writes blocks
take turns, and a 2-core machine leaves a core idle. With a commit process, the node's own
process keeps HTTP, the strict decoding of every transaction, the chain and signer checks,
reads, listeners and answers, and a child process opened on the same data folder checks
client signatures and sequence numbers, cuts, executes and writes the blocks and makes them
durable.

:class:`ProcessOrderer` is the node's orderer: it streams every admitted transaction's leaf
to the child the moment it is admitted, in admission order, which is the order of the
chain. The child cuts a block whenever it is free to build one: from everything that has
arrived, at most ``max_txs`` transactions, waiting at most until ``max_wait`` after the
first one arrived (as :class:`~tsunagu.node.orderer.SoloOrderer` does). It first runs the
admission checks the node's process left to it (``Node.screen``: the signature of each
client-signed transaction, then every sequence number, in order): a transaction they refuse
is left out of the block and answered with the same error as at admission. It then runs the
same ``build_block`` and ``write_built`` code as any node on its own SQLite connection, and
answers each batch, once its block is durable, with the refusals and the block's header,
signature and results. The parent takes that many transactions from the ones it sent,
checks that the header extends its head and that the log root is the one its own copy of
the log frontier gives, then updates its head and answers the clients.

Why the work is split this way (``bench/commit_http.py``, alternating runs): with the
signature checks in the node's process, each of them gave the interpreter lock back to a
busy event loop, and a transaction spent about 13 ms in admission; cutting in the child
means a batch is never fixed while the child is still busy with an earlier one, so
everything that arrived meanwhile joins the next block.

If the child dies, the transactions it had are answered 503 (they may or may not be in the
chain, like any write that timed out) and the node refuses writes until it is restarted.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
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

READY_TIMEOUT = 120.0  # seconds for the child to open the node
# One admitted transaction on the wire to the child: its arrival (CLOCK_MONOTONIC, which
# both processes share), whether it is unchecked (Pending.unchecked), then its leaf bytes.
# An empty message asks the child to stop.
_HEAD = struct.Struct("<d?")


def platform_contracts() -> list[Any]:
    """The contracts of every installed application (what ``tsunagu serve`` runs)."""
    from tsunagu.platform import discover_apps
    from tsunagu.platform import platform_contracts as contracts_of

    return contracts_of(discover_apps())


class _Inbox:
    """The child's side of the stream: admitted transactions not yet in a block."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.waiting: collections.deque[tuple[float, bool, bytes]] = collections.deque()
        self.stopping = False

    def _take(self) -> None:
        message = self.conn.recv_bytes()
        if not message:
            self.stopping = True
        else:
            arrived, unchecked = _HEAD.unpack_from(message)
            self.waiting.append((arrived, unchecked, message[_HEAD.size :]))

    def next_batch(self, max_txs: int, max_wait: float) -> list[tuple[float, bool, bytes]]:
        """The next block's transactions (arrival, unchecked, leaf): waits for a first one,
        then takes what has arrived, up to ``max_txs``, waiting until ``max_wait`` after the
        first one arrived for more. Empty once the parent asked to stop and nothing is left."""
        if not self.waiting and not self.stopping:
            self._take()
        while not self.stopping and len(self.waiting) < max_txs and self.conn.poll(0):
            self._take()
        while not self.stopping and self.waiting and len(self.waiting) < max_txs:
            remaining = self.waiting[0][0] + max_wait - time.monotonic()
            if remaining <= 0 or not self.conn.poll(remaining):
                break
            self._take()
        count = min(max_txs, len(self.waiting))
        return [self.waiting.popleft() for _ in range(count)]


def _child(conn: Connection, data_dir: str, max_txs: int, max_wait: float) -> None:
    """The child's main loop: cut, build and write each block, answer once durable."""
    from tsunagu.node.executor import MEMBER_NS, SEQ_NS
    from tsunagu.node.node import Node
    from tsunagu.node.syncer import Syncer

    node = Node(Path(data_dir), platform_contracts())
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    # Every batch is answered in order, once durable, with one message:
    # ("done", count, refused, error, header, signature, results, reasons_ja, writes), where
    # ``count`` is how many transactions the parent sent for it, ``refused`` the positions
    # the admission checks refused, with their errors, and ``error`` why the others were not
    # committed (then, or when every one was refused, there is no header).
    def settle(batch: Any, block: Block | None, extra: Any) -> None:
        count, refused = batch
        if block is None:
            send(("done", count, refused, extra, None, None, None, None, None))
            return
        reasons_ja, writes = extra
        results = [r.to_json() for r in block.results]
        header = block.header.canonical()
        send(("done", count, refused, None, header, block.signature, results, reasons_ja, writes))

    def fail(batch: Any, error: BaseException) -> None:
        count, refused = batch
        send(("done", count, refused, f"The block could not be made durable: {error}", None))

    syncer = Syncer(node.store.sync, settle, fail)
    send(("ready", node.head.height if node.head else -1))
    inbox = _Inbox(conn)
    try:
        while batch := inbox.next_batch(max_txs, max_wait):
            refused: list[tuple[int, BaseException]] = []
            try:
                # The parent decoded every leaf strictly at admission: parse them only.
                txs = [Transaction.from_checked_leaf(leaf) for _, _, leaf in batch]
                txs, refused = node.screen(txs, [unchecked for _, unchecked, _ in batch])
                if not txs:  # nothing to build: answer the refusals, in order
                    syncer.put((len(batch), refused), None, None)
                    continue
                built = node.build_block(txs)
                block = node.write_built(built, durable=False)
            except Exception as exc:
                error = f"The block could not be committed: {exc}"
                syncer.put((len(batch), refused), None, error)
                continue
            writes = [w for w in built.writes if w[0] in (SEQ_NS, MEMBER_NS)]
            syncer.put((len(batch), refused), block, (built.reasons_ja, writes))
    except (EOFError, OSError):  # the parent is gone
        pass
    finally:
        syncer.stop()
        node.store.close()
        with contextlib.suppress(OSError):
            send(("bye",))


class ProcessOrderer:
    """The parent's side: an orderer that streams admitted transactions to the child and
    applies the blocks it answers. The child checks client signatures and sequence numbers
    (``checks_signatures``): the verification costs the node's process no CPU and no
    interpreter lock, and runs just before the block is built, on the child's own state."""

    checks_signatures = True

    def __init__(self, max_txs: int = 500, max_wait: float = 0.05) -> None:
        self.max_txs = max_txs
        self.max_wait = max_wait
        self._conn: Connection | None = None
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._sent: collections.deque[Pending] = collections.deque()  # not yet answered
        self._lock = threading.Lock()
        self.dead: str | None = None  # why the child is gone, once it is
        self.node: Any = None

    def start(self, node: Any) -> None:
        self.node = node
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-m", __name__, str(theirs.fileno()), str(node.data_dir)]
        self._process = subprocess.Popen(
            [*argv, str(os.getpid()), str(self.max_txs), repr(self.max_wait)],
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

    def submit(self, pending: Pending) -> None:
        """Send one admitted transaction to the child (the node calls this in admission
        order, holding its lock); raises :class:`Unavailable` once the child is gone."""
        with self._lock:
            if self.dead is not None or self._conn is None:
                raise Unavailable(f"The commit process is gone: {self.dead}")
            try:
                head = _HEAD.pack(pending.arrived, pending.unchecked)
                self._conn.send_bytes(head + pending.tx.leaf)
            except OSError as exc:
                raise Unavailable(f"The commit process is gone: {exc}") from exc
            self._sent.append(pending)

    def stop(self) -> None:
        """After admission stopped: the child commits what it has, then exits."""
        if self._conn is None:
            return
        with self._lock, contextlib.suppress(OSError):
            self._conn.send_bytes(b"")
        if self._reader is not None:
            self._reader.join(timeout=30)
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._conn.close()
        self._conn = None

    def _take(self, count: int) -> list[Pending]:
        with self._lock:
            if count > len(self._sent):
                raise RuntimeError(f"the commit process answered {count} transactions")
            return [self._sent.popleft() for _ in range(count)]

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
            batch: list[Pending] = []
            try:
                _, count, refused, error, header_bytes, *block = message
                batch = self._take(count)
                for i, refusal in refused:
                    self.node.fail([batch[i]], refusal)
                gone = {i for i, _ in refused}
                batch = [p for i, p in enumerate(batch) if i not in gone]
                if error is not None:
                    self.node.fail(batch, Unavailable(error))
                elif header_bytes is not None:
                    header = BlockHeader.from_json(loads_json(header_bytes))
                    self._committed(batch, header, *block)
                elif batch:
                    raise RuntimeError("the commit process answered no block")
            except Exception as exc:  # the child's block does not fit this node's head
                log.exception("the commit process's block was not taken")
                self.node.fail(batch, Unavailable(str(exc)))
                self._gone(str(exc))
                return

    def _committed(
        self,
        batch: list[Pending],
        header: BlockHeader,
        signature: str,
        results: list[dict[str, Any]],
        reasons_ja: list[str | None],
        writes: list[tuple[str, str, bytes | None]],
    ) -> None:
        node = self.node
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
            left = list(self._sent)
            self._sent.clear()
        if left:
            self.node.fail(left, Unavailable(f"The commit process is gone: {why}"))
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


if __name__ == "__main__":
    # the child: python -m tsunagu.node.commitproc FD DATA_DIR PPID MAX_TXS MAX_WAIT
    _die_with_parent(int(sys.argv[3]))
    _child(Connection(int(sys.argv[1])), sys.argv[2], int(sys.argv[4]), float(sys.argv[5]))
