"""Build real chains for tests: a real :class:`Node` writing a real ``chain.db`` in a temp dir.

::

    from chainkit import STAFF_KEY, flip_byte, make_node, submit_and_wait

    node, admin_key = make_node(tmp_path)          # data dir: tmp_path / "data"
    receipt = submit_and_wait(node, STAFF_KEY, "testkv", "set", {"key": "a", "value": 1})
    node.stop()
    flip_byte(node.data_dir / "chain.db", "txs", "leaf", "log_index = ?", (1,))  # tamper

The genesis (block 0, chain :data:`CHAIN_ID`) registers one consortium, two organisations (the
municipality ``hachioji`` and the operator ``tsunagu-ops``), the node :data:`NODE_ID` with its
key, and two members: ``admin_key`` (role ``admin``, a fresh key per chain) and
:data:`STAFF_KEY` (role ``staff``). The admin signs the genesis with seq 1.

:class:`TestKV` is a tiny contract for exercising the platform: app ``testkv``, one type ``set``
(``{"key": str, "value": int}``) that needs role ``staff`` (admins always may), rejects a
negative value with code ``negative`` and otherwise writes ``testkv.entry/<key>``.

:func:`flip_byte` damages a stopped node's ``chain.db`` the way bit rot or a careless edit would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

from tsunagu.contracts import Contract, Payload, TxContext
from tsunagu.identity.contract import IdentityContract
from tsunagu.ledger.canonical import sha256
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx
from tsunagu.node.node import Node, Receipt, write_node_key
from tsunagu.node.orderer import Orderer

CHAIN_ID = "test-chain"
NODE_ID = "node-1"
MUNICIPALITY = "hachioji"
OPERATOR = "tsunagu-ops"
# Deterministic so that tests can name it without threading it through every helper.
STAFF_KEY = SigningKey.from_seed(sha256(b"tsunagu chainkit staff key"))
TIMEOUT = 10.0


class SetEntry(Payload):
    key: str
    value: int


class TestKV(Contract):
    """``testkv/set``: staff write an integer under a key; negative values are rejected."""

    __test__ = False  # not a pytest test class, despite the name
    app = "testkv"
    types: ClassVar[dict[str, type[Payload]]] = {"set": SetEntry}

    def on_set(self, ctx: TxContext, p: SetEntry) -> None:
        ctx.require_role("staff")
        if p.value < 0:
            ctx.reject("negative", "The value must not be negative.", "値は0以上にしてください。")
        ctx.put("entry", p.key, {"value": p.value})


def default_contracts() -> list[Contract]:
    return [IdentityContract(), TestKV()]


def genesis_payload(node_key: SigningKey, admin_key: SigningKey) -> dict[str, Any]:
    return {
        "consortium": {"name_ja": "多摩・島しょ試験連合", "name_en": "Tama test consortium"},
        "orgs": [
            {
                "id": MUNICIPALITY,
                "type": "municipality",
                "name_ja": "八王子市",
                "name_en": "Hachioji City",
            },
            {
                "id": OPERATOR,
                "type": "operator",
                "name_ja": "つなぐ運用",
                "name_en": "Tsunagu Operations",
            },
        ],
        "nodes": [{"id": NODE_ID, "public_key": node_key.public_key.hex(), "org": OPERATOR}],
        "members": [
            {
                "public_key": admin_key.public_key.hex(),
                "org": OPERATOR,
                "roles": ["admin"],
                "kind": "user",
            },
            {
                "public_key": STAFF_KEY.public_key.hex(),
                "org": MUNICIPALITY,
                "roles": ["staff"],
                "kind": "user",
            },
        ],
    }


def make_node(
    tmp_path: Path,
    contracts: Sequence[Contract] | None = None,
    *,
    orderer: Orderer | None = None,
) -> tuple[Node, SigningKey]:
    """Create a started node with a fresh chain in ``tmp_path / "data"``.

    ``contracts`` default to :func:`default_contracts`; :class:`IdentityContract` is added when
    missing, since the genesis needs it. ``orderer`` defaults to the node's solo orderer (blocks
    of up to 500 transactions or 50 ms). Stop the node with ``node.stop()``.
    """
    contracts = list(default_contracts() if contracts is None else contracts)
    if not any(c.app == IdentityContract.app for c in contracts):
        contracts.insert(0, IdentityContract())
    data_dir = Path(tmp_path) / "data"
    node_key = SigningKey.generate()
    write_node_key(data_dir, NODE_ID, node_key)
    admin_key = SigningKey.generate()
    node = Node(data_dir, contracts, orderer)
    genesis = build_tx(
        CHAIN_ID, "identity", "genesis", genesis_payload(node_key, admin_key), admin_key, 1
    )
    node.create_chain(CHAIN_ID, genesis)
    node.start()
    return node, admin_key


def submit_and_wait(
    node: Node, key: SigningKey, app: str, type: str, payload: dict[str, Any]
) -> Receipt:
    """Sign with ``key`` at its next seq, submit, and wait for the block (one block per call)."""
    return node.submit_signed(key, app, type, payload).future.result(timeout=TIMEOUT)


def submit_all(
    node: Node, txs: Iterable[tuple[SigningKey, str, str, dict[str, Any]]]
) -> list[Receipt]:
    """Submit ``(key, app, type, payload)`` items without waiting in between, so that the
    orderer batches them into blocks; return their receipts in order."""
    pending = [node.submit_signed(key, app, type, payload) for key, app, type, payload in txs]
    return [p.future.result(timeout=TIMEOUT + len(pending) / 100) for p in pending]


def flip_byte(
    db: Path, table: str, column: str, where: str, params: tuple[Any, ...] = (), offset: int = -1
) -> None:
    """Flip the lowest bit of one byte of the BLOB or TEXT value in ``column`` of the one row of
    ``table`` matching ``where`` (the middle byte unless ``offset`` says), keeping its SQLite
    type. Use it on a stopped node's ``chain.db``."""
    with closing(sqlite3.connect(db)) as conn:
        ((value,),) = conn.execute(f"SELECT {column} FROM {table} WHERE {where}", params).fetchall()
        raw = value.encode() if isinstance(value, str) else bytes(value)
        at = len(raw) // 2 if offset < 0 else offset
        raw = raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]
        new = raw.decode() if isinstance(value, str) else raw
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (new, *params))
        conn.commit()
