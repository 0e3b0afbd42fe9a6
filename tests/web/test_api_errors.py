"""Bad requests to the API: each is an RFC 9457 problem and changes nothing.

Every test here runs against a real demo node and, through the ``unchanged`` fixture, compares
``/api/v1/status`` before and after the bad request: same height, same tree size, same head.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from fastapi.testclient import TestClient

from democache import demo_copy
from liveserver import serving
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx

PASSWORD = "pw"
CHAIN = "tsunagu-tama-demo"
CLIENT_KEY = SigningKey.from_seed(hashlib.sha256(b"tsunagu web error test key").digest())
REVOKED_KEY = SigningKey.from_seed(hashlib.sha256(b"tsunagu web revoked key").digest())
REPLAY_KEY = SigningKey.from_seed(hashlib.sha256(b"tsunagu web replay key").digest())
STRANGER = SigningKey.from_seed(hashlib.sha256(b"never registered").digest())
LIMIT = 256 * 1024
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("api-errors"), apps, PASSWORD)
    admin = private.signing_key(private.user("admin"))
    for key in (CLIENT_KEY, REVOKED_KEY, REPLAY_KEY):
        payload = {"public_key": key.public_key.hex(), "org": "hachioji", "roles": ["staff"]}
        receipt = node.submit_signed(admin, "identity", "member.add", payload).future.result(30)
        assert receipt.status == "committed", receipt
    receipt = node.submit_signed(
        admin, "identity", "member.revoke", {"key_id": REVOKED_KEY.key_id}
    ).future.result(30)
    assert receipt.status == "committed", receipt
    app = create_app(node, private, apps)
    try:
        yield {"node": node, "app": app, "http": TestClient(app)}
    finally:
        node.stop()


@pytest.fixture(scope="module")
def http(demo: dict[str, Any]) -> TestClient:
    return demo["http"]


@pytest.fixture(scope="module")
def staff_token(http: TestClient) -> str:
    response = http.post("/api/v1/auth/token", data={"username": "staff1", "password": PASSWORD})
    return response.json()["access_token"]


def _status(http: TestClient) -> tuple[int, int, str, str]:
    s = http.get("/api/v1/status").json()
    return s["height"], s["tree_size"], s["head_hash"], s["root_hash"]


@pytest.fixture
def unchanged(http: TestClient, demo: dict[str, Any]) -> Iterator[None]:
    """Asserts that the test's requests left the chain exactly as it was."""
    before = _status(http)
    yield
    assert _status(http) == before, "a refused request changed the chain"


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM
    problem = response.json()
    for member in ("type", "title", "status", "detail"):
        assert member in problem, member
    assert isinstance(problem["type"], str) and problem["type"].startswith("https://")
    assert isinstance(problem["title"], str) and problem["title"]
    assert problem["status"] == status
    assert isinstance(problem["detail"], str) and problem["detail"]
    if code is not None:
        assert problem["code"] == code, problem
        assert problem["type"].endswith("/" + code)
    return problem


_seq = iter(range(1, 10**6))


def _signed(
    key: SigningKey = CLIENT_KEY, seq: int | None = None, payload: dict | None = None, **changes
) -> dict[str, Any]:
    payload = payload or {
        "sha256": hashlib.sha256(b"error test %d" % next(_seq)).hexdigest(),
        "title": "エラーテスト",
        "category": "notice",
    }
    args = {"chain_id": CHAIN, "app": "documents", "type": "register"}
    args.update(changes)
    seq = seq if seq is not None else 1000 + next(_seq)
    tx = build_tx(args["chain_id"], args["app"], args["type"], payload, key, seq)
    return tx.to_json()


def _post_raw(http: TestClient, path: str, content: bytes, **headers: str) -> Any:
    return http.post(path, content=content, headers={"content-type": "application/json", **headers})


