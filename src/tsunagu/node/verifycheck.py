"""The checks ``tsunagu verify`` makes in worker processes: proposer signatures, strict leaf
decoding and transaction signatures, in batches (see :mod:`tsunagu.node.verify`); and how a
problem is ordered, so that the report names the first one in chain order."""

from __future__ import annotations

import math
import multiprocessing
import sys
from collections import deque
from typing import Any

from tsunagu.ledger.canonical import is_hex
from tsunagu.ledger.keys import verify_signature
from tsunagu.ledger.tx import decode_leaf

BATCH = 1000  # leaves per worker task: pickling and IPC stay a few percent of the work

# Check stages, in the order a block is checked; they order problems within one block.
HEADER, PROPOSER, TX, RESULT, HASHES, LOG = range(6)


class Problem(Exception):
    def __init__(
        self, height: int | None, problem: str, stage: int = HEADER, index: int = 0, sub: int = 0
    ) -> None:
        super().__init__(problem)
        self.height = height
        self.problem = problem
        self.order = (math.inf if height is None else height, stage, index, sub)


# (height, log index of its first transaction, leaves, the signers' public keys or None)
TxBlock = tuple[int, int, list[bytes], list[bytes | None]]
# (height, the proposer's public key, the signature column, the canonical header bytes)
HeaderItem = tuple[int, bytes, Any, bytes]
# (height, stage, index, sub-check, problem): the order of a Problem and its text
Failure = tuple[int, int, int, int, str]


def tx_where(height: int, index: int, log_index: int) -> str:
    return f"block {height}: transaction {index} (log index {log_index})"


def decode_error(leaf: bytes) -> str:
    """Why :func:`decode_leaf` refuses a leaf that cannot even be parsed for the replay."""
    try:
        decode_leaf(leaf)
    except Exception as exc:
        return str(exc)
    return "it is not a transaction"  # not reachable: decode_leaf is stricter


def check_batch(headers: list[HeaderItem], blocks: list[TxBlock]) -> list[Failure]:
    """Runs in a worker: verify proposer signatures, decode leaves strictly and verify their
    signatures; return what failed."""
    failures: list[Failure] = []
    for height, public_key, signature, header in headers:
        # The header bytes were checked to be the header's canonical form, so this is exactly
        # verify_header_signature without canonicalizing the header once more.
        if not (
            is_hex(signature, 128)
            and verify_signature(public_key, bytes.fromhex(signature), header)
        ):
            problem = f"block {height}: the proposer's signature does not verify"
            failures.append((height, PROPOSER, 0, 0, problem))
    # Every leaf of the batch is decoded first, then every signature verified: alternating the
    # two (Python objects, then the curve arithmetic's tables) costs about 12% more CPU time.
    signed: list[tuple[int, int, int, bytes, str, bytes]] = []
    for height, start, leaves, keys in blocks:
        for index, (leaf, public_key) in enumerate(zip(leaves, keys, strict=True)):
            try:
                tx = decode_leaf(leaf)
            except Exception as exc:  # malformed, not canonical, or not JSON at all
                where = tx_where(height, index, start + index)
                failures.append((height, TX, index, 0, f"{where} leaf does not decode: {exc}"))
                continue
            if public_key is not None:
                signed.append((height, start, index, public_key, tx.signature, tx.signing_bytes()))
    for height, start, index, public_key, signature, message in signed:
        # decode_leaf has checked the signature to be 128 lowercase hex characters.
        if not verify_signature(public_key, bytes.fromhex(signature), message):
            where = tx_where(height, index, start + index)
            failures.append((height, TX, index, 1, f"{where} signature does not verify"))
    return failures


class Checks:
    """Runs :func:`check_batch` over batches, in a process pool when there are workers."""

    def __init__(self, workers: int) -> None:
        self._pool = None
        if workers > 0:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            self._pool = multiprocessing.get_context(method).Pool(workers)
        # Bounded so that a replay faster than the pool cannot pile up leaves in memory.
        self._max_pending = 2 * workers + 2
        self._headers: list[HeaderItem] = []
        self._blocks: list[TxBlock] = []
        self._size = 0
        self._pending: deque[Any] = deque()
        self.first: Problem | None = None

    def add_header(self, item: HeaderItem) -> None:
        self._headers.append(item)
        self._size += 1
        if self._size >= BATCH:
            self.flush()

    def add_block(self, item: TxBlock) -> None:
        self._blocks.append(item)
        self._size += len(item[2])
        if self._size >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not (self._headers or self._blocks):
            return
        batch = (self._headers, self._blocks)
        self._headers, self._blocks, self._size = [], [], 0
        if self._pool is None:
            self._record(check_batch(*batch))
            return
        self._pending.append(self._pool.apply_async(check_batch, batch))
        while len(self._pending) > self._max_pending:
            self._record(self._pending.popleft().get())

    def poll(self) -> None:
        while self._pending and self._pending[0].ready():
            self._record(self._pending.popleft().get())

    def drain(self) -> None:
        self.flush()
        while self._pending:
            self._record(self._pending.popleft().get())

    def _record(self, failures: list[Failure]) -> None:
        for height, stage, index, sub, text in failures:
            problem = Problem(height, text, stage, index, sub)
            if self.first is None or problem.order < self.first.order:
                self.first = problem

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
