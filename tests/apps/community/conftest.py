"""Fixtures for the community tests: a real demo node (SQLite chain, solo orderer) with the
community app and its demo data, served in-process through FastAPI's TestClient; and the
browser tests' ``tsunagu demo`` server (from tests/e2e)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from e2e.conftest import demo_server  # noqa: F401 (the browser tests' demo server fixture)
from tsunagu.apps.community.contract import format_time
from tsunagu.apps.community.service import CommunityStore, store_for
from tsunagu.identity.private import PrivateStore
from tsunagu.node.node import Node, Receipt

PASSWORD = "pw"
C = "/api/v1/community"
PROBLEM = "application/problem+json"
STATE_KINDS = (
    "activity",
    "signup",
    "session",
    "vsession",
    "day",
    "volunteer",
    "credential",
    "skill",
    "help",
    "helped",
    "milestone",
)


@dataclass
class Community:
    node: Node
    private: PrivateStore
    app: Any
    data: Path
    http: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> CommunityStore:
        return store_for(self.data, self.private.web_secret)

    def vid(self, username: str) -> str:
        user = self.private.user(username)
        assert user is not None
        return user.key_id

    def headers(self, user: str | None, lang: str = "en") -> dict[str, str]:
        headers = {"Accept-Language": lang}
        if user:
            if user not in self.tokens:
                response = self.http.post(
                    "/api/v1/auth/token", data={"username": user, "password": PASSWORD}
                )
                assert response.status_code == 200, response.text
                self.tokens[user] = response.json()["access_token"]
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return headers

    def get(self, path: str, user: str | None = None) -> httpx.Response:
        return self.http.get(C + path, headers=self.headers(user))

    def post(self, path: str, user: str | None, body: Any = None, lang: str = "en"):
        return self.http.post(C + path, json=body or {}, headers=self.headers(user, lang))

    def put(self, path: str, user: str | None, body: Any = None) -> httpx.Response:
        return self.http.put(C + path, json=body or {}, headers=self.headers(user))

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """The chain height and the whole community state (bad input must change neither)."""
        state = self.node.store.state()
        rows = {
            f"{ns}/{key}": value
            for ns in STATE_KINDS
            for key, value in state.scan(f"community.{ns}")
        }
        assert self.node.head is not None
        return self.node.head.height, rows

    def direct(self, user: str, tx_type: str, payload: dict[str, Any]) -> Receipt:
        """Submit straight to the node, past the API's checks: the contract alone decides."""
        key = self.private.signing_key(self.private.user(user))  # type: ignore[arg-type]
        return self.node.submit_signed(key, "community", tx_type, payload).future.result(30)

    def activity(self, user: str = "organiser1", **fields: Any) -> str:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        body = {
            "category": "story-time",
            "title": "おはなし会",
            "municipality": "hachioji",
            "place": "八王子市 中央図書館",
            "starts_at": format_time(now - timedelta(hours=1)),
            "ends_at": format_time(now + timedelta(hours=2)),
            "capacity": 20,
        }
        body.update(fields)
        response = self.post("/activities", user, body)
        assert response.status_code == 201, response.text
        return response.json()["activity_id"]

    def token(self, aid: str, organiser: str = "organiser1") -> str:
        response = self.get(f"/activities/{aid}/qr-token", organiser)
        assert response.status_code == 200, response.text
        return response.json()["token"]


def at(hours: float) -> str:
    """A chain time ``hours`` from now (negative: in the past), to the minute."""
    moment = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=hours)
    return format_time(moment)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == code, problem
    assert (
        problem["detail_ja"]
        and problem["detail_en"]
        and problem["detail_ja"] != problem["detail_en"]
    )
    return problem


@pytest.fixture(scope="package")
def community(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Community]:
    from tsunagu.demo import create_demo
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = [a for a in discover_apps() if a.name == "community"]
    data = tmp_path_factory.mktemp("community-demo")
    node, private = create_demo(data, None, apps, PASSWORD)
    app = create_app(node, private, apps)
    try:
        yield Community(node, private, app, data, TestClient(app, follow_redirects=False))
    finally:
        node.stop()
