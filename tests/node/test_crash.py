"""kill -9 at any moment: the node restarts consistent and loses no acknowledged write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tsunagu.demo import create_demo
from tsunagu.platform import discover_apps

PASSWORD = "crash-test-pw"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(data: Path, port: int, log: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "tsunagu.cli", "serve", "--data", str(data)]
    process = subprocess.Popen(
        [*command, "--port", str(port), *extra],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("node did not start")


def _writer(url: str, token: str, prefix: str, acked: list[str], stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            sha = f"{prefix}{n:08x}".ljust(64, "0")[:64]
            try:
                response = client.post(
                    "/api/v1/documents",
                    json={"sha256": sha, "title": f"crash {prefix} {n}", "category": "other"},
                )
            except httpx.HTTPError:
                return  # the node died mid-request: this write was never acknowledged
            if response.status_code == 201:
                acked.append(response.json()["tx_id"])


@pytest.mark.slow
def test_kill_9_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data = tmp_path / "node"
    node, _ = create_demo(data, None, discover_apps(), PASSWORD)
    node.stop()
    log = tmp_path / "node.log"
    rng = random.Random(20261129)
    acked: list[str] = []
    for round_ in range(3):
        port = _free_port()
        # The second round kills a node whose blocks are written by its commit process
        # (serve --commit-process): the kernel takes the child down with it.
        extra = ("--commit-process",) if round_ == 1 else ()
        process = _serve(data, port, log, *extra)
        url = f"http://127.0.0.1:{port}"
        token = httpx.post(
            url + "/api/v1/auth/token", data={"username": "staff1", "password": PASSWORD}
        ).json()["access_token"]
        stop = threading.Event()
        writers = [
            threading.Thread(
                target=_writer, args=(url, token, f"{round_:x}{w:x}", acked, stop), daemon=True
            )
            for w in range(8)
        ]
        for w in writers:
            w.start()
        # Kill only once this round has real load behind it, at a random moment after that.
        wanted = len(acked) + 10
        deadline = time.monotonic() + 60
        while len(acked) < wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(acked) >= wanted, "the node acknowledged no writes under load"
        time.sleep(rng.random() * 1.0)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        stop.set()
        for w in writers:
            w.join(timeout=15)

        # The node restarts into a consistent state that still holds every acknowledged tx.
        port = _free_port()
        process = _serve(data, port, log)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            for tx_id in acked:
                response = client.get(f"/api/v1/tx/{tx_id}")
                assert response.status_code == 200, f"acknowledged {tx_id} lost"
                assert response.json()["result"]["status"] == "committed"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)

    assert len(acked) >= 30
    result = subprocess.run(
        [sys.executable, "-m", "tsunagu.cli", "verify", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
