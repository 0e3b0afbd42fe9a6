"""The embedded node: block cutting, rejected transactions, admission, durability."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tsunagu.demo import CHAIN_ID, create_demo
from tsunagu.identity.private import PrivateStore
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import BadSignature, build_tx, decode_tx
from tsunagu.node.node import Node, ReplayedSeq, UnknownSigner
from tsunagu.node.orderer import SoloOrderer
from tsunagu.platform import discover_apps, platform_contracts


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("node") / "data"
    node, _ = create_demo(data, None, discover_apps(), "pw")
    node.stop()
    return data


def _open(data: Path, max_txs: int = 500, max_wait: float = 0.05) -> tuple[Node, PrivateStore]:
    apps = discover_apps()
    node = Node(data, platform_contracts(apps), SoloOrderer(max_txs, max_wait))
    node.start()
    return node, PrivateStore(data)


def _doc(n: int, tag: str) -> dict:
    return {"sha256": f"{tag}{n:062x}"[:64], "title": f"doc {n}", "category": "notice"}


def test_blocks_are_cut_by_count(demo_dir: Path) -> None:
    node, private = _open(demo_dir, max_txs=10, max_wait=1.0)
    try:
        key = private.signing_key(private.user("staff1"))
        start_height = node.head.height
        pendings = [
            node.submit_signed(key, "documents", "register", _doc(i, "a1")) for i in range(20)
        ]
        receipts = [p.future.result(timeout=10) for p in pendings]
        heights = sorted({r.height for r in receipts})
        assert heights == [start_height + 1, start_height + 2]
        for height in heights:
            assert node.store.block(height).header.tx_count == 10
        assert [r.index for r in receipts] == list(range(receipts[0].index, receipts[0].index + 20))
    finally:
        node.stop()


def test_a_lone_transaction_is_cut_after_the_wait(demo_dir: Path) -> None:
    node, private = _open(demo_dir, max_txs=500, max_wait=0.3)
    try:
        key = private.signing_key(private.user("staff1"))
        began = time.monotonic()
        receipt = node.submit_signed(key, "documents", "register", _doc(1, "b2")).future.result(5)
        waited = time.monotonic() - began
        assert receipt.status == "committed"
        assert node.store.block(receipt.height).header.tx_count == 1
        assert waited >= 0.25
    finally:
        node.stop()


def test_a_rejected_transaction_stays_in_its_block_and_changes_nothing(demo_dir: Path) -> None:
    node, private = _open(demo_dir)
    try:
        staff = private.signing_key(private.user("staff1"))
        resident = private.signing_key(private.user("resident1"))
        before = dict(node.store.state().scan("documents.doc"))
        ok = node.submit_signed(staff, "documents", "register", _doc(7, "c3"))
        dup = node.submit_signed(staff, "documents", "register", _doc(7, "c3"))
        bad = node.submit_signed(resident, "documents", "register", _doc(8, "c3"))
        ok, dup, bad = (p.future.result(5) for p in (ok, dup, bad))
        assert ok.status == "committed"
        assert (dup.status, dup.code) == ("rejected", "already_registered")
        assert (bad.status, bad.code) == ("rejected", "forbidden_role")
        assert dup.reason_ja and "既に" in dup.reason_ja
        block = node.store.block(dup.height)
        rejected = [r for r in block.results if r.status == "rejected"]
        assert {r.code for r in rejected} >= {"already_registered", "forbidden_role"}
        after = dict(node.store.state().scan("documents.doc"))
        assert set(after) - set(before) == {_doc(7, "c3")["sha256"]}
        stored = node.store.tx(dup.tx_id)
        assert stored.result.status == "rejected" and stored.log_index == dup.index
    finally:
        node.stop()


def test_admission_refuses_bad_signatures_replays_and_strangers(demo_dir: Path) -> None:
    node, private = _open(demo_dir)
    try:
        staff = private.signing_key(private.user("staff1"))
        receipt = node.submit_signed(staff, "documents", "register", _doc(1, "d4")).future.result(5)
        stored = node.store.tx(receipt.tx_id).tx
        with pytest.raises(ReplayedSeq):
            node.submit(stored)
        forged = dict(stored.to_json(), seq=stored.seq + 100)
        with pytest.raises(BadSignature):
            node.submit(decode_tx(forged))
        stranger = SigningKey.generate()
        with pytest.raises(UnknownSigner):
            node.submit(build_tx(CHAIN_ID, "documents", "register", _doc(2, "d4"), stranger, 1))
        assert node.store.tx(build_tx(CHAIN_ID, "x", "y", {}, stranger, 1).id) is None
    finally:
        node.stop()


def test_committed_blocks_survive_a_reopen(demo_dir: Path) -> None:
    node, private = _open(demo_dir)
    key = private.signing_key(private.user("staff2"))
    receipt = node.submit_signed(key, "documents", "register", _doc(3, "e5")).future.result(5)
    head = node.status()
    node.stop()
    node, _ = _open(demo_dir)
    try:
        assert node.status()["head_hash"] == head["head_hash"]
        assert node.store.tx(receipt.tx_id).result.status == "committed"
        # The custodial sequence continues after the reopen instead of replaying.
        again = node.submit_signed(key, "documents", "register", _doc(4, "e5")).future.result(5)
        assert again.status == "committed"
    finally:
        node.stop()


def test_a_block_is_acknowledged_only_after_the_wal_sync_that_covers_it(tmp_path: Path):
    """Blocks commit without waiting for the disk; the syncer's fsync of the WAL comes
    before any receipt of the blocks it covers (the real store, its sync observed)."""
    from chainkit import STAFF_KEY, make_node

    node, _ = make_node(tmp_path, orderer=SoloOrderer(max_txs=32))  # several blocks
    synced: list[int] = []
    real_sync = node.store.sync

    def observed_sync() -> None:
        height = node.head.height  # every block up to here is in the WAL being synced
        real_sync()
        synced.append(height)

    node.store.sync = observed_sync  # type: ignore[method-assign]
    early: list[int] = []

    def check(future) -> None:
        receipt = future.result()
        if not synced or max(synced) < receipt.height:
            early.append(receipt.height)

    pending = [
        node.submit_signed(STAFF_KEY, "testkv", "set", {"key": f"k{n}", "value": n})
        for n in range(300)
    ]
    for p in pending:
        p.future.add_done_callback(check)
    heights = {p.future.result(10).height for p in pending}
    node.stop()
    assert len(heights) > 1 and synced
    assert early == []


def test_the_block_wait_counts_from_the_first_transactions_arrival() -> None:
    """A transaction that arrived while the previous batch was being delivered has waited
    already: once the orderer is free, it cuts that batch at once instead of waiting
    ``max_wait`` again (as its docstring says: after the first transaction arrived)."""
    from tsunagu.node.orderer import Pending

    orderer = SoloOrderer(max_txs=500, max_wait=1.0)
    delivered: list[tuple[float, list[Pending]]] = []
    first_done = threading.Event()

    class Slow:
        def deliver(self, batch: list[Pending]) -> None:
            delivered.append((time.monotonic(), batch))
            if len(delivered) == 1:
                time.sleep(2.0)  # the first batch takes long to commit
                first_done.set()

    orderer.start(Slow())
    try:
        a, b = Pending(None), Pending(None)  # type: ignore[arg-type]  # never looked into
        start = time.monotonic()
        orderer.submit(a)
        time.sleep(1.3)  # the first batch was cut at 1.0 s and is being delivered
        orderer.submit(b)
        assert first_done.wait(10)
        returned = time.monotonic()
        deadline = returned + 10
        while len(delivered) < 2:
            assert time.monotonic() < deadline, "the second batch was never delivered"
            time.sleep(0.01)
    finally:
        orderer.stop()
    assert [batch for _, batch in delivered] == [[a], [b]]
    assert delivered[0][0] - start >= 0.9  # the first batch waited its max_wait
    # b had waited 1.7 s by then: cut at once (it was cut 1.0 s later before)
    assert delivered[1][0] - returned < 0.5


def test_block_time_never_runs_backwards(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A clock set back (or a node whose head came from a faster clock) gives the next block
    its head's timestamp, not an earlier one; a later clock is taken as it is."""
    import shutil

    import tsunagu.node.node as node_module

    shutil.copytree(demo_dir, tmp_path / "data")  # the year-2999 head stays in this copy
    node, private = _open(tmp_path / "data", max_wait=0.01)
    try:
        key = private.signing_key(private.user("staff1"))
        head = node.head.timestamp
        # Earlier by a year, and earlier only in the milliseconds: both compare as earlier.
        for n, earlier in enumerate(("2025-11-29T00:00:00.000Z", head[:-4] + "000Z")):
            monkeypatch.setattr(node_module, "now_timestamp", lambda e=earlier: e)
            receipt = node.submit_signed(key, "documents", "register", _doc(n, "b7")).future
            assert receipt.result(timeout=10).status == "committed"
            block = node.store.block(node.head.height)
            assert block.header.timestamp == head
        later = "2999-01-01T00:00:00.001Z"
        monkeypatch.setattr(node_module, "now_timestamp", lambda: later)
        receipt = node.submit_signed(key, "documents", "register", _doc(1, "b8")).future
        assert node.store.block(receipt.result(timeout=10).height).header.timestamp == later
    finally:
        node.stop()
