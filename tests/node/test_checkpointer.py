"""The store's checkpointer copies the write-ahead log back into the database file on its own
thread, so that the commit path never does it (real SQLite files, a real node)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from chainkit import STAFF_KEY, make_node
from tsunagu.node import store as store_module
from tsunagu.node.orderer import SoloOrderer


def _height_in_database_file(path: Path) -> int:
    """The highest block in ``chain.db`` itself, ignoring its write-ahead log: what
    checkpoints have copied back so far. ``immutable`` reads take no lock, so a read during a
    checkpoint may see a half-copied file: that counts as not there yet."""
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)
    try:
        row = conn.execute("SELECT max(height) FROM blocks").fetchone()
    except sqlite3.DatabaseError:  # no schema copied back yet, or a checkpoint half-way
        return -1
    finally:
        conn.close()
    return -1 if row[0] is None else row[0]


def test_committed_blocks_reach_the_database_file_without_the_writer_checkpointing(
    tmp_path: Path,
) -> None:
    node, _ = make_node(tmp_path, orderer=SoloOrderer(max_txs=50, max_wait=0.01))
    chain_db = node.store.path
    try:
        pending = [
            node.submit_signed(STAFF_KEY, "testkv", "set", {"key": f"k{n:04}", "value": n})
            for n in range(600)
        ]
        last = max(p.future.result(30).height for p in pending)
        # Far fewer pages than the writer's own threshold: only the checkpointer copies them.
        deadline = time.monotonic() + 30
        seen = _height_in_database_file(chain_db)
        while seen < last and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = _height_in_database_file(chain_db)
        assert seen == last
        assert node.store.checkpointer.passes >= 1
        thread = node.store.checkpointer._thread
        assert thread is not None and thread.name == "checkpointer" and thread.is_alive()
    finally:
        node.stop()
    assert not thread.is_alive()  # the store's close ends it


def test_the_writer_checkpoints_only_far_past_what_the_checkpointer_keeps(tmp_path: Path) -> None:
    """Without the background pass (a store whose checkpointer is closed), the blocks stay
    in the log: the writer's own automatic checkpoint waits for WRITER_AUTOCHECKPOINT pages."""
    node, _ = make_node(tmp_path, orderer=SoloOrderer(max_txs=50, max_wait=0.01))
    node.store.checkpointer.close()
    passes = node.store.checkpointer.passes
    chain_db = node.store.path
    try:
        before = _height_in_database_file(chain_db)
        pending = [
            node.submit_signed(STAFF_KEY, "testkv", "set", {"key": f"k{n:04}", "value": n})
            for n in range(300)
        ]
        last = max(p.future.result(30).height for p in pending)
        time.sleep(3 * store_module.CHECKPOINT_EVERY)
        assert _height_in_database_file(chain_db) == before < last
        assert node.store.checkpointer.passes == passes
    finally:
        node.stop()
