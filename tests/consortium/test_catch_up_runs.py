"""In process, on real SQLite nodes with real worker processes: a node catching up applies a
run of blocks (signatures checked ahead in workers, one SQLite commit) exactly as it would
apply them one by one, and refuses every block it would refuse one by one."""

from __future__ import annotations

import base64
import os
import shutil
import signal
from pathlib import Path

import pytest

from chainkit import STAFF_KEY, default_contracts, make_node
from tsunagu.ledger import merkle
from tsunagu.ledger.block import Block, BlockHeader, results_hash, sign_header
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import Transaction, build_tx, decode_tx
from tsunagu.node.apply import BadBlock
from tsunagu.node.catchup import CatchUp
from tsunagu.node.node import Node, now_timestamp
from tsunagu.node.peers import block_digests
from tsunagu.node.wire import block_to_wire

NEW_KEY = SigningKey.from_seed(b"\x07" * 32)  # a member the run itself registers


@pytest.fixture
def pair(tmp_path: Path):
    """Node A (its orderer idle: blocks are built here) and node B holding only the genesis."""
    a, admin = make_node(tmp_path / "a")
    shutil.copytree(tmp_path / "a" / "data", tmp_path / "b")
    b = Node(tmp_path / "b", default_contracts())
    catchup = CatchUp(b, workers=1, parallel_min=0)  # every run goes through the workers
    catchup.warm_up()
    yield a, b, admin, catchup
    catchup.close()
    a.stop()
    b.stop()


class Seqs:
    def __init__(self, admin: SigningKey) -> None:
        self.last: dict[str, int] = {admin.key_id: 1}  # the admin signed the genesis

    def tx(self, key: SigningKey, app: str, type: str, payload: dict) -> Transaction:
        seq = self.last.get(key.key_id, 0) + 1
        self.last[key.key_id] = seq
        return build_tx("test-chain", app, type, payload, key, seq)


def forged(tx: Transaction) -> Transaction:
    """``tx`` with a well-formed signature by another key: it does not verify."""
    body = tx.to_json()
    body["signature"] = SigningKey.generate().sign(tx.signing_bytes()).hex()
    return decode_tx(body)


def add_block(a: Node, txs: list[Transaction]) -> Block:
    """A builds and commits a block of ``txs`` as its orderer would (no signature checks:
    admission checked them), so a forged signature is recorded as committed."""
    built = a.build_block(txs)
    return a.write_built(built)


def add_checked_block(a: Node, txs: list[Transaction]) -> Block:
    """Like :func:`add_block`, but executed with the signature checks on, so a forged
    signature is recorded as refused (``bad_signature``): a valid block."""
    head = a.head
    timestamp = max(now_timestamp(), head.timestamp)
    execution = a.executor.execute(
        a.store.committed_state(),
        txs,
        chain_id=a.chain_id,
        height=head.height + 1,
        timestamp=timestamp,
        first_index=a.frontier.size,
        prev_state_hash=head.state_hash,
        check_signatures=True,
    )
    frontier, _ = merkle.append(a.frontier, [merkle.leaf_hash(t.leaf) for t in txs])
    header = BlockHeader(
        chain_id=a.chain_id,
        height=head.height + 1,
        prev_hash=head.hash,
        timestamp=timestamp,
        tx_count=len(txs),
        results_hash=results_hash(execution.results),
        tree_size=frontier.size,
        tree_root=frontier.root().hex(),
        state_hash=execution.state_hash,
        proposer=a.node_id,
    )
    block = Block(header, sign_header(header, a.key), tuple(txs), tuple(execution.results))
    return a.apply_block(block)


def wires(a: Node, start: int) -> list[dict]:
    return [block_to_wire(a.store.block(h)) for h in range(start, a.head.height + 1)]


