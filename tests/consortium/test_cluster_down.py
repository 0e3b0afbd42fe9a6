"""`tsunagu cluster down` stops every process of the consortium, the ones restarted by hand
with their recorded ``argv`` included; `cluster up` refuses while any of them still runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from consortium.conftest import _free_base
from tsunagu import cluster


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tsunagu.cli", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_down_stops_a_node_restarted_with_its_argv(tmp_path: Path) -> None:
    root = tmp_path / "c"
    base = str(_free_base())
    up = _cli("up", "--nodes", "1", "--dir", str(root), "--base-port", base)
    assert up.returncode == 0, up.stderr + up.stdout
    info = cluster.load(root)
    node, member = info["nodes"][0], info["etcd"][0]
    try:
        # An operator restarts the node with its argv: cluster.json still has the old pid.
        cluster.stop_pids([node["pid"]])
        restarted = cluster.start_process(root, dict(node), "node-1.log")
        cluster.wait_until_up([{**node, "pid": restarted}])
        assert cluster.running(restarted, node["argv"])

        again = _cli("up", "--nodes", "1", "--dir", str(root), "--base-port", base)
        assert again.returncode == 1
        assert "still runs" in again.stderr and f"pid {restarted}" in again.stderr

        down = _cli("down", "--dir", str(root))
        assert down.returncode == 0, down.stderr
        assert "Stopped (2 processes)" in down.stdout
        assert not cluster.running(restarted, node["argv"])
        assert not cluster.running(member["pid"], member["argv"])
        assert cluster.cluster_processes(cluster.load(root)) == []
        saved = json.loads((root / "cluster.json").read_text())
        assert [e["pid"] for e in saved["nodes"] + saved["etcd"]] == [None, None]
    finally:
        for _entry, pid in cluster.cluster_processes(cluster.load(root)):
            os.kill(pid, 9)
