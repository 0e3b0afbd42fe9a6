"""Checking a block another node proposed before applying it.

A node in a consortium takes no block on trust, whether it comes from etcd, from a peer's
block API or from a repair: it re-checks the header against its own head (height, link,
chain, time, counts), the proposer's registration and signature, every transaction's leaf
and signature, and then executes the block itself; the results, the state hash and the log
root it computes must be exactly the header's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tsunagu.errors import TsunaguError
from tsunagu.ledger import merkle
from tsunagu.ledger.block import ZERO_HASH, Block, results_hash, verify_header_signature
from tsunagu.ledger.tx import Transaction

NODE_NS = "identity.node"


class BadBlock(TsunaguError):
    code = "bad_block"
    status = 502
    message_en = "A block from another node failed its checks."
    message_ja = "他のノードからのブロックが検証に失敗しました。"


@dataclass(slots=True)
class Built:
    """A block ready to be written on the current head, with what writing it needs."""

    block: Block
    first_index: int
    frontier: merkle.Frontier
    nodes: list[tuple[int, int, bytes]]
    writes: list[tuple[str, str, bytes | None]]
    reasons_ja: list[str | None]
    meta: dict[str, str] | None = None


def _bad(height: int, what: str) -> BadBlock:
    return BadBlock(f"block {height}: {what}", f"ブロック {height}: {what}", height=height)


def _node_key(value: Any) -> bytes | None:
    try:
        return bytes.fromhex(value["public_key"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Ahead:
    """Signature checks made for a block's transactions before it is executed (by
    :mod:`tsunagu.node.catchup`, in worker processes): transaction ``i``'s signature was checked
    under ``keys[i]`` (``None``: not checked) and ``valid[i]`` says whether it verified."""

    keys: list[bytes | None]
    valid: list[bool]


def check_block(node: Any, block: Block) -> Built:
    """Everything :class:`~tsunagu.node.node.Node` must know before it writes ``block``
    on its head; raises :class:`BadBlock` naming the first failed check."""
    return check_next(node, block, node.head, node.frontier, node.state_for(block.txs))


def _signatures_hold(txs: tuple[Transaction, ...], keys: list[bytes | None], ahead: Ahead) -> bool:
    """Whether every transaction's signature verifies under the key the executor says it must
    verify under (``keys``, from state as it is just before that transaction), using the
    checks made ahead where they were made under that same key."""
    for i, key in enumerate(keys):
        if key is None:
            continue  # no registered key: the executor refuses it before any signature check
        if ahead.keys[i] == key:
            if not ahead.valid[i]:
                return False
        elif not txs[i].verify(key):  # e.g. a key registered earlier in the same run
            return False
    return True


def check_next(
    node: Any,
    block: Block,
    head: Any,
    frontier: merkle.Frontier,
    state: Any,
    ahead: Ahead | None = None,
) -> Built:
    """:func:`check_block` for ``block`` on ``head`` (a :class:`~tsunagu.node.store.Head` or
    ``None``) with the log ``frontier`` and committed ``state`` as they are after ``head``:
    a node checking a run of blocks before it writes any of them passes each block's
    predecessor and the state the run has reached.

    With ``ahead``, the block is executed without checking signatures inside the executor,
    and then every signature is required to verify under the key the executor reports for its
    transaction (from ``ahead`` when it was checked under that key, else here). If one does
    not, the block is executed again with the executor's own checks, so the results are
    always exactly those of :func:`check_block`."""
    header = block.header
    h = header.height
    expected = 0 if head is None else head.height + 1
    if h != expected:
        raise _bad(h, f"expected height {expected}")
    if header.chain_id != node.chain_id:
        raise _bad(h, f"chain_id {header.chain_id!r} is not this chain's")
    if header.prev_hash != (ZERO_HASH if head is None else head.hash):
        raise _bad(h, "prev_hash is not the hash of this node's head")
    if head is not None and header.timestamp < head.timestamp:
        raise _bad(h, "its timestamp is before the previous block's")
    if header.tx_count != len(block.txs) or header.tx_count != len(block.results):
        raise _bad(h, "tx_count does not match its transactions")
    if header.tree_size != frontier.size + header.tx_count:
        raise _bad(h, "tree_size is not the log's size plus tx_count")
    if head is not None:
        public_key = _node_key(state.get(NODE_NS, header.proposer))
        if public_key is None:
            raise _bad(h, f"proposer {header.proposer!r} is not a registered node")
        if not verify_header_signature(header, block.signature, public_key):
            raise _bad(h, "the proposer's signature does not verify")
    txs = list(block.txs)
    context = {
        "chain_id": header.chain_id,
        "height": h,
        "timestamp": header.timestamp,
        "first_index": frontier.size,
        "prev_state_hash": ZERO_HASH if head is None else head.state_hash,
    }
    execution = None
    if ahead is not None:
        keys: list[bytes | None] = []
        execution = node.executor.execute(
            state, txs, check_signatures=False, signer_keys=keys, **context
        )
        if not _signatures_hold(block.txs, keys, ahead):
            execution = None
    if execution is None:
        execution = node.executor.execute(state, txs, check_signatures=True, **context)
    for i, (mine, theirs) in enumerate(zip(execution.results, block.results, strict=True)):
        if mine.to_json() != theirs.to_json():
            raise _bad(h, f"transaction {i}: result {theirs.to_json()} but {mine.to_json()} here")
    if results_hash(execution.results) != header.results_hash:
        raise _bad(h, "results_hash does not match the results")
    if execution.state_hash != header.state_hash:
        raise _bad(h, "state_hash does not match the state computed here")
    leaves = [merkle.leaf_hash(tx.leaf) for tx in block.txs]
    first_index = frontier.size
    frontier, nodes = merkle.append(frontier, leaves)
    if frontier.root().hex() != header.tree_root:
        raise _bad(h, "tree_root does not match the log with its transactions")
    meta = None
    if head is None:  # block 0: its proposer must be one of the nodes the genesis registers
        written = {key: value for ns, key, value in execution.writes if ns == NODE_NS}
        raw = written.get(header.proposer)
        public_key = None if raw is None else _node_key(json.loads(raw))
        if public_key is None:
            raise _bad(h, f"proposer {header.proposer!r} is not a node of the genesis")
        if not verify_header_signature(header, block.signature, public_key):
            raise _bad(h, "the proposer's signature does not verify")
        meta = {"chain_id": header.chain_id}
    return Built(block, first_index, frontier, nodes, execution.writes, execution.reasons_ja, meta)
