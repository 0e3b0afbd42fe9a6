"""``verify_chain`` against a real node's real ``chain.db``, intact and tampered with.

One chain is built per module; every tampering happens with plain SQLite on a fresh copy of its
data directory, the way a damaged or rewritten copy would look on disk.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainkit import (
    CHAIN_ID,
    STAFF_KEY,
    default_contracts,
    flip_byte,
    genesis_payload,
    make_node,
    submit_all,
    submit_and_wait,
)
from tsunagu.identity.contract import IdentityContract
from tsunagu.ledger.block import COMMITTED, ZERO_HASH, TxResult, next_state_hash, results_hash
from tsunagu.ledger.canonical import canonical, sha256_hex
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx, decode_leaf
from tsunagu.node.executor import Executor, state_hash
from tsunagu.node.memstate import MemoryState
from tsunagu.node.node import CHAIN_DB
from tsunagu.node.orderer import SoloOrderer
from tsunagu.node.store import SCHEMA, StateStore
from tsunagu.node.verify import VerifyReport, _results_hash, verify_chain

CONTRACTS = default_contracts()


@dataclass(frozen=True)
class Chain:
    data: Path
    last: int  # height of the last block
    middle: int  # a block before the last one holding many transactions
    blocks: int
    transactions: int


def _query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _execute(db: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(sql, params)
        conn.commit()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("chain")
    node, admin = make_node(root, orderer=SoloOrderer(max_txs=40, max_wait=0.2))
    try:
        resident = SigningKey.generate()
        clerk = SigningKey.generate()
        for key, roles in ((resident, ["resident"]), (clerk, ["staff"])):
            receipt = submit_and_wait(
                node,
                admin,
                "identity",
                "member.add",
                {"public_key": key.public_key.hex(), "org": "hachioji", "roles": roles},
            )
            assert receipt.status == "committed"
        items = []
        for i in range(320):
            key = (STAFF_KEY, clerk, admin, resident)[i % 4]
            value = -i if i % 13 == 0 else i
            items.append((key, "testkv", "set", {"key": f"k{i % 60}", "value": value}))
            if i % 50 == 7:
                items.append((STAFF_KEY, "testkv", "delete", {"key": "k1"}))  # unknown type
            if i % 50 == 9:
                items.append((clerk, "testkv", "set", {"key": "k2", "value": "two"}))
        receipts = submit_all(node, items)
        statuses = {r.status for r in receipts}
        codes = {r.code for r in receipts if r.status == "rejected"}
        assert statuses == {"committed", "rejected"}
        assert {"negative", "forbidden_role", "unknown_type", "invalid_payload"} <= codes
        submit_and_wait(node, STAFF_KEY, "testkv", "set", {"key": "tail", "value": 1})
    finally:
        node.stop()
    db = node.data_dir / CHAIN_DB
    rows = _query(db, "SELECT height, COUNT(*) FROM txs GROUP BY height ORDER BY height")
    last = rows[-1][0]
    middle = max((r for r in rows if 0 < r[0] < last), key=lambda r: (r[1], -r[0]))[0]
    assert 0 < middle < last - 1 and dict(rows)[middle] >= 20
    transactions = sum(count for _, count in rows)
    return Chain(node.data_dir, last, middle, last + 1, transactions)


@pytest.fixture
def copy(chain: Chain, tmp_path: Path) -> Path:
    """A fresh copy of the chain's data directory."""
    return Path(shutil.copytree(chain.data, tmp_path / "copy"))


def verify(data: Path, workers: int | None = None) -> VerifyReport:
    return verify_chain(data, CONTRACTS, workers=workers)


def assert_bad(report: VerifyReport, height: int | None, *fragments: str) -> None:
    assert not report.ok, report
    assert report.height == height, report
    for fragment in fragments:
        assert fragment in (report.problem or ""), report


