"""One eco demo consortium (real SQLite chain, real orderer) shared by the eco tests, and
helpers to drive it the way clients do: signed transactions, receipts, state snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tsunagu.apps.eco.devices import device_id
from tsunagu.identity.private import PrivateStore
from tsunagu.ledger.block import format_timestamp
from tsunagu.ledger.keys import SigningKey
from tsunagu.node.node import Node, Receipt

PASSWORD = "pw"


def ts(moment: datetime) -> str:
    return format_timestamp(moment)


def ago(**delta: float) -> str:
    return ts(datetime.now(UTC) - timedelta(**delta))


@dataclass
class Device:
    id: str
    key: SigningKey
    kind: str
    at: datetime
    a: int
    b: int


@dataclass
class EcoChain:
    node: Node
    private: PrivateStore

    def key(self, who: str | SigningKey) -> SigningKey:
        if isinstance(who, SigningKey):
            return who
        return self.private.signing_key(self.private.user(who))

    def submit(
        self, who: str | SigningKey, type_: str, payload: dict[str, Any], app: str = "eco"
    ) -> Receipt:
        pending = self.node.submit_signed(self.key(who), app, type_, payload)
        return pending.future.result(timeout=30)

    def ok(self, who: str | SigningKey, type_: str, payload: dict[str, Any], app: str = "eco"):
        receipt = self.submit(who, type_, payload, app)
        assert receipt.status == "committed", receipt
        return receipt

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.node.store.state().get(f"eco.{kind}", key)

    def snapshot(self) -> dict[str, Any]:
        state = self.node.store.state()
        kinds = ("factor", "device", "account", "reward", "voucher", "programme", "report", "lot")
        return {f"{k}/{key}": v for k in kinds for key, v in state.scan(f"eco.{k}")}

    def refused(
        self, who: str | SigningKey, type_: str, payload: dict[str, Any], code: str
    ) -> Receipt:
        before = self.snapshot()
        receipt = self.submit(who, type_, payload)
        assert receipt.status == "rejected", receipt
        assert receipt.code == code, receipt
        assert receipt.reason_ja and receipt.reason_ja != receipt.reason, receipt
        assert self.snapshot() == before
        return receipt

    def device(
        self, owner: str = "resident1", kind: str = "pv", rated_w: int = 4_000, hours: float = 48
    ) -> Device:
        """A fresh device of ``owner``, approved, with its baseline ``hours`` ago."""
        key = SigningKey.generate()
        start = datetime.now(UTC) - timedelta(hours=hours)
        baseline = {"at": ts(start), "a": 1_000, "b": 500}
        payload = {
            "kind": kind,
            "rated_w": rated_w,
            "public_key": key.public_key.hex(),
            "consent": True,
            "baseline": baseline,
        }
        self.ok(owner, "device.register", payload)
        dev = device_id(key.public_key.hex())
        record = self.get("device", dev)
        staff = "envstaff1" if record["municipality"] == "hachioji" else "admin"
        self.ok(staff, "device.approve", {"device": dev})
        self.ok(
            staff,
            "device.add",
            {"public_key": key.public_key.hex(), "org": record["org"]},
            app="identity",
        )
        return Device(dev, key, kind, start, 1_000, 500)

    def reading(self, d: Device, at: datetime, a: int, b: int) -> tuple[str, dict[str, Any]]:
        names = ("generated_wh", "exported_wh") if d.kind == "pv" else ("charged_wh", "distance_m")
        return f"reading.{d.kind}", {"device": d.id, "at": ts(at), names[0]: a, names[1]: b}


@pytest.fixture(scope="session")
def eco_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcoChain]:
    from tsunagu.demo import create_demo
    from tsunagu.platform import discover_apps

    apps = [a for a in discover_apps() if a.name == "eco"]
    node, private = create_demo(tmp_path_factory.mktemp("eco"), None, apps, password=PASSWORD)
    try:
        yield EcoChain(node, private)
    finally:
        node.stop()


PROBLEM = "application/problem+json"


class Api:
    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.tokens: dict[str, str] = {}

    def h(self, user: str | None, lang: str = "en") -> dict[str, str]:
        headers = {"Accept-Language": lang}
        if user:
            if user not in self.tokens:
                r = self.http.post(
                    "/api/v1/auth/token", data={"username": user, "password": PASSWORD}
                )
                self.tokens[user] = r.json()["access_token"]
            headers["Authorization"] = "Bearer " + self.tokens[user]
        return headers

    def get(self, path: str, user: str | None = None, **kw: Any):
        return self.http.get(path, headers=self.h(user, kw.pop("lang", "en")), **kw)

    def post(self, path: str, user: str | None, body: Any = None, lang: str = "en"):
        return self.http.post(path, headers=self.h(user, lang), json=body)


@pytest.fixture(scope="module")
def api(eco_chain: EcoChain) -> Iterator[Api]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = [a for a in discover_apps() if a.name == "eco"]
    app = create_app(eco_chain.node, eco_chain.private, apps)
    with TestClient(app, follow_redirects=False) as http:
        yield Api(http)
