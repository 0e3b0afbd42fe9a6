"""Blocks as they travel between nodes: through etcd and through the peers' block API.

A block travels as compact JSON holding its header, the proposer's signature, the exact leaf
bytes of its transactions (base64) and their results. Nothing in it is trusted: the receiving
node decodes every leaf strictly and re-checks the whole block before it applies it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from tsunagu.ledger.block import Block, BlockHeader, TxResult
from tsunagu.ledger.tx import Transaction, decode_leaf


def block_to_wire(block: Block) -> dict[str, Any]:
    return {
        "header": block.header.to_json(),
        "signature": block.signature,
        "leaves": [base64.b64encode(tx.leaf).decode() for tx in block.txs],
        "results": [r.to_json() for r in block.results],
    }


def encode_block(block: Block) -> bytes:
    return json.dumps(block_to_wire(block), ensure_ascii=False, separators=(",", ":")).encode()


def block_from_wire(raw: Any, decode: Callable[[bytes], Transaction] = decode_leaf) -> Block:
    """Rebuild a block; raises ``ValueError`` (or a decoding error) on anything malformed.
    ``decode`` turns each leaf into its transaction (strictly, by default)."""
    if not isinstance(raw, dict):
        raise ValueError("a block must be a JSON object")
    header = BlockHeader.from_json(raw["header"])
    leaves = raw["leaves"]
    results = raw["results"]
    if not isinstance(leaves, list) or not isinstance(results, list):
        raise ValueError("leaves and results must be lists")
    if len(leaves) != header.tx_count or len(results) != header.tx_count:
        raise ValueError("the block does not hold tx_count transactions and results")
    if not isinstance(raw["signature"], str):
        raise ValueError("the signature must be a string")
    txs = tuple(decode(base64.b64decode(leaf, validate=True)) for leaf in leaves)
    return Block(header, raw["signature"], txs, tuple(TxResult.from_json(r) for r in results))


def decode_block(data: bytes) -> Block:
    return block_from_wire(json.loads(data))