def block_txs(db: Path, height: int) -> list[tuple[int, bytes]]:
    return _query(
        db, "SELECT log_index, leaf FROM txs WHERE height = ? ORDER BY log_index", (height,)
    )


# -- an intact chain -------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_an_intact_chain_verifies(chain: Chain, copy: Path, workers: int) -> None:
    db = copy / CHAIN_DB
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    calls: list[tuple[int, int]] = []

    report = verify_chain(
        copy, CONTRACTS, progress=lambda done, total: calls.append((done, total)), workers=workers
    )

    assert report.ok, report
    assert (report.height, report.problem) == (None, None)
    assert report.blocks == chain.blocks
    assert report.transactions == chain.transactions
    assert report.seconds > 0
    assert calls[-1] == (chain.blocks, chain.blocks)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # opened read-only
    assert gc.isenabled()  # paused while it ran, in this (main) thread


def test_progress_is_reported_every_100_blocks(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path, orderer=SoloOrderer(max_txs=1, max_wait=0))
    try:
        submit_all(
            node, [(STAFF_KEY, "testkv", "set", {"key": "k", "value": i}) for i in range(230)]
        )
    finally:
        node.stop()
    calls: list[tuple[int, int]] = []

    report = verify_chain(node.data_dir, CONTRACTS, lambda *call: calls.append(call), workers=1)

    assert report.ok and report.blocks == 231, report
    assert calls == [(100, 231), (200, 231), (231, 231)]


def test_a_missing_chain_db_is_reported_and_not_created(copy: Path) -> None:
    (copy / CHAIN_DB).unlink()

    assert_bad(verify(copy), None, "chain.db is missing")
    assert not (copy / CHAIN_DB).exists()


def test_without_the_contracts_the_replay_differs(copy: Path) -> None:
    report = verify_chain(copy, [IdentityContract()], workers=0)

    assert_bad(report, 3, "result differs", "unknown_app")


def test_a_chain_verifies_while_its_node_keeps_writing(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path, orderer=SoloOrderer(max_txs=20, max_wait=0.005))
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            submit_and_wait(node, STAFF_KEY, "testkv", "set", {"key": f"k{i}", "value": i})
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    reports: list[VerifyReport] = []
    try:
        # Until the verifier has seen the chain at several lengths, i.e. really overlapped.
        while len({r.blocks for r in reports}) < 3 and len(reports) < 200:
            reports.append(verify_chain(node.data_dir, CONTRACTS, workers=0))
    finally:
        stop.set()
        writer.join()
        node.stop()
    assert len({r.blocks for r in reports}) >= 3
    assert all(r.ok for r in reports), [r for r in reports if not r.ok]
    assert verify(node.data_dir).ok


def test_a_file_that_is_not_a_database(copy: Path) -> None:
    (copy / CHAIN_DB).write_bytes(b"not a database " * 100)

    assert_bad(verify(copy), None, "chain.db cannot be read")


# -- blocks ----------------------------------------------------------------------------------


def test_a_changed_byte_in_a_block_header(chain: Chain, copy: Path) -> None:
    flip_byte(copy / CHAIN_DB, "blocks", "header", "height = ?", (chain.middle,))

    assert_bad(verify(copy), chain.middle, f"block {chain.middle}: ", "header")


def test_a_rewritten_header_with_its_hash_fixed_fails_the_proposer_signature(
    chain: Chain, copy: Path
) -> None:
    db = copy / CHAIN_DB
    ((raw,),) = _query(db, "SELECT header FROM blocks WHERE height = ?", (chain.middle,))
    rewritten = raw.replace(b'"timestamp":"20', b'"timestamp":"29')
    assert rewritten != raw
    _execute(
        db,
        "UPDATE blocks SET header = ?, hash = ? WHERE height = ?",
        (rewritten, sha256_hex(rewritten), chain.middle),
    )

    # The next block's prev_hash no longer links either, but this block is the first bad one.
    assert_bad(verify(copy), chain.middle, "proposer's signature does not verify")


