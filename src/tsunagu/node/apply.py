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


def check_block(node: Any, block: Block) -> Built:
    """Everything :class:`~tsunagu.node.node.Node` must know before it writes ``block``
    on its head; raises :class:`BadBlock` naming the first failed check."""
    header = block.header
    head = node.head
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
    if header.tree_size != node.frontier.size + header.tx_count:
        raise _bad(h, "tree_size is not the log's size plus tx_count")
    state = node.store.committed_state()
    if head is not None:
        public_key = _node_key(state.get(NODE_NS, header.proposer))
        if public_key is None:
            raise _bad(h, f"proposer {header.proposer!r} is not a registered node")
        if not verify_header_signature(header, block.signature, public_key):
            raise _bad(h, "the proposer's signature does not verify")
    execution = node.executor.execute(
        state,
        list(block.txs),
        chain_id=header.chain_id,
        height=h,
        timestamp=header.timestamp,
        first_index=node.frontier.size,
        prev_state_hash=ZERO_HASH if head is None else head.state_hash,
        check_signatures=True,
    )
    for i, (mine, theirs) in enumerate(zip(execution.results, block.results, strict=True)):
        if mine.to_json() != theirs.to_json():
            raise _bad(h, f"transaction {i}: result {theirs.to_json()} but {mine.to_json()} here")
    if results_hash(execution.results) != header.results_hash:
        raise _bad(h, "results_hash does not match the results")
    if execution.state_hash != header.state_hash:
        raise _bad(h, "state_hash does not match the state computed here")
    leaves = [merkle.leaf_hash(tx.leaf) for tx in block.txs]
    frontier, nodes = merkle.append(node.frontier, leaves)
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
    return Built(
        block, node.frontier.size, frontier, nodes, execution.writes, execution.reasons_ja, meta
    )
