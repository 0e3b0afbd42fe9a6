"""A ledger node: admits transactions, turns ordered batches into blocks, serves reads."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tsunagu.contracts import Contract, Member
from tsunagu.errors import Conflict, NotFound, TsunaguError, Unavailable
from tsunagu.ledger import merkle
from tsunagu.ledger.block import (
    ZERO_HASH,
    Block,
    BlockHeader,
    format_timestamp,
    results_hash,
    sign_header,
)
from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import BadSignature, Transaction, build_tx
from tsunagu.node.apply import Built, check_block
from tsunagu.node.executor import MEMBER_NS, SEQ_NS, Executor
from tsunagu.node.orderer import Orderer, Pending, SoloOrderer
from tsunagu.node.store import Head, Store
from tsunagu.node.syncer import Syncer

NODE_KEY_FILE = "node_key.json"
NO_CHAIN_EN = "This node has no chain yet."
NO_CHAIN_JA = "このノードにはまだチェーンがありません。"
CHAIN_DB = "chain.db"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a client is told once its transaction's block is durable."""

    tx_id: str
    height: int
    index: int
    status: str
    code: str | None = None
    reason: str | None = None
    reason_ja: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "tx_id": self.tx_id,
            "height": self.height,
            "index": self.index,
            "status": self.status,
        }
        if self.status != "committed":
            body["code"] = self.code
            body["reason"] = self.reason
        return body


class UnknownSigner(TsunaguError):
    code = "unknown_signer"
    status = 403
    message_en = "The signer's key is not registered on this chain, or has been revoked."
    message_ja = "署名者の鍵はこのチェーンに登録されていないか、失効しています。"


class ReplayedSeq(Conflict):
    code = "replayed_seq"
    message_en = "The sequence number was already used by this signer."
    message_ja = "この署名者はこの通し番号を既に使用しています。"


def load_node_key(data_dir: Path) -> tuple[str, SigningKey]:
    raw = json.loads((data_dir / NODE_KEY_FILE).read_text())
    return raw["node_id"], SigningKey.from_seed(bytes.fromhex(raw["seed"]))


def write_node_key(data_dir: Path, node_id: str, key: SigningKey) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / NODE_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"node_id": node_id, "seed": key.seed.hex()}, fh)


def now_timestamp() -> str:
    return format_timestamp(datetime.now(UTC))