def test_a_changed_proposer_signature(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    ((signature,),) = _query(db, "SELECT signature FROM blocks WHERE height = ?", (chain.middle,))
    forged = signature[:10] + ("1" if signature[10] != "1" else "2") + signature[11:]
    _execute(db, "UPDATE blocks SET signature = ? WHERE height = ?", (forged, chain.middle))

    assert_bad(verify(copy), chain.middle, f"block {chain.middle}: the proposer's signature")


def test_a_changed_genesis_proposer_signature(copy: Path) -> None:
    flip_byte(copy / CHAIN_DB, "blocks", "signature", "height = 0", (), offset=0)

    assert_bad(verify(copy), 0, "block 0: the proposer's signature does not verify")


def test_a_deleted_block_in_the_middle(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    _execute(db, "DELETE FROM blocks WHERE height = ?", (chain.middle,))
    _execute(db, "DELETE FROM txs WHERE height = ?", (chain.middle,))

    m = chain.middle
    assert_bad(verify(copy), m, f"block {m} is missing (heights jump from {m - 1} to {m + 1})")


def test_the_last_block_deleted_with_its_transactions(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    _execute(db, "DELETE FROM blocks WHERE height = ?", (chain.last,))
    _execute(db, "DELETE FROM txs WHERE height = ?", (chain.last,))

    report = verify(copy)

    assert_bad(report, None, "log_nodes holds", f"blocks after height {chain.last - 1} may have")
    assert report.blocks == chain.blocks - 1


def test_the_last_block_deleted_without_its_transactions(chain: Chain, copy: Path) -> None:
    _execute(copy / CHAIN_DB, "DELETE FROM blocks WHERE height = ?", (chain.last,))

    assert_bad(verify(copy), None, "lies beyond the last block")


# -- transactions ----------------------------------------------------------------------------


def test_a_changed_byte_in_a_leaf_in_the_middle_of_a_block(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    txs = block_txs(db, chain.middle)
    index = len(txs) // 2
    flip_byte(db, "txs", "leaf", "log_index = ?", (txs[index][0],))

    assert_bad(verify(copy), chain.middle, f"block {chain.middle}: transaction {index} ")


def test_a_forged_signature_is_found_by_the_workers(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    txs = block_txs(db, chain.middle)
    index = len(txs) // 2 + 1
    log_index, leaf = txs[index]
    tx = decode_leaf(leaf)
    # Same body, signed by someone else; the id column is fixed up to match.
    body = {**tx.body(), "signature": SigningKey.generate().sign(tx.signing_bytes()).hex()}
    forged = canonical(body)
    _execute(
        db,
        "UPDATE txs SET leaf = ?, id = ? WHERE log_index = ?",
        (forged, sha256_hex(forged), log_index),
    )

    for workers in (0, 2):
        assert_bad(
            verify(copy, workers),
            chain.middle,
            f"block {chain.middle}: transaction {index} (log index {log_index}) signature",
        )


def test_a_changed_byte_in_a_result(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    ((log_index,),) = _query(
        db,
        "SELECT log_index FROM txs WHERE height = ? AND result LIKE '%rejected%' "
        "ORDER BY log_index LIMIT 1 OFFSET 1",
        (chain.middle,),
    )
    first = _query(db, "SELECT first_index FROM blocks WHERE height = ?", (chain.middle,))[0][0]
    flip_byte(db, "txs", "result", "log_index = ?", (log_index,))

    assert_bad(
        verify(copy),
        chain.middle,
        f"block {chain.middle}: transaction {log_index - first} (log index {log_index}) result",
    )


def test_a_missing_transaction_row(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    txs = block_txs(db, chain.middle)
    _execute(db, "DELETE FROM txs WHERE log_index = ?", (txs[-1][0],))

    assert_bad(
        verify(copy),
        chain.middle,
        f"the header says {len(txs)} transactions but the store has {len(txs) - 1}",
    )


def test_a_changed_id_column(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    log_index = block_txs(db, chain.middle)[0][0]
    flip_byte(db, "txs", "id", "log_index = ?", (log_index,), offset=0)

    assert_bad(verify(copy), chain.middle, "id column does not match")


# -- the Merkle log --------------------------------------------------------------------------


def _height_of_leaf(db: Path, log_index: int) -> int:
    return _query(db, "SELECT height FROM txs WHERE log_index = ?", (log_index,))[0][0]


@pytest.mark.parametrize("level", [0, 3])
def test_a_changed_byte_in_a_log_node(chain: Chain, copy: Path, level: int) -> None:
    db = copy / CHAIN_DB
    txs = block_txs(db, chain.middle)
    index = txs[len(txs) // 2][0] >> level
    # A node belongs to the block that completes it, i.e. the one holding its last leaf.
    height = _height_of_leaf(db, ((index + 1) << level) - 1)
    flip_byte(db, "log_nodes", "hash", "level = ? AND idx = ?", (level, index), offset=31)

    assert_bad(
        verify(copy), height, f"block {height}: log node (level {level}, index {index}) differs"
    )


def test_a_deleted_log_node(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    _execute(db, "DELETE FROM log_nodes WHERE level = 1 AND idx = 2")

    assert_bad(verify(copy), _height_of_leaf(db, 5), "log node (level 1, index 2) is missing")


def test_an_extra_log_node(chain: Chain, copy: Path) -> None:
    _execute(copy / CHAIN_DB, "INSERT INTO log_nodes VALUES (0, 100000, ?)", (b"\x00" * 32,))

    assert_bad(verify(copy), None, "(level 0, index 100000)")


# -- state -----------------------------------------------------------------------------------


def test_a_changed_byte_in_a_state_row(copy: Path) -> None:
    flip_byte(copy / CHAIN_DB, "state", "value", "ns = ? AND key = ?", ("testkv.entry", "k17"))

    assert_bad(verify(copy), None, "state row testkv.entry/k17 differs from the replayed state")


def test_an_added_state_row(copy: Path) -> None:
    _execute(
        copy / CHAIN_DB,
        "INSERT INTO state (ns, key, value) VALUES (?, ?, ?)",
        ("testkv.entry", "k17x", b'{"value":1}'),
    )

    assert_bad(verify(copy), None, "state row testkv.entry/k17x is not in the replayed state")


def test_a_deleted_state_row(chain: Chain, copy: Path) -> None:
    member = STAFF_KEY.key_id
    _execute(
        copy / CHAIN_DB, "DELETE FROM state WHERE ns = ? AND key = ?", ("identity.member", member)
    )

    assert_bad(verify(copy), None, f"state row identity.member/{member} is missing")


# -- ordering and helpers --------------------------------------------------------------------


@pytest.mark.parametrize("with_block_0", [True, False])
def test_the_first_problem_in_chain_order_is_reported(
    chain: Chain, copy: Path, with_block_0: bool
) -> None:
    db = copy / CHAIN_DB
    _execute(db, "DELETE FROM state WHERE ns = 'testkv.entry' AND key = 'k3'")
    flip_byte(db, "txs", "result", "log_index = ?", (block_txs(db, chain.middle + 1)[0][0],))
    txs = block_txs(db, chain.middle)
    flip_byte(db, "txs", "leaf", "log_index = ?", (txs[-1][0],))
    if with_block_0:
        flip_byte(db, "log_nodes", "hash", "level = 0 AND idx = 0", ())

    report = verify(copy, workers=2)

    if with_block_0:
        assert_bad(report, 0, "block 0: log node (level 0, index 0) differs")
    else:
        assert_bad(report, chain.middle, f"block {chain.middle}: transaction {len(txs) - 1} ")


def test_the_results_hash_shortcut_is_exact() -> None:
    results = [
        COMMITTED,
        TxResult("rejected", "negative", "The value must not be negative."),
        TxResult("committed"),
        TxResult("rejected", "forbidden_role", "この操作を行う権限がありません。\u2028"),
    ]
    for n in range(len(results) + 1):
        assert _results_hash(results[:n]) == results_hash(results[:n])


def test_a_forged_signature_before_an_unreadable_leaf_in_the_same_block_comes_first(
    chain: Chain, copy: Path
) -> None:
    """A leaf that is not even JSON stops the block before its replay: the signatures before it
    in the block are still checked, and the earlier problem is the one reported."""
    db = copy / CHAIN_DB
    txs = block_txs(db, chain.middle)
    log_index, leaf = txs[2]
    tx = decode_leaf(leaf)
    body = {**tx.body(), "signature": SigningKey.generate().sign(tx.signing_bytes()).hex()}
    forged = canonical(body)
    _execute(
        db,
        "UPDATE txs SET leaf = ?, id = ? WHERE log_index = ?",
        (forged, sha256_hex(forged), log_index),
    )
    last_index, last = txs[-1]
    _execute(db, "UPDATE txs SET leaf = ? WHERE log_index = ?", (last[:-1], last_index))

    for workers in (0, 2):
        assert_bad(
            verify(copy, workers),
            chain.middle,
            f"block {chain.middle}: transaction 2 (log index {log_index}) signature",
        )
    _execute(db, "UPDATE txs SET leaf = ?, id = ? WHERE log_index = ?", (leaf, tx.id, log_index))
    assert_bad(
        verify(copy),
        chain.middle,
        f"block {chain.middle}: transaction {len(txs) - 1} (log index {last_index}) leaf does "
        "not decode",
    )


def test_a_leaf_with_a_valid_signature_but_not_canonical_bytes(chain: Chain, copy: Path) -> None:
    db = copy / CHAIN_DB
    log_index, leaf = block_txs(db, chain.middle)[3]
    spaced = leaf.replace(b'","', b'", "', 1)  # the same JSON value, not its canonical form
    assert spaced != leaf and json.loads(spaced) == json.loads(leaf)
    _execute(
        db,
        "UPDATE txs SET leaf = ?, id = ? WHERE log_index = ?",
        (spaced, sha256_hex(spaced), log_index),
    )

    assert_bad(verify(copy), chain.middle, "transaction 3 ", "leaf does not decode", "canonical")


# -- the replay's parts ----------------------------------------------------------------------

TEXT = st.text(st.characters(min_codepoint=1, blacklist_categories=("Cs",)), max_size=4)
KEYS = st.sampled_from(["", "a", "a/", "a/b", "ab", "b", "é", "日本", "\U0001f600", "a\U0010ffff"])
ROW_KEY = KEYS | TEXT
NAMESPACE = st.sampled_from(["app.kv", "app.other", "ledger.seq"])
WRITE = st.tuples(NAMESPACE, ROW_KEY, st.none() | st.integers(0, 99).map(lambda n: b'{"n":%d}' % n))


def _sqlite_state() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SCHEMA)
    return conn


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(st.lists(WRITE, max_size=8), max_size=5),
    prefixes=st.lists(KEYS, max_size=4),
)
def test_the_memory_state_reads_like_the_store(
    blocks: list[list[tuple[str, str, bytes | None]]], prefixes: list[str]
) -> None:
    conn = _sqlite_state()
    stored = StateStore(conn)
    memory = MemoryState()
    for block in blocks:
        writes = sorted({(ns, key): value for ns, key, value in block}.items())
        flat = [(ns, key, value) for (ns, key), value in writes]
        # The statements Store.write_block runs.
        puts = [(ns, key, value) for ns, key, value in flat if value is not None]
        deletes = [(ns, key) for ns, key, value in flat if value is None]
        conn.executemany("INSERT OR REPLACE INTO state (ns, key, value) VALUES (?,?,?)", puts)
        conn.executemany("DELETE FROM state WHERE ns = ? AND key = ?", deletes)
        memory.apply(flat)
        for ns in ("app.kv", "app.other", "ledger.seq", "absent"):
            for prefix in ["", *prefixes]:
                assert list(memory.scan(ns, prefix)) == list(stored.scan(ns, prefix))
            for key in ("", "a", "a/b", "é", "\U0001f600"):
                assert memory.get_raw(ns, key) == stored.get_raw(ns, key)
                assert memory.get(ns, key) == stored.get(ns, key)
    rows = conn.execute("SELECT ns, key, value FROM state ORDER BY ns, key").fetchall()
    assert memory.rows() == rows
    assert len(memory) == len(rows)


def test_the_memory_state_gives_fresh_values() -> None:
    memory = MemoryState()
    memory.apply([("app.kv", "k", b'{"a":1,"b":"x"}'), ("app.kv", "n", b'{"a":[1]}')])
    for key in ("k", "n"):
        first = memory.get("app.kv", key)
        assert first is not None
        first["a"] = "changed"
        assert memory.get("app.kv", key) != first
    memory.apply([("app.kv", "k", b'{"a":2}')])
    assert memory.get("app.kv", "k") == {"a": 2}
    memory.apply([("app.kv", "k", None)])
    assert memory.get("app.kv", "k") is None and memory.get_raw("app.kv", "k") is None


STATE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)


@settings(max_examples=100, deadline=None)
@given(
    prev=st.binary(min_size=32, max_size=32).map(bytes.hex),
    writes=st.lists(
        st.tuples(
            STATE_TEXT | st.sampled_from(["ledger.seq", 'a"b', "t\u2028", "\U0001f600", "\x01"]),
            STATE_TEXT,
            st.none() | st.sampled_from([b"{}", b'{"seq":3}', b"", b'"\xe6\x97\xa5"']),
        ),
        max_size=6,
    ),
)
def test_the_executor_state_hash_is_the_ledger_state_hash(
    prev: str, writes: list[tuple[str, str, bytes | None]]
) -> None:
    assert state_hash(prev, writes) == next_state_hash(prev, writes)


def test_the_executor_reports_each_transaction_signer_key() -> None:
    node_key, admin = SigningKey.generate(), SigningKey.generate()
    stranger = SigningKey.generate()
    executor = Executor(CONTRACTS)
    state = MemoryState()

    def run(height: int, txs: list[Any]) -> tuple[list[str | None], list[bytes | None]]:
        keys: list[bytes | None] = []
        execution = executor.execute(
            state,
            txs,
            chain_id=CHAIN_ID,
            height=height,
            timestamp="2026-01-01T00:00:00.000Z",
            first_index=0,
            prev_state_hash=ZERO_HASH,
            check_signatures=False,
            signer_keys=keys,
        )
        state.apply(execution.writes)
        return [r.code for r in execution.results], keys

    payload = genesis_payload(node_key, admin)
    genesis = build_tx(CHAIN_ID, "identity", "genesis", payload, admin, 1)
    assert run(0, [genesis]) == ([None], [admin.public_key])

    entry = {"key": "k", "value": 1}
    codes, keys = run(
        1,
        [
            build_tx(CHAIN_ID, "testkv", "set", entry, STAFF_KEY, 1),
            build_tx(CHAIN_ID, "testkv", "set", {"key": "k", "value": -1}, STAFF_KEY, 2),
            build_tx(CHAIN_ID, "testkv", "set", entry, stranger, 1),
            build_tx("another-chain", "testkv", "set", entry, STAFF_KEY, 3),
            build_tx(CHAIN_ID, "identity", "genesis", payload, admin, 2),
            build_tx(CHAIN_ID, "nosuchapp", "x", {}, STAFF_KEY, 4),
        ],
    )
    assert codes == [
        None,
        "negative",
        "unknown_signer",
        "wrong_chain",
        "genesis_again",
        "unknown_app",
    ]
    s, a = STAFF_KEY.public_key, admin.public_key
    assert keys == [s, s, None, s, a, s]
