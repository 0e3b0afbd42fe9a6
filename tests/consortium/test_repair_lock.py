"""`tsunagu repair` refuses a data folder that a node serves, and is not blocked by the lock
file a node killed with ``kill -9`` left behind."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chainkit import make_node


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tsunagu.cli", *args], capture_output=True, text=True, timeout=60
    )


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_repair_refuses_a_served_folder_but_not_a_stale_lock(tmp_path: Path) -> None:
    node, _ = make_node(tmp_path)
    node.stop()
    data = tmp_path / "data"
    db = data / "chain.db"
    port = _port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "tsunagu.cli", "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/status").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert serve.poll() is None and time.monotonic() < deadline, serve.stderr
            time.sleep(0.2)
        before = hashlib.sha256(db.read_bytes()).hexdigest()

        run = _cli("repair", "--data", str(data), "--from", f"http://127.0.0.1:{port}")
        assert run.returncode == 1
        assert f"in use by tsunagu serve (pid {serve.pid})" in run.stdout
        assert "stop the node first" in run.stdout
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
        assert not (data / ".repair").exists()
        # A second server on the same folder is refused too.
        second = _cli("serve", "--data", str(data), "--port", str(_port()))
        assert second.returncode == 1 and "in use by tsunagu serve" in second.stderr
    finally:
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait()
    # kill -9 left node.lock behind, naming a dead pid: repair goes on (and finds no peer).
    assert (data / "node.lock").read_text()
    run = _cli("repair", "--data", str(data), "--from", "http://127.0.0.1:1")
    assert run.returncode == 1 and "no peer answered" in run.stdout, run.stdout
