"""Fixtures for the document tests: an in-process demo consortium (FastAPI TestClient) for
the API and page tests, and the browser tests' `tsunagu demo` server (from tests/e2e)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from democache import demo_copy
from e2e.conftest import demo_server  # noqa: F401 (the browser tests' demo server fixture)
from tsunagu.identity.private import PrivateStore
from tsunagu.node.node import Node

PASSWORD = "pw"


@dataclass
class DemoApp:
    node: Node
    private: PrivateStore
    app: object
    data: Path

    def client(self, username: str | None = None, lang: str | None = None) -> TestClient:
        """A client with its own cookies, logged in through the real login form."""
        client = TestClient(self.app, follow_redirects=False)
        if lang:
            client.cookies.set("lang", lang)
        if username:
            response = client.post("/login", data={"username": username, "password": PASSWORD})
            assert response.status_code == 303, response.text
        return client

    def token(self, username: str) -> str:
        response = self.client().post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def bearer(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


@pytest.fixture(scope="package")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoApp]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    data = tmp_path_factory.mktemp("documents-demo")
    node, private = demo_copy(data, apps, PASSWORD)
    try:
        yield DemoApp(node, private, create_app(node, private, apps), data)
    finally:
        node.stop()
