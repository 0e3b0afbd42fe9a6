"""Build benchmark chains: a real node with a genesis that registers many signers.

The genesis registers one municipality (``hachioji``) and the operator, the node's key, and
``signers`` member keys with role ``staff`` in the municipality, so each of them may submit
``documents/register``: the real application contract, with its state reads (organisation,
existing document) and its write (the document record).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts src/ on sys.path)

from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import Transaction, build_tx

CHAIN_ID = "tsunagu-bench"
NODE_ID = "bench-node-1"
MUNICIPALITY = "hachioji"
OPERATOR = "tsunagu-ops"


def signer_keys(count: int, tag: str = "bench") -> list[SigningKey]:
    """Deterministic keys, so that worker processes can rebuild them from an index."""
    return [
        SigningKey.from_seed(hashlib.sha256(f"{tag} signer {i}".encode()).digest())
        for i in range(count)
    ]


def admin_key() -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(b"bench admin").digest())


def node_key() -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(b"bench node").digest())


GENESIS_SIGNERS = 200  # a genesis transaction is at most 64 KiB; the rest join by member.add


def genesis_payload(signers: list[SigningKey]) -> dict[str, Any]:
    members = [
        {"public_key": admin_key().public_key.hex(), "org": OPERATOR, "roles": ["admin"]},
    ]
    members += [
        {"public_key": k.public_key.hex(), "org": MUNICIPALITY, "roles": ["staff"]} for k in signers
    ]
    return {
        "consortium": {"name_ja": "ベンチマーク協議会", "name_en": "Benchmark consortium"},
        "orgs": [
            {
                "id": MUNICIPALITY,
                "type": "municipality",
                "name_ja": "八王子市",
                "name_en": "Hachioji",
            },
            {"id": OPERATOR, "type": "operator", "name_ja": "運用", "name_en": "Operations"},
        ],
        "nodes": [{"id": NODE_ID, "public_key": node_key().public_key.hex(), "org": OPERATOR}],
        "members": members,
    }


def contracts():
    from tsunagu.platform import discover_apps, platform_contracts

    return platform_contracts(discover_apps())


def create_chain(data_dir: Path, signers: int) -> None:
    """A fresh data folder holding block 0 (the genesis); the node is closed again."""
    from tsunagu.node.node import Node, write_node_key

    if data_dir.exists():
        shutil.rmtree(data_dir)
    write_node_key(data_dir, NODE_ID, node_key())
    node = Node(data_dir, contracts())
    keys = signer_keys(signers)
    try:
        genesis = build_tx(
            CHAIN_ID, "identity", "genesis", genesis_payload(keys[:GENESIS_SIGNERS]), admin_key(), 1
        )
        node.create_chain(CHAIN_ID, genesis)
        node.start()
        pending = [
            node.submit_signed(
                admin_key(),
                "identity",
                "member.add",
                {"public_key": k.public_key.hex(), "org": MUNICIPALITY, "roles": ["staff"]},
            )
            for k in keys[GENESIS_SIGNERS:]
        ]
        for p in pending:
            receipt = p.future.result(60)
            assert receipt.status == "committed", receipt
    finally:
        node.stop()


def doc_payload(n: int, tag: str) -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(f"{tag} document {n}".encode()).hexdigest(),
        "title": f"令和7年度 第{n}号 お知らせ (benchmark document {n})",
        "category": "notice",
    }


def _sign_range(args: tuple[int, int, int, int, str]) -> list[dict[str, Any]]:
    start, stop, signers, first_seq, tag = args
    keys = signer_keys(signers)
    out = []
    for n in range(start, stop):
        key = keys[n % signers]
        seq = first_seq + n // signers
        out.append(
            build_tx(CHAIN_ID, "documents", "register", doc_payload(n, tag), key, seq).to_json()
        )
    return out


def presign(
    count: int,
    signers: int,
    *,
    start: int = 0,
    first_seq: int = 1,
    tag: str = "run",
    processes: int | None = None,
) -> list[dict[str, Any]]:
    """``count`` signed ``documents/register`` envelopes (JSON objects), round-robin over the
    signers with consecutive sequence numbers, signed in worker processes.

    Transaction ``n`` (from ``start``) is signer ``n % signers``'s, with seq
    ``first_seq + n // signers``: so ``presign(a, s)`` then ``presign(b, s, start=a)`` continue
    one sequence."""
    processes = processes or os.cpu_count() or 1
    step = max(1, -(-count // (processes * 4)))
    end = start + count
    ranges = [(s, min(end, s + step), signers, first_seq, tag) for s in range(start, end, step)]
    with ProcessPoolExecutor(processes) as pool:
        chunks = list(pool.map(_sign_range, ranges))
    return [body for chunk in chunks for body in chunk]


def decode_all(bodies: list[dict[str, Any]]) -> list[Transaction]:
    from tsunagu.ledger.tx import decode_tx

    return [decode_tx(b) for b in bodies]