class Node:
    """One member's full copy of the ledger, with its commit path."""

    def __init__(
        self,
        data_dir: Path,
        contracts: Sequence[Contract],
        orderer: Orderer | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.node_id, self.key = load_node_key(self.data_dir)
        self.store = Store(self.data_dir / CHAIN_DB)
        self.executor = Executor(contracts)
        self.orderer = orderer or SoloOrderer()
        # The commit process checks client signatures and sequence numbers itself (see
        # screen): this process then checks only the chain and the signer's registration.
        self._engine_checks = bool(getattr(self.orderer, "checks_signatures", False))
        self._lock = threading.Lock()
        self._pending_seq: dict[str, int] = {}
        # Each signer's committed seq as state has it: filled from the store on first use and
        # updated under the lock after every commit, so admission reads no SQLite row per tx.
        self._committed: dict[str, int] = {}
        self._members: dict[str, Member | None] = {}
        self._admission: queue.SimpleQueue | None = None  # see submit_queued
        self._admission_thread: threading.Thread | None = None
        self._admission_lock = threading.Lock()
        self._admission_closed = False
        self._syncer: Syncer | None = None
        self.head: Head | None = self.store.head(self.store.writer)
        self.frontier = self.store.frontier(self.store.writer)
        self.listeners: list[Callable[[Block], None]] = []
        self._started = False
        self._chain_id = self.store.meta("chain_id", self.store.writer)
        self.consortium: Any = None  # the peer monitor, when the node runs in a consortium

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            raise Unavailable(
                "This node has no chain yet.", "このノードにはまだチェーンがありません。"
            )
        return self._chain_id

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if not self._started:
            self._syncer = Syncer(lambda: self.store.sync(), self.settle, self.fail)
            self.orderer.start(self)
            self._admission_closed = False
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._stop_admission()
            self.orderer.stop()
            if self._syncer is not None:
                self._syncer.stop()  # what the orderer committed is synced and answered
                self._syncer = None
            self._started = False
        self.store.close()

    def _stop_admission(self) -> None:
        with self._admission_lock:
            inbox, thread = self._admission, self._admission_thread
            self._admission = self._admission_thread = None
            self._admission_closed = True
        if inbox is not None and thread is not None:
            inbox.put(None)
            thread.join(timeout=10)
            while True:  # anything queued after the thread stopped is refused, not lost
                try:
                    pending = inbox.get_nowait()
                except queue.Empty:
                    break
                if pending is not None:
                    pending.future.set_exception(Unavailable())

    def create_chain(self, chain_id: str, genesis: Transaction) -> Block:
        """Write block 0 holding the genesis transaction (done once, before start)."""
        if self.head is not None:
            raise Conflict(
                "This node already has a chain.", "このノードには既にチェーンがあります。"
            )
        self._chain_id = chain_id
        try:
            return self._commit([genesis], meta={"chain_id": chain_id}, all_or_nothing=True)
        except BaseException:
            self._chain_id = None
            raise

    # -- admission ---------------------------------------------------------------------

    def member(self, key_id: str) -> Member | None:
        """A registered key as committed state has it (cached until identity changes)."""
        if key_id not in self._members:
            raw = self.store.state().get(MEMBER_NS, key_id)
            self._members[key_id] = None if raw is None else Member.from_state(key_id, raw)
        return self._members[key_id]

    def _committed_seq(self, signer: str) -> int:
        """The signer's last committed seq (call with the lock held)."""
        seq = self._committed.get(signer)
        if seq is None:
            raw = self.store.state().get(SEQ_NS, signer)
            seq = 0 if raw is None else raw["seq"]
            self._committed[signer] = seq
        return seq

    def _check_signed(self, tx: Transaction, verified: bool) -> None:
        """Chain, signer and signature checks: they need no lock, so a client-signed
        transaction's signature is checked without holding up other admissions or the commit
        path (the verification runs without the GIL, in parallel with them)."""
        if tx.chain_id != self.chain_id:
            raise TsunaguError(
                f"chain_id must be {self.chain_id!r}.",
                f"chain_id は {self.chain_id!r} でなければなりません。",
                code="wrong_chain",
            )
        member = self.member(tx.signer)
        if member is None or not member.active:
            raise UnknownSigner()
        if not verified and not tx.verify(member.public_key):
            raise BadSignature()

    def _replayed(self, seq: int, last: int) -> ReplayedSeq:
        return ReplayedSeq(
            f"seq {seq} was already used; use a number above {last}.",
            f"通し番号 {seq} は使用済みです。{last} より大きい番号を使ってください。",
            last_seq=last,
        )

    def screen(
        self, txs: Sequence[Transaction], unchecked: Sequence[bool]
    ) -> tuple[list[Transaction], list[tuple[int, TsunaguError]]]:
        """The admission checks an engine that ``checks_signatures`` runs just before it
        builds a block: the signer and signature of each transaction admitted ``unchecked``,
        then every transaction's sequence number, against committed state and the
        transactions before it. The transactions that pass, and each refusal by position
        (the same errors :meth:`submit` raises)."""
        kept: list[Transaction] = []
        refused: list[tuple[int, TsunaguError]] = []
        seqs: dict[str, int] = {}
        with self._lock:
            for i, tx in enumerate(txs):
                try:
                    if unchecked[i]:
                        self._check_signed(tx, verified=False)
                    last = max(seqs.get(tx.signer, 0), self._committed_seq(tx.signer))
                    if tx.seq <= last:
                        raise self._replayed(tx.seq, last)
                except TsunaguError as error:
                    refused.append((i, error))
                    continue
                seqs[tx.signer] = tx.seq
                kept.append(tx)
        return kept, refused

    def _admit_locked(
        self,
        tx: Transaction,
        verified: bool,
        checked: bool = False,
        pending: Pending | None = None,
    ) -> Pending:
        if not checked:
            self._check_signed(tx, verified)
        if pending is None:
            pending = Pending(tx)
        if self._engine_checks and not verified:
            # A client-signed transaction: the engine checks its signature, then its sequence
            # number, in order. An unverified one must not count as this signer's pending
            # seq here (a forged transaction could then hold up the signer's real ones).
            pending.unchecked = True
            self.orderer.submit(pending)
            return pending
        last = max(self._pending_seq.get(tx.signer, 0), self._committed_seq(tx.signer))
        if tx.seq <= last:
            raise self._replayed(tx.seq, last)
        self.orderer.submit(pending)  # raises when the orderer cannot take writes now
        self._pending_seq[tx.signer] = tx.seq
        return pending

    def submit_queued(self, tx: Transaction, propose_here: bool = False) -> Pending:
        """Like :meth:`submit`, for callers that wait on the future anyway (an event loop):
        the admission checks run on the node's admission thread, in submission order, and a
        refusal (the same errors :meth:`submit` raises) is set on the returned future instead
        of being raised here. The caller's thread then never spends the signature check. With
        an engine that checks signatures itself, what is left (the chain, the signer's
        registration) is quick and runs at once on the caller's thread."""
        if not self._started:
            raise Unavailable()
        pending = Pending(tx, propose_here=propose_here)
        if self._engine_checks:  # nothing slow is left to do here: admit on this thread
            try:
                if self._admission_closed:  # the node is stopping
                    raise Unavailable()
                self.submit(tx, pending)
            except BaseException as exc:
                pending.future.set_exception(exc)
            return pending
        with self._admission_lock:
            if self._admission_closed:  # the node is stopping
                raise Unavailable()
            if self._admission is None:
                self._admission = queue.SimpleQueue()
                self._admission_thread = threading.Thread(
                    target=self._admission_loop,
                    args=(self._admission,),
                    name="admission",
                    daemon=True,
                )
                self._admission_thread.start()
            self._admission.put(pending)
        return pending

    def _admission_loop(self, inbox: queue.SimpleQueue) -> None:
        while True:
            batch = [inbox.get()]
            while True:  # whatever else is already waiting, taken in order
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            if stopping:
                refused = batch[batch.index(None) :]
                batch = batch[: batch.index(None)]
            checked = []
            for pending in batch:
                try:
                    self._check_signed(pending.tx, verified=self._engine_checks)
                except BaseException as exc:
                    pending.future.set_exception(exc)
                else:
                    checked.append(pending)
            if checked:
                with self._lock:
                    for pending in checked:
                        try:
                            self._admit_locked(pending.tx, False, checked=True, pending=pending)
                        except BaseException as exc:
                            pending.future.set_exception(exc)
            if stopping:
                for pending in refused:
                    if pending is not None:
                        pending.future.set_exception(Unavailable())
                return

    def submit(self, tx: Transaction, pending: Pending | None = None) -> Pending:
        """Admit a client-signed transaction (as ``pending``, when given); its future
        resolves to a :class:`Receipt`."""
        if not self._started:
            raise Unavailable()
        self._check_signed(tx, verified=self._engine_checks)
        with self._lock:
            return self._admit_locked(tx, verified=False, checked=True, pending=pending)

    def submit_signed(self, key: SigningKey, app: str, type: str, payload: dict) -> Pending:
        """Sign with a custodial key at the next sequence number and admit."""
        if not self._started:
            raise Unavailable()
        with self._lock:
            seq = max(self._pending_seq.get(key.key_id, 0), self._committed_seq(key.key_id)) + 1
            tx = build_tx(self.chain_id, app, type, payload, key, seq)
            return self._admit_locked(tx, verified=True)

    # -- commit path (the orderer's thread only) ----------------------------------------

    def deliver(self, batch: list[Pending]) -> None:
        """Turn one ordered batch into this node's next block and commit it (what the solo
        orderer calls); its clients are answered once the syncer has made it durable."""
        try:
            built = self.build_block([p.tx for p in batch])
            block = self.write_built(built, durable=False)
        except Exception as exc:  # a failed commit acknowledges nothing
            self.fail(batch, Unavailable(f"The block could not be committed: {exc}"))
            return
        assert self._syncer is not None  # the orderer runs only between start() and stop()
        self._syncer.put(batch, block, built.reasons_ja)

    _deliver = deliver

    def settle_when_durable(
        self, batch: list[Pending], block: Block, reasons_ja: list[str | None] | None = None
    ) -> None:
        """Answer ``batch`` from ``block`` (committed here without waiting for the disk) once
        the syncer has made it durable, off the caller's thread."""
        assert self._syncer is not None  # between start() and stop()
        self._syncer.put(batch, block, reasons_ja)

    def fail(self, batch: list[Pending], error: BaseException) -> None:
        """Answer a batch that was not committed with ``error``."""
        with self._lock:
            for p in batch:
                if self._pending_seq.get(p.tx.signer) == p.tx.seq:
                    del self._pending_seq[p.tx.signer]
        for p in batch:
            if not p.future.done():
                p.future.set_exception(error)

    def settle(
        self, batch: list[Pending], block: Block, reasons_ja: list[str | None] | None = None
    ) -> None:
        """Answer each transaction of ``batch`` with its receipt from ``block``, which holds
        them (in the batch's order, or wherever they are when the block came from etcd)."""
        first = block.header.tree_size - block.header.tx_count
        with self._lock:
            for p in batch:
                if self._pending_seq.get(p.tx.signer) == p.tx.seq:
                    del self._pending_seq[p.tx.signer]
        own = len(batch) == len(block.txs) and all(
            p.tx is tx for p, tx in zip(batch, block.txs, strict=True)
        )
        where: dict[str, int] = {}
        if not own:  # answered by a block built elsewhere: the first copy of a tx counts
            for i, tx in enumerate(block.txs):
                where.setdefault(tx.id, i)
        for n, p in enumerate(batch):
            i = n if own else where.get(p.tx.id)
            if i is None or p.future.done():
                continue
            result = block.results[i]
            p.future.set_result(
                Receipt(
                    p.tx.id,
                    block.height,
                    first + i,
                    result.status,
                    result.code,
                    result.reason,
                    None if reasons_ja is None else reasons_ja[i],
                )
            )

    def _commit(
        self, txs: list[Transaction], meta: dict[str, str] | None = None, all_or_nothing=False
    ) -> Block:
        return self.write_built(self.build_block(txs, meta, all_or_nothing))

    def state_for(self, txs: Sequence[Transaction]) -> Any:
        """Committed state for the commit path to execute ``txs`` on, with what they will
        probably read (see :meth:`~tsunagu.contracts.Contract.prefetch`) already read in a
        few queries rather than one per key: for blocks other nodes made and for catch-up
        runs, which execute while the node's other threads want the interpreter lock (every
        query lets go of it). A node's own batches (:meth:`build_block`) read as they go: the
        in-process benchmark was 7 % slower with the read-ahead there."""
        state = self.store.committed_state()
        state.prefetch(self.executor.prefetch_keys(txs))
        return state

    def build_block(
        self,
        txs: list[Transaction],
        meta: dict[str, str] | None = None,
        all_or_nothing: bool = False,
    ) -> Built:
        """Execute ``txs`` on the current head and sign the block they make; nothing is
        written until :meth:`write_built` (the etcd orderer first wins the height)."""
        head = self.head
        height = 0 if head is None else head.height + 1
        timestamp = now_timestamp()
        # Chain timestamps have one fixed-width form (format_timestamp), so they compare as
        # strings in time order, without parsing two of them for every block.
        if head is not None and timestamp < head.timestamp:
            timestamp = head.timestamp  # never let block time run backwards
        chain_id = self.chain_id
        first_index = self.frontier.size
        execution = self.executor.execute(
            self.store.committed_state(),
            txs,
            chain_id=chain_id,
            height=height,
            timestamp=timestamp,
            first_index=first_index,
            prev_state_hash=ZERO_HASH if head is None else head.state_hash,
            check_signatures=False,
        )
        refused = [r for r in execution.results if r.status != "committed"]
        if all_or_nothing and refused:
            raise TsunaguError(f"refused: {refused[0].code}: {refused[0].reason}")
        frontier, nodes = merkle.append(self.frontier, [merkle.leaf_hash(t.leaf) for t in txs])
        header = BlockHeader(
            chain_id=chain_id,
            height=height,
            prev_hash=ZERO_HASH if head is None else head.hash,
            timestamp=timestamp,
            tx_count=len(txs),
            results_hash=results_hash(execution.results),
            tree_size=frontier.size,
            tree_root=frontier.root().hex(),
            state_hash=execution.state_hash,
            proposer=self.node_id,
        )
        block = Block(header, sign_header(header, self.key), tuple(txs), tuple(execution.results))
        return Built(
            block, first_index, frontier, nodes, execution.writes, execution.reasons_ja, meta
        )

    def write_built(self, built: Built, durable: bool = True) -> Block:
        """Commit a block built on the current head: one SQLite transaction.

        ``durable`` syncs the commit to disk before returning. Otherwise the commit does not
        wait for the disk: a power loss may lose it (never the database's consistency) until
        :meth:`Store.sync` or the next durable commit syncs it along. The solo engine's
        blocks are acknowledged only after the syncer's ``Store.sync``; a block taken from
        etcd or a peer is read again if it was lost."""
        self.write_run([built], durable)
        return built.block

    def write_run(self, builts: Sequence[Built], durable: bool = False) -> None:
        """Commit checked blocks, each built on the one before it and the first on the
        current head, in one SQLite transaction (as :meth:`write_built` does for one block;
        catch-up writes a fetched range this way); then move the head block by block."""
        conn = self.store.writer
        if builts[0].block.header.prev_hash != (ZERO_HASH if self.head is None else self.head.hash):
            raise Conflict("The block no longer extends this node's head.")
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for built in builts:
                    self.store.write_block(
                        built.block, built.first_index, built.nodes, built.writes, built.meta
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.store.checkpointer.committed()
        finally:  # even when BEGIN itself failed (the database was busy)
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")
        for built in builts:
            self._committed_block(built.block, built.frontier, built.writes)

    def apply_block(self, block: Block) -> Block:
        """Check a block another node proposed, as :func:`check_block` does, and commit it.

        Raises :class:`BadBlock` (nothing written) when any check fails."""
        return self.write_built(check_block(self, block), durable=False)

    def _committed_block(
        self, block: Block, frontier: merkle.Frontier, writes: list[tuple[str, str, bytes | None]]
    ) -> None:
        header = block.header
        self.store.state_committed(writes)
        self.head = Head.of(header)
        self.frontier = frontier
        seqs = [(key, value) for ns, key, value in writes if ns == SEQ_NS]
        if seqs:
            with self._lock:
                for key, value in seqs:
                    if value is None:
                        self._committed.pop(key, None)
                    else:
                        self._committed[key] = json.loads(value)["seq"]
        if any(ns == MEMBER_NS for ns, _, _ in writes):
            self._members.clear()
        for listener in self.listeners:
            with contextlib.suppress(Exception):  # a listener must never break the commit path
                listener(block)

    # -- reads -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        head = self.head
        if head is None:
            raise NotFound(
                "This node has no chain yet.", "このノードにはまだチェーンがありません。"
            )
        return {
            "node_id": self.node_id,
            "chain_id": self.chain_id,
            "height": head.height,
            "head_hash": head.hash,
            "tree_size": head.tree_size,
            "root_hash": head.tree_root,
            "state_hash": head.state_hash,
            "timestamp": head.timestamp,
        }

    def signed_tree_head(self) -> dict[str, Any]:
        """The current tree head, signed by this node's key.

        The signature is Ed25519 over the canonical bytes of
        ``{"chain_id", "node_id", "root_hash", "timestamp", "tree_size"}``.
        """
        head = self.head
        if head is None:
            raise NotFound()
        body = {
            "chain_id": self.chain_id,
            "node_id": self.node_id,
            "tree_size": head.tree_size,
            "root_hash": head.tree_root,
            "timestamp": now_timestamp(),
        }
        return {**body, "signature": self.key.sign(canonical(body)).hex()}