# --- malformed JSON, wrong types, unknown fields ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"chain_id": ', 400, "malformed_json"),
        (b"{bad json}", 400, "malformed_json"),
        (b'{"a": 1,}', 400, "malformed_json"),
        (b"\xff\xfe\x00{", 400, None),
        (b"[1, 2]", 422, "invalid_input"),
        (b'"a string"', 422, "invalid_input"),
        (b"null", 422, "invalid_input"),
        (b"", 422, "invalid_input"),
    ],
)
def test_malformed_body_on_tx(
    http: TestClient, unchanged: None, body: bytes, status: int, code: str | None
) -> None:
    assert_problem(_post_raw(http, "/api/v1/tx", body), status, code)


def test_malformed_json_on_documents(http: TestClient, staff_token: str, unchanged: None) -> None:
    response = _post_raw(
        http, "/api/v1/documents", b'{"sha256": "', authorization=f"Bearer {staff_token}"
    )
    assert_problem(response, 400, "malformed_json")


def test_json_sent_as_text_is_refused(http: TestClient, unchanged: None) -> None:
    response = http.post(
        "/api/v1/tx", content=json.dumps(_signed()), headers={"content-type": "text/plain"}
    )
    assert_problem(response, 422, "invalid_input")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", "5"),
        ("seq", True),
        ("seq", 1.5),
        ("seq", 0),
        ("payload", []),
        ("payload", "{}"),
        ("chain_id", 7),
        ("app", None),
        ("type", ["register"]),
        ("signer", 12),
        ("signature", None),
    ],
)
def test_wrong_types_in_the_envelope(
    http: TestClient, unchanged: None, field: str, value: Any
) -> None:
    envelope = {**_signed(), field: value}
    problem = assert_problem(http.post("/api/v1/tx", json=envelope), 400, "malformed_transaction")
    assert field in problem["detail_en"]


def test_uppercase_hex_in_the_envelope(http: TestClient, unchanged: None) -> None:
    envelope = _signed()
    for field in ("signer", "signature"):
        changed = {**envelope, field: envelope[field].upper()}
        assert_problem(http.post("/api/v1/tx", json=changed), 400, "malformed_transaction")


@pytest.mark.parametrize(
    "body",
    [
        {"sha256": "a" * 64, "title": 5, "category": "notice"},
        {"sha256": "A" * 64, "title": "t", "category": "notice"},
        {"sha256": "a" * 63, "title": "t", "category": "notice"},
        {"sha256": "a" * 64, "title": "", "category": "notice"},
        {"sha256": "a" * 64, "title": "t", "category": "poem"},
        {"sha256": "a" * 64, "title": "t"},
        ["a" * 64, "t", "notice"],
    ],
)
def test_wrong_types_in_documents(
    http: TestClient, staff_token: str, unchanged: None, body: Any
) -> None:
    response = http.post(
        "/api/v1/documents", json=body, headers={"Authorization": f"Bearer {staff_token}"}
    )
    assert_problem(response, 422, "invalid_input")


def test_unknown_fields_in_the_envelope(http: TestClient, unchanged: None) -> None:
    for extra in ({"extra": 1}, {"id": "x"}, {"Signature": "00"}):
        envelope = {**_signed(), **extra}
        problem = assert_problem(
            http.post("/api/v1/tx", json=envelope), 400, "malformed_transaction"
        )
        assert "unknown fields" in problem["detail_en"]
    missing = _signed()
    del missing["seq"]
    assert_problem(http.post("/api/v1/tx", json=missing), 400, "malformed_transaction")


def test_a_number_with_a_fraction_is_refused_before_it_is_signed_into_a_leaf(
    http: TestClient, unchanged: None
) -> None:
    """A client signs canonical JSON, which writes 1.0 as 1: the signature verifies, but the
    envelope holds a float and the leaf an integer. Such a transaction is refused at admission
    (else a contract could refuse the float and a replay accept the integer)."""
    envelope = _signed()
    envelope["payload"]["version"] = 1  # any member: an integer the float form is signed as
    signed = build_tx(
        CHAIN, "documents", "register", envelope["payload"], CLIENT_KEY, envelope["seq"]
    ).to_json()
    body = json.dumps(signed).replace('"version": 1', '"version": 1.0').encode()
    assert b'"version": 1.0' in body
    problem = assert_problem(
        _post_raw(http, "/api/v1/tx", body, **{"accept-language": "ja"}),
        400,
        "malformed_transaction",
    )
    assert "整数" in problem["detail"] and "whole" in problem["detail_en"]


