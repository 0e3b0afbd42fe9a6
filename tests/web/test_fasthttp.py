"""The HTTP protocol ``tsunagu serve`` runs (``tsunagu.web.fasthttp``), over real sockets.

``POST /api/v1/tx`` is answered by the protocol itself, without the ASGI application; every
other request, and every tx request it does not fully understand, reaches the application as
before. The application here is wrapped to count the requests that reach it, so each test
also shows which path answered.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from democache import demo_copy
from liveserver import serving
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx

PASSWORD = "pw"
CHAIN = "tsunagu-tama-demo"
KEY = SigningKey.from_seed(hashlib.sha256(b"tsunagu fasthttp test key").digest())
LIMIT = 256 * 1024
_seq = iter(range(1, 10**6))


class Counting:
    """The application, counting the HTTP requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state  # what the protocol reads the node from
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("fasthttp"), apps, PASSWORD)
    admin = private.signing_key(private.user("admin"))
    payload = {"public_key": KEY.public_key.hex(), "org": "hachioji", "roles": ["staff"]}
    receipt = node.submit_signed(admin, "identity", "member.add", payload).future.result(30)
    assert receipt.status == "committed", receipt
    app = Counting(create_app(node, private, apps))
    try:
        with serving(app) as port:
            yield {
                "node": node,
                "app": app,
                "port": port,
                "http": TestClient(app.app),  # the ASGI path, to compare answers with
            }
    finally:
        node.stop()


def envelope(seq: int | None = None, **changes: Any) -> dict[str, Any]:
    n = next(_seq)
    payload = {
        "sha256": hashlib.sha256(b"fasthttp test %d" % n).hexdigest(),
        "title": "通信路のテスト",
        "category": "notice",
    }
    body = build_tx(CHAIN, "documents", "register", payload, KEY, seq or 1000 + n).to_json()
    body.update(changes)
    return body


def request(body: bytes, path: str = "/api/v1/tx", method: str = "POST", **headers: str) -> bytes:
    fields = {"Host": "127.0.0.1", "Content-Type": "application/json"}
    fields.update({k.replace("_", "-"): v for k, v in headers.items()})
    if "Content-Length" not in fields and "Transfer-Encoding" not in fields:
        fields["Content-Length"] = str(len(body))
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body