def catch_up(catchup: CatchUp, raws: list, start: int, *, workers: bool = True) -> None:
    prepared = catchup.prepare(raws, start)
    try:
        catchup.apply(prepared)
    finally:
        if workers:  # the leaves and signatures were checked by the worker processes
            futures = [p.verdicts for p in prepared if p.block is not None]
            assert all(f is not None and f.done() and not f.cancelled() for f in futures)
            assert all(f.exception() is None for f in futures)


def test_a_run_applies_like_blocks_one_by_one(pair) -> None:
    a, b, admin, catchup = pair
    seqs = Seqs(admin)
    for n in range(6):
        txs = [
            seqs.tx(STAFF_KEY, "testkv", "set", {"key": f"k{n}-{i}", "value": i}) for i in range(5)
        ]
        txs.append(seqs.tx(STAFF_KEY, "testkv", "set", {"key": "neg", "value": -1}))  # refused
        add_block(a, txs)
    catch_up(catchup, wires(a, 1), 1)
    assert b.head == a.head
    assert block_digests(b.store.reader(), 0, a.head.height) == block_digests(
        a.store.reader(), 0, a.head.height
    )
    assert b.store.state().get("testkv.entry", "k5-4") == {"value": 4}


def test_a_key_registered_earlier_in_the_run_signs_later_in_it(pair) -> None:
    a, b, admin, catchup = pair
    seqs = Seqs(admin)
    add_member = {"public_key": NEW_KEY.public_key.hex(), "org": "hachioji", "roles": ["staff"]}
    add_block(a, [seqs.tx(admin, "identity", "member.add", add_member)])
    # Same block: registered by the first transaction, used by the second.
    other = SigningKey.from_seed(b"\x08" * 32)
    add_other = {"public_key": other.public_key.hex(), "org": "hachioji", "roles": ["staff"]}
    add_block(
        a,
        [
            seqs.tx(admin, "identity", "member.add", add_other),
            seqs.tx(other, "testkv", "set", {"key": "same-block", "value": 1}),
        ],
    )
    add_block(a, [seqs.tx(NEW_KEY, "testkv", "set", {"key": "new", "value": 2})])
    assert all(r.status == "committed" for h in (1, 2, 3) for r in a.store.block(h).results)
    catch_up(catchup, wires(a, 1), 1)
    assert b.head == a.head
    assert b.store.state().get("testkv.entry", "new") == {"value": 2}
    assert b.store.state().get("testkv.entry", "same-block") == {"value": 1}


@pytest.mark.parametrize("signer", ["known", "registered in the run"])
def test_one_forged_signature_in_a_run_refuses_that_block_only(pair, signer: str) -> None:
    a, b, admin, catchup = pair
    seqs = Seqs(admin)
    add_member = {"public_key": NEW_KEY.public_key.hex(), "org": "hachioji", "roles": ["staff"]}
    add_block(a, [seqs.tx(admin, "identity", "member.add", add_member)])
    add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": "good", "value": 1})])
    key = STAFF_KEY if signer == "known" else NEW_KEY
    txs = [seqs.tx(STAFF_KEY, "testkv", "set", {"key": f"x{i}", "value": i}) for i in range(4)]
    txs.insert(2, forged(seqs.tx(key, "testkv", "set", {"key": "forged", "value": 9})))
    bad = add_block(a, txs)  # A's orderer recorded the forged transaction as committed
    assert bad.results[2].status == "committed"
    add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": "after", "value": 3})])
    with pytest.raises(BadBlock) as refused:
        catch_up(catchup, wires(a, 1), 1)
    assert refused.value.extra["height"] == bad.height
    assert b.head.height == bad.height - 1  # the blocks before it are in, nothing after
    assert b.head.hash == bad.header.prev_hash
    assert b.store.state().get("testkv.entry", "good") == {"value": 1}
    assert b.store.state().get("testkv.entry", "x0") is None
    assert b.store.block(bad.height) is None