def test_unknown_fields_in_documents(http: TestClient, staff_token: str, unchanged: None) -> None:
    body = {"sha256": "b" * 64, "title": "t", "category": "notice", "org": "tachikawa"}
    response = http.post(
        "/api/v1/documents", json=body, headers={"Authorization": f"Bearer {staff_token}"}
    )
    problem = assert_problem(response, 422, "invalid_input")
    assert any(e["loc"][-1] == "org" for e in problem["errors"])
    withdraw = http.post(
        f"/api/v1/documents/{'b' * 64}/withdraw",
        json={"reason": "r", "force": True},
        headers={"Authorization": f"Bearer {staff_token}"},
    )
    assert_problem(withdraw, 422, "invalid_input")


def test_documents_without_or_with_the_wrong_login(http: TestClient, unchanged: None) -> None:
    body = {"sha256": "c" * 64, "title": "t", "category": "notice"}
    assert_problem(http.post("/api/v1/documents", json=body), 401, "unauthorized")
    resident = http.post(
        "/api/v1/auth/token", data={"username": "resident1", "password": PASSWORD}
    ).json()["access_token"]
    response = http.post(
        "/api/v1/documents", json=body, headers={"Authorization": f"Bearer {resident}"}
    )
    assert_problem(response, 403, "forbidden")


def test_login_form_errors(http: TestClient, unchanged: None) -> None:
    assert_problem(http.post("/api/v1/auth/token", data={"username": "staff1"}), 422)
    assert_problem(
        http.post("/api/v1/auth/token", data={"username": "x" * 65, "password": "p"}), 422
    )
    assert_problem(
        http.post("/api/v1/auth/token", data={"username": "staff1", "password": "nope"}),
        401,
        "bad_credentials",
    )


# --- oversized bodies -------------------------------------------------------------------------


def test_oversized_body_with_content_length(
    http: TestClient, staff_token: str, unchanged: None
) -> None:
    big = json.dumps({**_signed(), "payload": {"filler": "x" * (LIMIT + 1)}}).encode()
    assert_problem(_post_raw(http, "/api/v1/tx", big), 413, "body_too_large")
    doc = json.dumps({"sha256": "d" * 64, "title": "x" * (LIMIT + 1), "category": "notice"})
    response = _post_raw(
        http, "/api/v1/documents", doc.encode(), authorization=f"Bearer {staff_token}"
    )
    assert_problem(response, 413, "body_too_large")