class Conn:
    """One client connection, reading whole responses (status, headers, body) in order."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"connection closed mid-response: {self.buffer!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        if status == 100:
            return self.response()
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def conn(served: dict[str, Any]) -> Iterator[Conn]:
    c = Conn(served["port"])
    yield c
    c.close()


def height(served: dict[str, Any]) -> int:
    return served["node"].head.height


def test_a_transaction_is_answered_by_the_protocol_once_committed(
    served: dict[str, Any], conn: Conn
) -> None:
    app, before = served["app"], served["app"].calls
    body = envelope()
    conn.send(request(json.dumps(body).encode()))
    status, headers, raw = conn.response()
    assert status == 201, raw
    assert headers["content-type"] == "application/json"
    answer = json.loads(raw)
    assert set(answer) == {"tx_id", "height", "index", "status"}
    assert answer["status"] == "committed"
    assert app.calls == before, "the tx request went through the ASGI application"
    assert height(served) >= answer["height"]
    # the same keep-alive connection then serves the application's routes
    conn.send(request(b"", f"/api/v1/tx/{answer['tx_id']}", "GET"))
    status, _, raw = conn.response()
    assert status == 200, raw
    stored = json.loads(raw)
    assert (stored["tx_id"], stored["height"], stored["index"]) == (
        answer["tx_id"],
        answer["height"],
        answer["index"],
    )
    assert stored["tx"] == body
    assert app.calls == before + 1


def test_pipelined_requests_are_answered_in_order(served: dict[str, Any], conn: Conn) -> None:
    first = envelope()
    second = envelope(seq=first["seq"] + 1)
    conn.send(
        request(json.dumps(first).encode())
        + request(b"", "/api/v1/status", "GET")
        + request(json.dumps(second).encode())
    )
    s1, _, b1 = conn.response()
    s2, _, b2 = conn.response()
    s3, _, b3 = conn.response()
    assert (s1, s2, s3) == (201, 200, 201), (b1, b2, b3)
    assert "height" in json.loads(b2)
    one, three = json.loads(b1), json.loads(b3)
    assert three["index"] > one["index"]
    assert three["height"] >= one["height"]


@pytest.mark.parametrize("language", ["en", "ja"])
def test_refusals_are_the_applications_own(
    served: dict[str, Any], conn: Conn, language: str
) -> None:
    """A replayed sequence number and a bad signature, in either language: the protocol's
    problem+json is byte for byte what the ASGI route answers, and nothing is written."""
    http: TestClient = served["http"]
    used = envelope()
    conn.send(request(json.dumps(used).encode()))
    assert conn.response()[0] == 201
    flipped = used["signature"][:5] + ("0" if used["signature"][5] != "0" else "1")
    cases = [
        (envelope(seq=used["seq"]), 409),  # the sequence number is taken
        ({**used, "signature": flipped + used["signature"][6:]}, 400),
        ({**used, "chain_id": "another-chain"}, None),
    ]
    before = height(served)
    calls = served["app"].calls
    for body, status in cases:
        raw = json.dumps(body).encode()
        conn.send(request(raw, Accept_Language=language))
        got_status, headers, got = conn.response()
        expected = http.post(
            "/api/v1/tx",
            content=raw,
            headers={"content-type": "application/json", "accept-language": language},
        )
        assert headers["content-type"] == "application/problem+json"
        assert got_status == expected.status_code
        if status is not None:
            assert got_status == status
        assert json.loads(got) == expected.json()
    assert served["app"].calls == calls, "a refusal went through the ASGI application"
    assert height(served) == before
    problem = json.loads(got)
    if language == "ja":
        assert any("\u3040" <= ch <= "\u30ff" for ch in problem["detail"]), problem


def test_what_it_does_not_take_reaches_the_application(served: dict[str, Any], conn: Conn) -> None:
    app = served["app"]
    before = height(served)

    calls = app.calls
    conn.send(request(b"[1, 2]"))  # JSON, not an object: the route explains
    status, _, raw = conn.response()
    assert status == 422 and json.loads(raw)["code"] == "invalid_input", raw
    assert app.calls == calls + 1

    calls = app.calls
    conn.send(request(json.dumps(envelope()).encode(), Content_Type="text/plain"))
    status, _, raw = conn.response()
    assert 400 <= status < 500, raw
    assert app.calls == calls + 1

    calls = app.calls
    large = Conn(served["port"])  # answered before its body: the connection is done after
    try:
        large.send(request(b"{}", Content_Length=str(LIMIT + 1)))  # declared too large
        status, _, raw = large.response()
    finally:
        large.close()
    assert status == 413 and json.loads(raw)["code"] == "body_too_large", raw
    assert app.calls == calls + 1
    assert height(served) == before

    # the route takes what the protocol passed on: Expect: 100-continue and a chunked body
    calls = app.calls
    body = json.dumps(envelope()).encode()
    conn.send(request(b"", Content_Length=str(len(body)), Expect="100-continue"))
    conn.send(body)
    status, _, raw = conn.response()
    assert status == 201, raw
    assert app.calls == calls + 1

    calls = app.calls
    body = json.dumps(envelope()).encode()
    chunked = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
    conn.send(request(chunked, Transfer_Encoding="chunked"))
    status, _, raw = conn.response()
    assert status == 201, raw
    assert app.calls == calls + 1


def test_connection_close_is_kept(served: dict[str, Any], conn: Conn) -> None:
    conn.send(request(json.dumps(envelope()).encode(), Connection="close"))
    status, headers, _ = conn.response()
    assert status == 201
    assert headers.get("connection") == "close"
    assert conn.closed_by_server()


def test_a_client_that_leaves_early_does_not_stop_the_server(served: dict[str, Any]) -> None:
    """The transaction was admitted, so its block still commits; nobody is answered, and the
    next client is served as usual."""
    body = envelope()
    leaver = Conn(served["port"])
    leaver.send(request(json.dumps(body).encode()))
    leaver.close()
    http: TestClient = served["http"]
    tx_id = build_tx(CHAIN, "documents", "register", body["payload"], KEY, body["seq"]).id
    deadline = time.monotonic() + 30
    while http.get(f"/api/v1/tx/{tx_id}").status_code != 200:
        assert time.monotonic() < deadline, "the admitted transaction never committed"
        time.sleep(0.05)
    after = Conn(served["port"])
    try:
        after.send(request(json.dumps(envelope()).encode()))
        assert after.response()[0] == 201
    finally:
        after.close()


def test_an_unexpected_failure_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    """Not a refusal but a fault: a 500 problem without its details, and the traceback in
    the server's log for the operator."""
    from tsunagu.web import fasttx

    class Failing:
        def submit_queued(self, tx: Any) -> None:
            raise RuntimeError("the disk is on fire")

    with caplog.at_level("ERROR", logger="tsunagu.web.fasttx"):
        status, media, body = fasttx.submit(Failing(), envelope(), ja=True)  # type: ignore[misc]
    assert (status, media) == (500, b"application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == 500 and "fire" not in problem["detail"]
    assert any("the disk is on fire" in (r.exc_text or "") for r in caplog.records)
