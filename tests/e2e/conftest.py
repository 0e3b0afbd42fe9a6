"""A real demo node for browser tests: ``tsunagu demo`` in a subprocess on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

DEMO_PASSWORD = "e2e-demo-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoServer:
    def __init__(self, data: Path, port: int) -> None:
        self.data = data
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.password = DEMO_PASSWORD
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.data.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tsunagu.cli",
                "demo",
                "--data",
                str(self.data),
                "--port",
                str(self.port),
                "--demo-password",
                DEMO_PASSWORD,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"demo server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/api/v1/status", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("demo server did not answer within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def token(self, username: str) -> str:
        response = httpx.post(
            self.url + "/api/v1/auth/token",
            data={"username": username, "password": self.password},
        )
        response.raise_for_status()
        return response.json()["access_token"]


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """One demo consortium for the whole browser session (tests add data, never remove)."""
    root = tmp_path_factory.mktemp("demo")
    server = DemoServer(root / "data", free_port())
    server.start()
    yield server
    server.stop()


def login(page, server: DemoServer, username: str) -> None:
    """Log in through the real login form."""
    page.goto(server.url + "/login")
    page.fill("#username", username)
    page.fill("#password", server.password)
    page.click("main button[type=submit]")
    page.wait_for_load_state("load")
