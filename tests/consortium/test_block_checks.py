"""In process, on real SQLite nodes: a node applies another node's blocks only when every
check passes, and the consortium API works on a solo node too."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainkit import STAFF_KEY, default_contracts, make_node, submit_and_wait
from tsunagu.identity.private import PrivateStore
from tsunagu.ledger.block import sign_header
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx
from tsunagu.node.apply import BadBlock
from tsunagu.node.node import Node
from tsunagu.node.peers import block_digests
from tsunagu.node.wire import decode_block, encode_block
from tsunagu.web.app import create_app


@pytest.fixture
def pair(tmp_path: Path):
    """Node A with three blocks after the genesis, and node B holding only the genesis."""
    a, _ = make_node(tmp_path / "a")
    shutil.copytree(tmp_path / "a" / "data", tmp_path / "b")
    b = Node(tmp_path / "b", default_contracts())
    for n in range(3):
        submit_and_wait(a, STAFF_KEY, "testkv", "set", {"key": f"k{n}", "value": n})
    yield a, b
    a.stop()
    b.stop()


def _blocks(node: Node, start: int = 1):
    return [node.store.block(h) for h in range(start, node.head.height + 1)]


def test_blocks_travel_and_apply_to_the_same_state(pair) -> None:
    a, b = pair
    for block in _blocks(a):
        b.apply_block(decode_block(encode_block(block)))
    assert b.head == a.head
    assert block_digests(b.store.reader(), 0, a.head.height) == block_digests(
        a.store.reader(), 0, a.head.height
    )


def test_bad_blocks_are_refused_and_change_nothing(pair) -> None:
    a, b = pair
    good = _blocks(a)[0]
    header = good.header
    forged_key = SigningKey.generate()
    other_tx = build_tx(header.chain_id, "testkv", "set", {"key": "x", "value": 9}, STAFF_KEY, 1)
    cases = {
        "signature": dataclasses.replace(good, signature=sign_header(header, forged_key)),
        "state_hash": dataclasses.replace(
            good, header=dataclasses.replace(header, state_hash="ab" * 32)
        ),
        "prev_hash": dataclasses.replace(
            good, header=dataclasses.replace(header, prev_hash="cd" * 32)
        ),
        "transactions": dataclasses.replace(good, txs=(other_tx,) * len(good.txs)),
        "proposer": dataclasses.replace(
            good, header=dataclasses.replace(header, proposer="nobody")
        ),
    }
    before = b.head
    for name, bad in cases.items():
        if name not in ("signature", "transactions"):  # a changed header needs a new signature
            bad = dataclasses.replace(bad, signature=sign_header(bad.header, a.key))
        with pytest.raises(BadBlock):
            b.apply_block(bad)
        assert b.head == before, name
    assert b.store.block(1) is None
    b.apply_block(good)  # the real one still applies
    assert b.head.hash == good.hash


def test_a_solo_node_serves_the_consortium_api(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path)
    submit_and_wait(node, STAFF_KEY, "testkv", "set", {"key": "a", "value": 1})
    try:
        http = TestClient(create_app(node, PrivateStore(tmp_path / "data"), []))
        view = http.get("/api/v1/peers").json()
        assert [row["node_id"] for row in view["nodes"]] == [node.node_id]
        assert view["nodes"][0]["agrees"] and view["nodes"][0]["height"] == 1
        blocks = http.get("/api/v1/consortium/blocks", params={"start": 0}).json()["blocks"]
        assert [b["header"]["height"] for b in blocks] == [0, 1]
        digests = http.get("/api/v1/consortium/digests", params={"start": 0, "end": 5}).json()
        assert digests["digests"][2:] == [None] * 4
        bad = http.get("/api/v1/consortium/digests", params={"start": 5, "end": 1})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        page = http.get("/consortium")
        assert page.status_code == 200 and node.node_id in page.text
    finally:
        node.stop()
