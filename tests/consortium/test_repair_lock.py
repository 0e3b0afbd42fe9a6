"""`tsunagu repair` refuses a data folder that a node serves, and is not blocked by the lock
file a node killed with ``kill -9`` left behind, nor by a scratch folder a killed repair left;
a repair that fails or is stopped leaves the folder as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chainkit import make_node
from tsunagu.node.repair import repair_node
from tsunagu.platform import discover_apps, platform_contracts


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

        # A repair stopped half-way (SIGTERM, as a service manager stops it) removes its
        # scratch folder and leaves the folder it was repairing as it was.
        copy = tmp_path / "copy"
        shutil.copytree(data, copy)
        before = _files(copy)

        def terminate_when_a_batch_is_in(line: str) -> None:
            if line.endswith(" blocks"):  # "  1/1 blocks": the scratch chain holds them
                assert (copy / ".repair" / "chain.db").exists()
                os.kill(os.getpid(), signal.SIGTERM)

        def unhandled(signum: int, frame: object) -> None:  # instead of ending pytest
            raise AssertionError("the repair left SIGTERM to this process's own handler")

        contracts = platform_contracts(discover_apps())
        url = f"http://127.0.0.1:{port}"
        signal.signal(signal.SIGTERM, unhandled)
        try:
            with pytest.raises(KeyboardInterrupt, match="stopped by signal"):
                repair_node(copy, [url], contracts, echo=terminate_when_a_batch_is_in)
            assert signal.getsignal(signal.SIGTERM) is unhandled  # given back afterwards
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert not (copy / ".repair").exists()
        assert _files(copy) == before
    finally:
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait()
    # kill -9 left node.lock behind, naming a dead pid: repair goes on (and finds no peer).
    # A repair killed outright left its scratch folder too: the next one removes it, and a
    # failed repair leaves the node's data exactly as it was.
    assert (data / "node.lock").read_text()
    (data / ".repair").mkdir()
    (data / ".repair" / "chain.db").write_bytes(b"half-built")
    before = _files(data)
    run = _cli("repair", "--data", str(data), "--from", "http://127.0.0.1:1")
    assert run.returncode == 1 and "no peer answered" in run.stdout, run.stdout
    assert "removing .repair, left by an earlier repair" in run.stdout
    assert not (data / ".repair").exists()
    assert _files(data) == before


def _files(data: Path) -> dict[str, str]:
    """The SHA-256 of every file of a data folder, but the repair's own scratch folder and
    the lock file (which only says who holds the folder)."""
    return {
        str(path.relative_to(data)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data.rglob("*"))
        if path.is_file() and path.name != "node.lock" and ".repair" not in path.parts
    }
