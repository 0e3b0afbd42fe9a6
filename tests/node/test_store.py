"""Reading the store: what a block read costs must not grow with the chain (a real node, a real
SQLite file; the cost is counted in SQLite virtual machine steps, which do not depend on the
machine's speed)."""

from __future__ import annotations

from pathlib import Path

from chainkit import STAFF_KEY, make_node, submit_all, submit_and_wait
from tsunagu.node.store import StateStore


def _steps(conn, read) -> int:
    """SQLite virtual machine instructions ``read()`` executes on ``conn``."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0  # go on

    conn.set_progress_handler(count, 1)
    try:
        read()
    finally:
        conn.set_progress_handler(None, 1)
    return steps[0]


def test_reading_a_block_does_not_scan_the_whole_log(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path)
    try:
        first = submit_and_wait(node, STAFF_KEY, "testkv", "set", {"key": "a", "value": 1})
        conn = node.store.reader()
        block = node.store.block(first.height, conn)
        assert block is not None and [tx.id for tx in block.txs] == [first.tx_id]
        small = _steps(conn, lambda: node.store.block(first.height, conn))

        items = [(STAFF_KEY, "testkv", "set", {"key": f"k{n}", "value": n}) for n in range(600)]
        later = submit_all(node, items)
        assert node.store.block(first.height, conn).txs == block.txs
        large = _steps(conn, lambda: node.store.block(first.height, conn))
        # The same block, 600 more transactions in the log: a scan of the txs table would
        # add several instructions for every one of them.
        assert large <= small + 20, (small, large)

        # A block in the middle reads exactly its own transactions, in log order.
        middle = later[300]
        read = node.store.block(middle.height, conn)
        assert read is not None
        indexes = [r.index for r in later if r.height == middle.height]
        assert [tx.id for tx in read.txs] == [r.tx_id for r in later if r.height == middle.height]
        assert read.header.tx_count == len(indexes)
        assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    finally:
        node.stop()


def test_app_txs_reads_only_that_applications_transactions(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path)
    try:
        items = [(STAFF_KEY, "testkv", "set", {"key": f"k{n}", "value": n}) for n in range(5)]
        items.append((STAFF_KEY, "testkv", "set", {"key": "bad", "value": -1}))  # rejected
        receipts = submit_all(node, items)
        height = receipts[-1].height  # the rejected one's block
        block = node.store.block(height)
        assert block is not None

        header, txs = node.store.app_txs(height, "testkv")
        assert header == block.header
        mine = [r for r in receipts if r.height == height]
        assert [(i, tx.id) for i, tx, _ in txs] == [(r.index, r.tx_id) for r in mine]
        assert [result.status for _, _, result in txs] == [r.status for r in mine]
        assert "rejected" in {result.status for _, _, result in txs}

        # Another application's, or a name that only begins the same way: nothing.
        assert node.store.app_txs(height, "identity") == (block.header, [])
        assert node.store.app_txs(height, "test") == (block.header, [])
        _, genesis = node.store.app_txs(0, "identity")
        assert [tx.type for _, tx, _ in genesis] == ["genesis"]
        assert node.store.app_txs(node.head.height + 1, "testkv") is None
    finally:
        node.stop()


def test_prefetch_caches_exactly_what_the_state_table_holds(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path)
    try:
        submit_all(
            node, [(STAFF_KEY, "testkv", "set", {"key": f"k{n}", "value": n}) for n in range(3)]
        )
        keys = [("testkv.entry", f"k{n}") for n in range(5)]  # k3 and k4 do not exist
        keys += [("testkv.entry", "k0"), ("other.ns", "k1")]
        state = node.store.committed_state()
        state.prefetch([*keys, ("testkv.entry", 7)])  # type: ignore[list-item]  # skipped
        # Afterwards the reads named are answered without SQLite, and exactly as SQLite would.
        writer = node.store.writer
        steps = _steps(writer, lambda: [state.get_raw(ns, key) for ns, key in keys])
        assert steps == 0
        plain = StateStore(node.store.reader())
        for ns, key in keys:
            assert state.get_raw(ns, key) == plain.get_raw(ns, key)
        assert state.get("testkv.entry", "k2") == {"value": 2}
        assert state.get_raw("testkv.entry", "k4") is None
    finally:
        node.stop()


def test_a_malformed_prefetch_hint_is_dropped(tmp_path: Path) -> None:
    from chainkit import TestKV
    from tsunagu.node.executor import MEMBER_NS, SEQ_NS

    class Odd(TestKV):
        __test__ = False

        def prefetch(self, tx_type: str, payload: dict) -> list:
            if payload["key"] == "raise":
                raise KeyError("no such thing")
            return [("testkv.entry", payload["key"], "a third member"), 7]

    node, _ = make_node(tmp_path, [Odd()])
    try:
        receipts = [
            submit_and_wait(node, STAFF_KEY, "testkv", "set", {"key": key, "value": 1})
            for key in ("a", "raise")
        ]
        assert [r.status for r in receipts] == ["committed", "committed"]
        for receipt in receipts:
            tx = node.store.tx(receipt.tx_id).tx
            assert node.executor.prefetch_keys([tx]) == [
                (MEMBER_NS, tx.signer),
                (SEQ_NS, tx.signer),
            ]
            node.state_for([tx])  # reads ahead what is left, without failing
    finally:
        node.stop()
