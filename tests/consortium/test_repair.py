"""A node's SQLite file damaged three ways: caught by `tsunagu verify` and by its peers, and
restored by `tsunagu repair` from the others, keeping the node's private data."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from consortium.conftest import PASSWORD, Consortium
from tsunagu import cluster
from tsunagu.node.repair import RepairFailed, repair_node
from tsunagu.platform import discover_apps, platform_contracts

CHANGED = 2  # tama-node-3: a transaction's bytes are changed
DELETED = 3  # tama-follower-1: a block is deleted


def _stop(consortium: Consortium, *indexes: int) -> list[Path]:
    consortium.wait_agree()
    for index in indexes:
        consortium.kill(consortium.nodes[index]["id"], signal.SIGTERM)
    return [Path(consortium.nodes[i]["data_dir"]) / "chain.db" for i in indexes]


def _start(consortium: Consortium, *indexes: int) -> None:
    for index in indexes:
        consortium.start(consortium.nodes[index]["id"], wait=False)
    cluster.wait_until_up([consortium.nodes[i] for i in indexes])


def _verify(consortium: Consortium, *indexes: int) -> list[subprocess.CompletedProcess]:
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tsunagu.cli",
                "verify",
                "--data",
                consortium.nodes[i]["data_dir"],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in indexes
    ]
    return [subprocess.CompletedProcess(r.args, r.wait(120), r.stdout.read(), "") for r in runs]


def _files(data: Path) -> dict[str, str]:
    """The SHA-256 of every file of a stopped node's data folder, but the lock file (which
    only says who holds the folder)."""
    return {
        str(path.relative_to(data)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data.rglob("*"))
        if path.is_file() and path.name != "node.lock"
    }


def _row(consortium: Consortium, index: int, victim: int) -> dict[str, Any]:
    view = consortium.http.get(consortium.urls[index] + "/api/v1/peers").json()
    return next(r for r in view["nodes"] if r["node_id"] == consortium.nodes[victim]["id"])


def _wait_row(consortium: Consortium, index: int, victim: int, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        row = _row(consortium, index, victim)
        if check(row):
            return row
        assert time.monotonic() < deadline, row
        time.sleep(0.3)


def _repair(consortium: Consortium, *indexes: int) -> None:
    """Repair the stopped nodes from the two healthy voting nodes, restart them, and check
    they agree and kept their private data."""
    sources = ",".join(consortium.urls[:2])
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tsunagu.cli",
                "repair",
                "--data",
                consortium.nodes[i]["data_dir"],
                "--from",
                sources,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in indexes
    ]
    for run in runs:
        code = run.wait(120)
        out = run.stdout.read()
        assert code == 0, out
        assert "verify passed" in out
    _start(consortium, *indexes)
    consortium.wait_agree()
    for index in indexes:
        response = consortium.http.post(  # accounts and custodial keys survived
            consortium.urls[index] + "/api/v1/auth/token",
            data={"username": "resident1", "password": PASSWORD},
        )
        assert response.status_code == 200
        for observer in (0, index):
            _wait_row(
                consortium,
                observer,
                index,
                lambda r: r.get("agrees") and not r.get("diverging"),
            )


def test_damaged_copies_detected_by_verify_and_peers_and_repaired(
    consortium: Consortium,
) -> None:
    changed_db, deleted_db = _stop(consortium, CHANGED, DELETED)
    conn = sqlite3.connect(changed_db)
    leaf, index = conn.execute(
        "SELECT leaf, log_index FROM txs WHERE height = 5 LIMIT 1"
    ).fetchone()
    changed = bytes(leaf).replace(b'"seq":', b'"seq": ', 1)
    conn.execute("UPDATE txs SET leaf = ? WHERE log_index = ?", (changed, index))
    conn.commit()
    conn.close()
    conn = sqlite3.connect(deleted_db)
    conn.execute("DELETE FROM blocks WHERE height = 3")
    conn.commit()
    conn.close()

    changed_run, deleted_run = _verify(consortium, CHANGED, DELETED)
    assert changed_run.returncode == 1 and "block 5" in changed_run.stdout
    assert deleted_run.returncode == 1 and "block 3 is missing" in deleted_run.stdout

    _start(consortium, CHANGED, DELETED)

    # Every node's page flags them, the damaged nodes' own included, with the first height
    # (found by comparing block digests, which may take a poll longer than the flag itself).
    def located(row: dict[str, Any]) -> bool:
        return bool(row.get("diverging")) and row.get("first_difference") is not None

    for observer in (0, 1, CHANGED, DELETED):
        assert _wait_row(consortium, observer, CHANGED, located)["first_difference"] == 5
        assert _wait_row(consortium, observer, DELETED, located)["first_difference"] == 3
    page = consortium.http.get(consortium.urls[1] + "/consortium?lang=en").text
    assert "differs from height 5" in page and "differs from height 3" in page

    # A repair that cannot trust its peers fails and leaves no trace: the damaged node, still
    # serving, disagrees with a healthy one about block 5.
    (_,) = _stop(consortium, DELETED)
    data = Path(consortium.nodes[DELETED]["data_dir"])
    before = _files(data)
    sources = [consortium.urls[0], consortium.urls[CHANGED]]
    with pytest.raises(RepairFailed, match="the peers disagree about blocks 0 to"):
        repair_node(data, sources, platform_contracts(discover_apps()), echo=lambda _: None)
    assert not (data / ".repair").exists()
    assert _files(data) == before

    # The third kind of damage: the changed node's file is removed altogether.
    consortium.kill(consortium.nodes[CHANGED]["id"], signal.SIGTERM)
    path = Path(consortium.nodes[CHANGED]["data_dir"]) / "chain.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    (run,) = _verify(consortium, CHANGED)
    assert run.returncode == 1 and "chain.db is missing" in run.stdout
    _wait_row(consortium, 0, CHANGED, lambda r: not r["reachable"])

    # Repair restores both from the two healthy nodes (each block checked, each digest
    # confirmed by both), keeping accounts and keys; it ends by running the whole
    # `tsunagu verify` check on the result, which passes.
    _repair(consortium, CHANGED, DELETED)
