"""One real local consortium for the whole session: ``tsunagu cluster up`` with 3 etcd members,
3 voting nodes and 1 following node, all real processes on loopback.

Tests may kill and restart processes (``kill -9`` included) but leave every process running
and the consortium agreeing when they finish, so the next test starts from a healthy one.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tsunagu import cluster

PASSWORD = "consortium-test-pw"
# One user per node, so that each signer's transactions go through one node.
WRITERS = ("staff1", "staff2", "coordinator1", "coordinator2")
ETCD_WINDOW = 10


def _free_base() -> int:
    """A base port whose cluster ports are free now. They are picked below Linux's ephemeral
    range (32768 and up), so that no outgoing connection of another test can take one of them
    between this check and the cluster binding it."""
    for _ in range(50):
        base = random.randrange(20000, 32000, 10)
        ports = [base + i for i in range(8)] + [base + 100 + i for i in range(4)]
        ports += [base + 200 + i for i in range(4)]
        try:
            for port in ports:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


class Consortium:
    def __init__(self, root: Path, info: dict[str, Any]) -> None:
        self.root = root
        self.info = info
        self.http = httpx.Client(timeout=30)
        self._tokens: dict[tuple[int, str], str] = {}

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return self.info["nodes"]

    @property
    def urls(self) -> list[str]:
        return [n["url"] for n in self.nodes]

    def entry(self, name: str) -> dict[str, Any]:
        for entry in self.info["nodes"]:
            if entry["id"] == name:
                return entry
        for entry in self.info["etcd"]:
            if entry["name"] == name:
                return entry
        raise KeyError(name)

    # -- processes -----------------------------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        entry = self.entry(name)
        os.kill(entry["pid"], sig)
        deadline = time.monotonic() + 15
        while cluster.running(entry["pid"], entry["argv"]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def start(self, name: str, wait: bool = True) -> None:
        entry = self.entry(name)
        log = f"{name}.log" if name.startswith("etcd") else f"{Path(entry['data_dir']).name}.log"
        cluster.start_process(self.root, entry, log)
        cluster.write(self.root, self.info)
        if wait and "url" in entry:
            cluster.wait_until_up([entry])

    # -- HTTP ----------------------------------------------------------------------------

    def token(self, index: int, username: str) -> str:
        key = (index, username)
        if key not in self._tokens:
            response = self.http.post(
                self.urls[index] + "/api/v1/auth/token",
                data={"username": username, "password": PASSWORD},
            )
            response.raise_for_status()
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    def register(self, index: int, username: str, text: str, timeout: float = 30) -> httpx.Response:
        """Register a document through node ``index`` as ``username``."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        return httpx.post(
            self.urls[index] + "/api/v1/documents",
            json={"sha256": digest, "title": text[:100], "category": "notice"},
            headers={"authorization": "Bearer " + self.token(index, username)},
            timeout=timeout,
        )

    def status(self, index: int) -> dict[str, Any]:
        response = self.http.get(self.urls[index] + "/api/v1/status", timeout=5)
        response.raise_for_status()
        return response.json()

    def wait_agree(self, indexes: list[int] | None = None, timeout: float = 30) -> dict:
        """Wait until the nodes have the same head; return it."""
        indexes = list(range(len(self.nodes))) if indexes is None else indexes
        deadline = time.monotonic() + timeout
        while True:
            try:
                heads = [self.status(i) for i in indexes]
            except httpx.HTTPError:
                heads = []
            keys = {
                (h["height"], h["head_hash"], h["tree_size"], h["root_hash"], h["state_hash"])
                for h in heads
            }
            if heads and len(keys) == 1:
                return heads[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"nodes do not agree: {heads}")
            time.sleep(0.2)

    def verify(self, index: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tsunagu.cli",
                "verify",
                "--data",
                self.nodes[index]["data_dir"],
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    root = tmp_path_factory.mktemp("consortium")
    base = _free_base()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tsunagu.cli",
            "cluster",
            "up",
            "--nodes",
            "3",
            "--followers",
            "1",
            "--dir",
            str(root),
            "--base-port",
            str(base),
            "--demo-password",
            PASSWORD,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        # A small etcd window, so that a node down for a while must fetch from its peers.
        env={**os.environ, "TSUNAGU_ETCD_WINDOW": str(ETCD_WINDOW)},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    info = cluster.load(root)
    yield Consortium(root, info)
    subprocess.run(
        [sys.executable, "-m", "tsunagu.cli", "cluster", "down", "--dir", str(root)],
        timeout=120,
        check=False,
    )