def test_a_forged_signature_recorded_as_refused_is_a_valid_block(pair) -> None:
    a, b, admin, catchup = pair
    seqs = Seqs(admin)
    txs = [seqs.tx(STAFF_KEY, "testkv", "set", {"key": f"y{i}", "value": i}) for i in range(3)]
    txs.insert(1, forged(seqs.tx(STAFF_KEY, "testkv", "set", {"key": "forged", "value": 9})))
    block = add_checked_block(a, txs)
    assert block.results[1].code == "bad_signature"
    add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": "after", "value": 3})])
    catch_up(catchup, wires(a, 1), 1)
    assert b.head == a.head
    assert b.store.state().get("testkv.entry", "forged") is None
    assert b.store.state().get("testkv.entry", "y2") == {"value": 2}


def test_a_leaf_that_is_not_canonical_is_refused(pair) -> None:
    a, b, admin, catchup = pair
    seqs = Seqs(admin)
    add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": "one", "value": 1})])
    add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": "two", "value": 2})])
    raws = wires(a, 1)
    leaf = base64.b64decode(raws[1]["leaves"][0])
    raws[1]["leaves"][0] = base64.b64encode(leaf.replace(b'{"app"', b'{ "app"', 1)).decode()
    with pytest.raises(BadBlock, match="does not decode"):
        catch_up(catchup, raws, 1)
    assert b.head.height == 1


def test_killed_workers_do_not_stop_the_checks(pair) -> None:
    a, b, admin, catchup = pair
    seqs = Seqs(admin)
    add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": "one", "value": 1})])
    catch_up(catchup, wires(a, 1), 1)
    workers = list(catchup.pool._pool._processes.values())
    assert workers
    for process in workers:  # as the kernel's OOM killer would
        os.kill(process.pid, signal.SIGKILL)
    for process in workers:
        process.join(10)
    add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": "two", "value": 2})])
    bad = add_block(a, [forged(seqs.tx(STAFF_KEY, "testkv", "set", {"key": "x", "value": 3}))])
    with pytest.raises(BadBlock):
        catch_up(catchup, wires(a, 2), 2, workers=False)  # whichever way, while they restart
    assert b.head.height == bad.height - 1
    assert b.store.state().get("testkv.entry", "two") == {"value": 2}


def test_ranges_are_fetched_and_prepared_ahead_and_applied_in_order(pair) -> None:
    """``CatchUp.ranges`` over many small ranges: every range after the second is fetched and
    prepared on the background thread while the one before it is applied, and the node ends
    where A is, with A's blocks."""
    import threading

    from tsunagu.node.catchup import Range

    a, b, admin, catchup = pair
    seqs = Seqs(admin)
    for n in range(12):
        add_block(a, [seqs.tx(STAFF_KEY, "testkv", "set", {"key": f"r{n}", "value": n})])
    blocks = wires(a, 0)
    size = 2
    where: dict[int, str] = {}

    def fetch(start: int) -> Range:
        where[start] = threading.current_thread().name
        raws = blocks[start : start + size]
        return Range(start, raws, start + size < len(blocks))

    prepared_in: dict[int, str] = {}
    prepare = catchup.prepare

    def recording(raws: list, first: int = 0) -> list:  # which thread prepares each range
        prepared_in[first] = threading.current_thread().name
        return prepare(raws, first)

    catchup.prepare = recording  # type: ignore[method-assign]
    ranges = catchup.ranges(fetch, 1)
    for fetched in ranges:
        assert fetched.prepared is not None  # prepared before it is handed out
        catchup.apply(fetched.prepared)
    assert b.head == a.head
    assert block_digests(b.store.reader(), 0, a.head.height) == block_digests(
        a.store.reader(), 0, a.head.height
    )
    assert sorted(where) == list(range(1, len(blocks), size))
    background = [start for start, name in where.items() if name.startswith("catch-up-fetch")]
    assert background == list(range(5, len(blocks), size))
    assert {start: prepared_in[start] for start in background} == {
        start: where[start] for start in background
    }
