"""The solo engine with its commit path in a child process (``serve --commit-process``):
same blocks and receipts as in-process, a chain that verifies, and a dead child answered
with 503 instead of hanging writes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from chainkit import STAFF_KEY, make_node
from tsunagu.errors import Unavailable
from tsunagu.ledger.canonical import sha256
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import BadSignature, build_tx, decode_tx
from tsunagu.node.commitproc import ProcessOrderer, platform_contracts
from tsunagu.node.node import Node, ReplayedSeq
from tsunagu.node.verify import verify_chain

TIMEOUT = 30.0


def _register(n: int) -> dict:
    digest = sha256(f"commit process {n}".encode()).hex()
    return {"sha256": digest, "title": f"文書 {n}", "category": "other"}


@pytest.fixture
def node(tmp_path: Path):
    """A chain with the platform's contracts, reopened with a commit process."""
    first, _ = make_node(tmp_path, platform_contracts())
    first.stop()
    node = Node(first.data_dir, platform_contracts(), ProcessOrderer(max_txs=64, max_wait=0.005))
    node.start()
    yield node
    node.stop()


def test_blocks_from_the_child_are_durable_verified_and_answered(node: Node):
    other = SigningKey.generate()  # not a member: refused at admission, nothing written
    custodial = [
        node.submit_signed(STAFF_KEY, "documents", "register", _register(n)) for n in range(150)
    ]
    receipts = [p.future.result(TIMEOUT) for p in custodial]
    assert {r.status for r in receipts} == {"committed"}
    assert len({r.height for r in receipts}) > 1  # several blocks, in order
    assert [r.index for r in receipts] == sorted(r.index for r in receipts)

    # The same document again: the contract refuses it inside the block, with its reason.
    again = node.submit_signed(STAFF_KEY, "documents", "register", _register(3))
    refused = again.future.result(TIMEOUT)
    assert refused.status == "rejected" and refused.code == "already_registered"
    assert refused.reason_ja == "このSHA-256の文書は既に登録されています。"

    # A client-signed transaction through the queued admission path.
    seq = node._committed_seq(STAFF_KEY.key_id) + 1
    signed = build_tx(node.chain_id, "documents", "register", _register(999), STAFF_KEY, seq)
    assert node.submit_queued(signed).future.result(TIMEOUT).status == "committed"
    stranger = build_tx(node.chain_id, "documents", "register", _register(1000), other, 1)
    with pytest.raises(Exception, match="not registered"):
        node.submit_queued(stranger).future.result(TIMEOUT)

    # Client-signed with a bad signature, among good ones: refused at admission, never in a
    # block; the good ones commit.
    base = node._committed_seq(STAFF_KEY.key_id)
    good = [
        build_tx(node.chain_id, "documents", "register", _register(2000 + n), STAFF_KEY, base + n)
        for n in (1, 2)
    ]
    forged = decode_tx(dict(good[1].to_json(), seq=base + 3))  # the signature is seq 2's
    tree_before = node.head.tree_size
    pendings = [node.submit_queued(t) for t in (good[0], good[1], forged)]
    assert [p.future.result(TIMEOUT).status for p in pendings[:2]] == ["committed"] * 2
    with pytest.raises(BadSignature):
        pendings[2].future.result(TIMEOUT)
    assert node.head.tree_size == tree_before + 2
    assert node.store.tx(forged.id) is None

    # The parent's view is the child's chain: head, state and the stored blocks agree.
    head = node.head
    assert head is not None and node.store.head() == head
    doc = node.store.state().get("documents.doc", _register(999)["sha256"])
    assert doc is not None and doc["title"] == "文書 999"
    node.stop()
    report = verify_chain(node.data_dir, platform_contracts(), workers=0)
    assert report.ok, report
    assert report.transactions == head.tree_size and report.blocks == head.height + 1