def test_transaction_over_64_kib_is_refused(http: TestClient, unchanged: None) -> None:
    # Correctly signed, under the body limit, over 64 KiB (build_tx itself refuses to make it).
    body = {
        "chain_id": CHAIN,
        "app": "documents",
        "type": "register",
        "payload": {"sha256": "e" * 64, "title": "x" * (70 * 1024), "category": "notice"},
        "signer": CLIENT_KEY.key_id,
        "seq": 900_000,
    }
    envelope = {**body, "signature": CLIENT_KEY.sign(rfc8785.dumps(body)).hex()}
    problem = assert_problem(http.post("/api/v1/tx", json=envelope), 400, "malformed_transaction")
    assert "65536" in problem["detail_en"]


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    yield b'{"chain_id": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def test_oversized_chunked_body_changes_nothing(http: TestClient, unchanged: None) -> None:
    """No Content-Length: the limit must hold while the body streams in."""
    response = http.post(
        "/api/v1/tx",
        content=_chunks(LIMIT + 64 * 1024),
        headers={"content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)


def test_oversized_chunked_body_is_413(http: TestClient) -> None:
    response = http.post(
        "/api/v1/tx",
        content=_chunks(LIMIT + 64 * 1024),
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413, "body_too_large")


@pytest.fixture(scope="module")
def server(demo: dict[str, Any]) -> Iterator[int]:
    with serving(demo["app"]) as port:
        yield port


def _raw_chunked_post(
    port: int, path: str, total: int, extra_headers: str = ""
) -> tuple[int, dict, bytes]:
    """POST a chunked body of ``total`` bytes over a raw socket; return status, headers, body.

    A reader thread collects the answer while we send, because the server may answer and close
    before the whole body is sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    received = bytearray()

    def read() -> None:
        try:
            while chunk := sock.recv(65536):
                received.extend(chunk)
        except OSError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\nConnection: close\r\n{extra_headers}\r\n"
    )
    try:
        sock.sendall(head.encode())
        for piece in _chunks(total):
            sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server answered and closed early: fine
    reader.join(timeout=30)
    sock.close()
    head_bytes, _, body = bytes(received).partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    return status, headers, body[: int(headers.get("content-length", len(body)))]


def test_oversized_chunked_body_over_real_http(
    server: int, http: TestClient, unchanged: None
) -> None:
    status, headers, body = _raw_chunked_post(server, "/api/v1/tx", LIMIT + 64 * 1024)
    assert 400 <= status < 500
    assert headers["content-type"].split(";")[0] == PROBLEM
    problem = json.loads(body)
    assert problem["status"] == status
    assert {"type", "title", "status", "detail"} <= set(problem)


def test_oversized_chunked_body_over_real_http_is_413(server: int) -> None:
    status, _, body = _raw_chunked_post(server, "/api/v1/tx", LIMIT + 64 * 1024)
    assert status == 413
    assert json.loads(body)["code"] == "body_too_large"


def test_a_small_chunked_body_reaches_the_route(server: int, http: TestClient) -> None:
    """The raw-socket helper itself works: a small chunked body reaches the route."""
    status, _, body = _raw_chunked_post(server, "/api/v1/tx", 10)
    assert status == 400
    assert json.loads(body)["code"] == "malformed_json"


# --- signatures, signers, chains, sequence numbers --------------------------------------------


def test_bad_signatures(http: TestClient, unchanged: None) -> None:
    envelope = _signed()
    flipped = (
        envelope["signature"][:10]
        + ("0" if envelope["signature"][10] != "0" else "1")
        + envelope["signature"][11:]
    )
    cases = [
        {**envelope, "signature": flipped},
        {**envelope, "signature": _signed(key=STRANGER)["signature"]},
        {**envelope, "payload": {**envelope["payload"], "title": "改ざん"}},
        {**envelope, "seq": envelope["seq"] + 1},
        {**envelope, "signature": "0" * 128},
    ]
    for case in cases:
        assert_problem(http.post("/api/v1/tx", json=case), 400, "bad_signature")


def test_unknown_and_revoked_signers(http: TestClient, unchanged: None) -> None:
    assert_problem(http.post("/api/v1/tx", json=_signed(key=STRANGER)), 403, "unknown_signer")
    assert_problem(http.post("/api/v1/tx", json=_signed(key=REVOKED_KEY)), 403, "unknown_signer")


def test_wrong_chain_id(http: TestClient, unchanged: None) -> None:
    for chain in ("tsunagu-tama-test", "TSUNAGU-TAMA-DEMO", "x"):
        problem = assert_problem(
            http.post("/api/v1/tx", json=_signed(chain_id=chain)), 400, "wrong_chain"
        )
        assert CHAIN in problem["detail_en"]


def test_replayed_and_lower_sequence_numbers(http: TestClient) -> None:
    """REPLAY_KEY is used by this test only, so its sequence numbers are known exactly."""
    envelope = _signed(key=REPLAY_KEY, seq=5)
    assert http.post("/api/v1/tx", json=envelope).status_code == 201
    before = _status(http)
    replay = assert_problem(http.post("/api/v1/tx", json=envelope), 409, "replayed_seq")
    assert replay["last_seq"] == 5
    assert "tx_id" not in replay
    same_seq = assert_problem(
        http.post("/api/v1/tx", json=_signed(key=REPLAY_KEY, seq=5)), 409, "replayed_seq"
    )
    assert same_seq["last_seq"] == 5
    for seq in (4, 1):
        lower = assert_problem(
            http.post("/api/v1/tx", json=_signed(key=REPLAY_KEY, seq=seq)), 409, "replayed_seq"
        )
        assert lower["last_seq"] == 5
    assert _status(http) == before
    # A gap is fine, and the replayed envelope stays refused afterwards.
    assert http.post("/api/v1/tx", json=_signed(key=REPLAY_KEY, seq=100)).status_code == 201
    after = _status(http)
    again = assert_problem(http.post("/api/v1/tx", json=envelope), 409, "replayed_seq")
    assert again["last_seq"] == 100
    assert _status(http) == after


# --- 404, 405, bad query parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/blocks/999999",
        "/api/v1/tx/" + "0" * 64,
        "/api/v1/tx/not-an-id",
        "/api/v1/nope",
        "/api/v2/status",
        "/api/v1/documents/" + "f" * 64,
    ],
)
def test_not_found_is_a_problem(http: TestClient, unchanged: None, path: str) -> None:
    assert_problem(http.get(path), 404, "not_found")


def test_unknown_route_post_is_a_problem(http: TestClient, unchanged: None) -> None:
    assert_problem(http.post("/api/v1/transactions", json=_signed()), 404, "not_found")
    assert_problem(http.get("/api/v1/tx"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/log/entries", {"start": 10**6, "end": 10**6}),
        ("/api/v1/log/entries", {"start": 3, "end": 2}),
        ("/api/v1/log/entries", {"start": -1, "end": 2}),
        ("/api/v1/log/entries", {"start": "a", "end": 2}),
        ("/api/v1/log/entries", {}),
        ("/api/v1/log/proof/inclusion", {"index": 0, "tree_size": 10**6}),
        ("/api/v1/log/proof/inclusion", {"index": 5, "tree_size": 5}),
        ("/api/v1/log/proof/inclusion", {"index": 0, "tree_size": 0}),
        ("/api/v1/log/proof/consistency", {"first": 3, "second": 2}),
        ("/api/v1/log/proof/consistency", {"first": 0, "second": 2}),
        ("/api/v1/log/proof/consistency", {"first": 1, "second": 10**6}),
        ("/api/v1/blocks", {"limit": 0}),
        ("/api/v1/blocks", {"limit": 101}),
        ("/api/v1/blocks/abc", {}),
    ],
)
def test_bad_query_parameters(
    http: TestClient, unchanged: None, path: str, params: dict[str, Any]
) -> None:
    assert_problem(http.get(path, params=params), 422, "invalid_input")


# --- language ---------------------------------------------------------------------------------


def _japanese(text: str) -> bool:
    return any("\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff" for c in text)


def test_accept_language_ja_gives_japanese_details(http: TestClient, unchanged: None) -> None:
    ja = {"Accept-Language": "ja"}
    envelope = _signed()
    cases = [
        (http.get("/api/v1/tx/" + "0" * 64, headers=ja), 404, "その取引は見つかりません。"),
        (
            http.get("/api/v1/blocks/999999", headers=ja),
            404,
            "高さ 999999 のブロックはありません。",
        ),
        (
            http.post("/api/v1/tx", json={**envelope, "signature": "0" * 128}, headers=ja),
            400,
            "取引の署名を検証できませんでした。",
        ),
        (
            _post_raw(http, "/api/v1/tx", b"{", **ja),
            400,
            "送信された内容が正しいJSONではありません。",
        ),
        (
            http.post("/api/v1/tx", json=_signed(key=STRANGER), headers=ja),
            403,
            "署名者の鍵はこのチェーンに登録されていないか、失効しています。",
        ),
        (
            http.post(
                "/api/v1/auth/token", data={"username": "staff1", "password": "x"}, headers=ja
            ),
            401,
            "ユーザー名またはパスワードが正しくありません。",
        ),
    ]
    for response, status, detail in cases:
        problem = assert_problem(response, status)
        assert problem["detail"] == detail == problem["detail_ja"]
        assert problem["detail_en"] != problem["detail_ja"]
        assert _japanese(problem["detail"])
    for header in ({"Accept-Language": "ja-JP,ja;q=0.9"}, {"Accept-Language": "ja-JP"}):
        problem = assert_problem(http.get("/api/v1/nope", headers=header), 404)
        assert problem["detail"] == problem["detail_ja"] and _japanese(problem["detail"])


def test_english_is_the_api_default(http: TestClient, unchanged: None) -> None:
    for headers in ({}, {"Accept-Language": "en"}, {"Accept-Language": "fr"}):
        problem = assert_problem(http.get("/api/v1/tx/" + "0" * 64, headers=headers), 404)
        assert problem["detail"] == problem["detail_en"] == "No such transaction."


def test_body_too_large_in_japanese(http: TestClient) -> None:
    big = b"x" * (LIMIT + 1)
    problem = assert_problem(
        _post_raw(http, "/api/v1/tx", big, **{"Accept-Language": "ja"}), 413, "body_too_large"
    )
    assert problem["detail"] == problem["detail_ja"]


# --- the plain-ASGI write path (web/fasttx.py) ---------------------------------------------


def test_json_with_a_charset_takes_the_fast_path(http: TestClient) -> None:
    envelope = _signed()
    response = _post_raw(
        http,
        "/api/v1/tx",
        json.dumps(envelope).encode(),
        **{"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    receipt = response.json()
    assert list(receipt) == ["tx_id", "height", "index", "status"]
    assert receipt["status"] == "committed"
    stored = http.get(f"/api/v1/tx/{receipt['tx_id']}").json()
    assert stored["result"]["status"] == "committed"


def test_a_contract_refusal_is_a_problem_with_its_tx_id(http: TestClient) -> None:
    """The fast path answers a refusal recorded in a block the way the route did: 422
    problem+json naming the tx, the block and the index."""
    payload = {"sha256": "ab" * 32, "title": "二重登録", "category": "notice"}
    first = http.post("/api/v1/tx", json=_signed(payload=payload))
    assert first.status_code == 201
    again = http.post("/api/v1/tx", json=_signed(payload=payload))
    problem = assert_problem(again, again.status_code)
    assert again.status_code in (409, 422)
    assert problem["tx_id"] and problem["height"] >= first.json()["height"]
    japanese = http.post(
        "/api/v1/tx", json=_signed(payload=payload), headers={"accept-language": "ja"}
    ).json()
    assert japanese["detail"] == japanese["detail_ja"] != japanese["detail_en"]


# --- a bug still answers in the API's format ------------------------------------------------


def _broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected fault")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_an_unexpected_failure_is_a_500_problem(
    demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    """The FastAPI handler and the plain-ASGI write path give the same 500 problem."""
    http = TestClient(demo["app"], raise_server_exceptions=False)
    headers = {"accept-language": lang}
    monkeypatch.setattr(demo["node"], "status", _broken)
    monkeypatch.setattr(demo["node"], "submit_queued", _broken)
    read = assert_problem(http.get("/api/v1/status", headers=headers), 500, "internal_error")
    write = assert_problem(
        http.post("/api/v1/tx", json=_signed(), headers=headers), 500, "internal_error"
    )
    assert read["detail"] == write["detail"] == read[f"detail_{lang}"]
    assert "injected fault" not in json.dumps(read) + json.dumps(write)