def test_a_dead_commit_process_fails_writes_fast_and_keeps_reads(node: Node):
    ok = node.submit_signed(STAFF_KEY, "documents", "register", _register(1))
    assert ok.future.result(TIMEOUT).status == "committed"
    child = node.orderer._process
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + TIMEOUT
    while node.orderer.dead is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.orderer.dead is not None
    began = time.monotonic()
    with pytest.raises(Unavailable):  # refused at once, or answered 503 by its future
        node.submit_signed(STAFF_KEY, "documents", "register", _register(2)).future.result(TIMEOUT)
    assert time.monotonic() - began < 5
    assert node.status()["height"] == node.head.height  # reads still answer


def test_the_child_checks_signatures_and_sequence_numbers_in_order(node: Node):
    """Client signatures and sequence numbers are checked in the child, just before the
    block is built: a refusal carries the same error as at admission, leaves the block
    without the transaction, and a forged transaction never counts as its signer's seq."""
    assert node.orderer.checks_signatures
    base = node._committed_seq(STAFF_KEY.key_id)

    def signed(n: int, seq: int):
        return build_tx(node.chain_id, "documents", "register", _register(n), STAFF_KEY, seq)

    # Alone in its batch, a forged transaction with a far-ahead seq: refused, and no block.
    real = signed(3000, base + 1)
    forged = decode_tx(dict(real.to_json(), seq=base + 100))
    height = node.head.height
    with pytest.raises(BadSignature):
        node.submit_queued(forged).future.result(TIMEOUT)
    assert node.head.height == height

    # It did not take the signer's seq: the real transaction at base + 1 commits, and so
    # does a custodial one, at the seq after it.
    assert node.submit_queued(real).future.result(TIMEOUT).status == "committed"
    custodial = node.submit_signed(STAFF_KEY, "documents", "register", _register(3001))
    assert custodial.future.result(TIMEOUT).status == "committed"
    assert node._committed_seq(STAFF_KEY.key_id) == base + 2

    # A replay, after its block and while the first copy is still in flight, is refused
    # with the signer's last seq (409), and only the first copy is in the chain.
    with pytest.raises(ReplayedSeq) as replayed:
        node.submit_queued(real).future.result(TIMEOUT)
    assert replayed.value.status == 409 and replayed.value.extra == {"last_seq": base + 2}
    twice = signed(3002, base + 3)
    first, second = node.submit_queued(twice), node.submit_queued(twice)
    assert first.future.result(TIMEOUT).status == "committed"
    with pytest.raises(ReplayedSeq):
        second.future.result(TIMEOUT)
    assert node.store.tx(twice.id) is not None and node.store.tx(forged.id) is None
    assert node.head.tree_size == node.store.head().tree_size


def test_refusals_from_the_child_reach_http_clients_as_problems(tmp_path: Path):
    """Over HTTP, on the protocol ``tsunagu serve`` runs: a forged and a replayed
    transaction refused in the commit process get the same problem+json answers (in the
    client's language) as when the node's process refused them."""
    import httpx

    from democache import demo_copy
    from liveserver import serving
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    demo, private = demo_copy(tmp_path / "node", apps, "pw")
    demo.stop()
    node = Node(demo.data_dir, platform_contracts(), ProcessOrderer(max_wait=0.005))
    node.start()
    key = private.signing_key(private.user("staff1"))
    try:
        with serving(create_app(node, private, apps)) as port:
            seq = node._committed_seq(key.key_id) + 1
            good = build_tx(node.chain_id, "documents", "register", _register(5000), key, seq)
            forged = decode_tx(dict(good.to_json(), seq=seq + 1))
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as http:
                ok = http.post("/api/v1/tx", json=good.to_json())
                assert ok.status_code == 201 and ok.json()["tx_id"] == good.id
                bad = http.post(
                    "/api/v1/tx", json=forged.to_json(), headers={"Accept-Language": "ja"}
                )
                assert bad.status_code == 400
                assert bad.headers["content-type"].startswith("application/problem+json")
                assert bad.json()["code"] == "bad_signature"
                assert bad.json()["detail"] == "取引の署名を検証できませんでした。"
                again = http.post("/api/v1/tx", json=good.to_json())
                assert again.status_code == 409
                assert again.json()["code"] == "replayed_seq"
                assert again.json()["last_seq"] == seq
        assert node.store.tx(forged.id) is None
    finally:
        node.stop()
