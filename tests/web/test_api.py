"""The platform API over a real demo node (real SQLite chain, real orderer) with TestClient.

Everything the API returns is checked against independent recomputation: RFC 8785 + hashlib for
hashes, ``cryptography`` for signatures, and the RFC 9162 functions of ``tsunagu.ledger.merkle``
over leaves fetched from the API.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from democache import demo_copy
from tsunagu.ledger import merkle
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx

PASSWORD = "pw"
CLIENT_KEY = SigningKey.from_seed(hashlib.sha256(b"tsunagu web api test key").digest())
HEX64 = frozenset("0123456789abcdef")
STATUS_FIELDS = {
    "node_id",
    "chain_id",
    "height",
    "head_hash",
    "tree_size",
    "root_hash",
    "state_hash",
    "timestamp",
}
HEADER_FIELDS = {
    "chain_id",
    "height",
    "prev_hash",
    "timestamp",
    "tx_count",
    "results_hash",
    "tree_size",
    "tree_root",
    "state_hash",
    "proposer",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("api-demo"), apps, PASSWORD)
    admin = private.signing_key(private.user("admin"))
    receipt = node.submit_signed(
        admin,
        "identity",
        "member.add",
        {"public_key": CLIENT_KEY.public_key.hex(), "org": "hachioji", "roles": ["staff"]},
    ).future.result(timeout=30)
    assert receipt.status == "committed", receipt
    try:
        yield {
            "node": node,
            "private": private,
            "http": TestClient(create_app(node, private, apps)),
        }
    finally:
        node.stop()


@pytest.fixture(scope="module")
def http(demo: dict[str, Any]) -> TestClient:
    return demo["http"]


def _is_hex(value: Any, length: int = 64) -> bool:
    return isinstance(value, str) and len(value) == length and set(value) <= HEX64


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verify(public_key_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except InvalidSignature:
        return False
    return True


def _node_key(http: TestClient, node_id: str) -> str:
    nodes = http.get("/api/v1/identity/nodes").json()["nodes"]
    return next(n["public_key"] for n in nodes if n["id"] == node_id)


def _leaves(http: TestClient, size: int) -> list[bytes]:
    """Every leaf, page by page (a response may hold fewer entries than asked)."""
    leaves: list[bytes] = []
    while len(leaves) < size:
        page = http.get("/api/v1/log/entries", params={"start": len(leaves), "end": size - 1})
        entries = page.json()["entries"]
        assert entries and [e["index"] for e in entries] == list(
            range(len(leaves), len(leaves) + len(entries))
        )
        leaves += [base64.b64decode(e["leaf"], validate=True) for e in entries]
    return leaves


def _sizes(size: int) -> list[int]:
    """Tree sizes to prove against: every small one, the edges around each power of two
    (where the tree's shape changes), and the last few; the whole demo chain has thousands of
    leaves, and every (index, size) pair would be millions of requests."""
    picked = set(range(1, min(size, 20) + 1)) | {size - 2, size - 1, size}
    power = 16
    while power <= size:
        picked |= {power - 1, power, power + 1}
        power *= 2
    return sorted(n for n in picked if 1 <= n <= size)


def _indices(tree_size: int) -> list[int]:
    if tree_size <= 20:
        return list(range(tree_size))
    step = max(1, tree_size // 7)
    return sorted({0, 1, tree_size // 2, tree_size - 2, tree_size - 1, *range(3, tree_size, step)})


_seq = iter(range(1, 10**6))


def _signed(payload: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A documents/register envelope signed by the registered client key, next seq."""
    payload = payload or {
        "sha256": _sha(b"api test %d" % next(_seq)),
        "title": "APIテスト",
        "category": "notice",
    }
    args = {"chain_id": "tsunagu-tama-demo", "app": "documents", "type": "register"}
    args.update(changes)
    tx = build_tx(args["chain_id"], args["app"], args["type"], payload, CLIENT_KEY, next(_seq))
    return tx.to_json()


# --- status, blocks, transactions -------------------------------------------------------------


def test_status(http: TestClient, demo: dict[str, Any]) -> None:
    response = http.get("/api/v1/status")
    assert response.status_code == 200
    status = response.json()
    assert set(status) == STATUS_FIELDS
    assert status["node_id"] == "tama-node-1"
    assert status["chain_id"] == "tsunagu-tama-demo"
    assert isinstance(status["height"], int) and status["height"] >= 1
    assert isinstance(status["tree_size"], int) and status["tree_size"] > status["height"]
    for name in ("head_hash", "root_hash", "state_hash"):
        assert _is_hex(status[name]), name
    block = http.get(f"/api/v1/blocks/{status['height']}").json()
    assert block["hash"] == status["head_hash"]
    assert block["header"]["tree_size"] == status["tree_size"]
    assert block["header"]["tree_root"] == status["root_hash"]
    assert block["header"]["state_hash"] == status["state_hash"]
    assert block["header"]["timestamp"] == status["timestamp"]


def test_every_block_verifies(http: TestClient) -> None:
    status = http.get("/api/v1/status").json()
    leaves = _leaves(http, status["tree_size"])
    leaf_hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    node_key = _node_key(http, status["node_id"])
    prev_hash, prev_size, prev_time = "0" * 64, 0, ""
    for height in range(status["height"] + 1):
        response = http.get(f"/api/v1/blocks/{height}")
        assert response.status_code == 200
        block = response.json()
        assert set(block) == {"header", "hash", "signature", "transactions", "results"}
        header = block["header"]
        assert set(header) == HEADER_FIELDS
        assert header["height"] == height
        assert header["chain_id"] == status["chain_id"]
        assert header["prev_hash"] == prev_hash
        assert header["timestamp"] >= prev_time
        canonical = rfc8785.dumps(header)
        assert block["hash"] == _sha(canonical)
        assert _verify(node_key, block["signature"], canonical)
        assert header["proposer"] == status["node_id"]
        txs, results = block["transactions"], block["results"]
        assert header["tx_count"] == len(txs) == len(results)
        assert header["results_hash"] == _sha(rfc8785.dumps(results))
        assert header["tree_size"] == prev_size + len(txs)
        for i, tx in enumerate(txs):
            assert rfc8785.dumps(tx) == leaves[prev_size + i]
        assert (
            header["tree_root"]
            == merkle.root_from_leaf_hashes(leaf_hashes[: header["tree_size"]]).hex()
        )
        prev_hash, prev_size, prev_time = block["hash"], header["tree_size"], header["timestamp"]
    genesis = http.get("/api/v1/blocks/0").json()
    assert [(t["app"], t["type"]) for t in genesis["transactions"]] == [("identity", "genesis")]


def test_block_list(http: TestClient) -> None:
    status = http.get("/api/v1/status").json()
    listed = http.get("/api/v1/blocks", params={"limit": 2}).json()["blocks"]
    assert [b["height"] for b in listed] == [status["height"], status["height"] - 1]
    for header in listed:
        assert header["hash"] == _sha(rfc8785.dumps({k: header[k] for k in HEADER_FIELDS}))
    older = http.get("/api/v1/blocks", params={"before": 1}).json()["blocks"]
    assert [b["height"] for b in older] == [0]


def test_tx_lookup(http: TestClient) -> None:
    status = http.get("/api/v1/status").json()
    leaves = _leaves(http, status["tree_size"])
    for index in (0, len(leaves) - 1):
        tx_id = _sha(leaves[index])
        response = http.get(f"/api/v1/tx/{tx_id}")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"tx_id", "tx", "height", "index", "result", "leaf_hash"}
        assert body["tx_id"] == tx_id
        assert rfc8785.dumps(body["tx"]) == leaves[index]
        assert body["index"] == index
        assert body["leaf_hash"] == merkle.leaf_hash(leaves[index]).hex()
        assert body["result"] == {"status": "committed"}
        block = http.get(f"/api/v1/blocks/{body['height']}").json()
        first = block["header"]["tree_size"] - block["header"]["tx_count"]
        assert block["transactions"][index - first] == body["tx"]
        assert http.get(f"/api/v1/tx/{tx_id.upper()}").json()["tx_id"] == tx_id


# --- the log API ------------------------------------------------------------------------------


def test_signed_tree_head_verifies_with_the_published_node_key(http: TestClient) -> None:
    status = http.get("/api/v1/status").json()
    sth = http.get("/api/v1/log/sth").json()
    assert set(sth) == {"chain_id", "node_id", "tree_size", "root_hash", "timestamp", "signature"}
    assert sth["tree_size"] == status["tree_size"]
    assert sth["root_hash"] == status["root_hash"]
    assert sth["chain_id"] == status["chain_id"]
    key = _node_key(http, sth["node_id"])
    body = {k: sth[k] for k in ("chain_id", "node_id", "tree_size", "root_hash", "timestamp")}
    assert _verify(key, sth["signature"], rfc8785.dumps(body))
    forged = {**body, "tree_size": body["tree_size"] - 1}
    assert not _verify(key, sth["signature"], rfc8785.dumps(forged))


def test_entries_are_the_transactions(http: TestClient) -> None:
    size = http.get("/api/v1/status").json()["tree_size"]
    leaves = _leaves(http, size)
    # Every app's kind of transaction is in the first blocks and the last; between them, a
    # stride through the log (thousands of eco readings look alike).
    sample = set(range(min(size, 200))) | set(range(max(0, size - 50), size))
    sample |= set(range(0, size, max(1, size // 200)))
    for index in sorted(sample):
        tx = http.get(f"/api/v1/tx/{_sha(leaves[index])}").json()
        assert tx["index"] == index
    # end is clamped to the tree; a window in the middle.
    tail = http.get("/api/v1/log/entries", params={"start": size - 2, "end": size + 50}).json()
    assert [e["index"] for e in tail["entries"]] == [size - 2, size - 1]
    middle = http.get("/api/v1/log/entries", params={"start": 1, "end": 2}).json()["entries"]
    assert [base64.b64decode(e["leaf"]) for e in middle] == leaves[1:3]


def test_inclusion_proofs_verify(http: TestClient, demo: dict[str, Any]) -> None:
    size = http.get("/api/v1/status").json()["tree_size"]
    leaves = _leaves(http, size)
    get = demo["node"].store.node_reader()
    hashes = [merkle.leaf_hash(x) for x in leaves]
    for tree_size in _sizes(size):
        root = merkle.root_at(tree_size, get)
        assert root == merkle.root_from_leaf_hashes(hashes[:tree_size])
        for index in _indices(tree_size):
            proof = http.get(
                "/api/v1/log/proof/inclusion", params={"index": index, "tree_size": tree_size}
            ).json()
            assert set(proof) == {"index", "tree_size", "leaf_hash", "audit_path", "root_hash"}
            assert proof["index"] == index and proof["tree_size"] == tree_size
            leaf_hash = merkle.leaf_hash(leaves[index])
            assert proof["leaf_hash"] == leaf_hash.hex()
            assert proof["root_hash"] == root.hex()
            path = [bytes.fromhex(h) for h in proof["audit_path"]]
            merkle.verify_inclusion(leaf_hash, index, tree_size, path, root)
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(leaf_hash, index, tree_size, path, bytes(32))


def test_consistency_proofs_verify(http: TestClient, demo: dict[str, Any]) -> None:
    size = http.get("/api/v1/status").json()["tree_size"]
    get = demo["node"].store.node_reader()
    sizes = _sizes(size)
    roots = {n: merkle.root_at(n, get) for n in sizes}
    for first in sizes:
        for second in (n for n in sizes if n >= first):
            answer = http.get(
                "/api/v1/log/proof/consistency", params={"first": first, "second": second}
            ).json()
            assert answer["first"] == first and answer["second"] == second
            proof = [bytes.fromhex(h) for h in answer["proof"]]
            merkle.verify_consistency(first, second, roots[first], roots[second], proof)
            if first < second:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(first, second, bytes(32), roots[second], proof)


def test_identity_lists(http: TestClient) -> None:
    orgs = http.get("/api/v1/identity/orgs").json()["orgs"]
    ids = {o["id"] for o in orgs}
    assert {"hachioji", "tachikawa", "oshima", "tama-consortium"} <= ids
    nodes = http.get("/api/v1/identity/nodes").json()["nodes"]
    assert [n["id"] for n in nodes] == ["tama-node-1"]
    assert _is_hex(nodes[0]["public_key"])


def _bearer(http: TestClient, username: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_an_admin_registers_a_client_key_that_then_signs_for_itself(http: TestClient) -> None:
    key = SigningKey.from_seed(hashlib.sha256(b"web api test: registered by route").digest())
    body = {"public_key": key.public_key.hex(), "org": "tachikawa", "roles": ["staff"]}
    before = http.get("/api/v1/status").json()
    refusals = [
        ("staff1", body, 403, "forbidden"),
        ("admin", {**body, "org": "atlantis"}, 404, "unknown_org"),
        ("admin", {**body, "roles": ["emperor"]}, 422, "invalid_payload"),
        ("admin", {**body, "public_key": "AB" * 32}, 422, "invalid_input"),
        ("admin", {**body, "name": "田中"}, 422, "invalid_input"),  # no personal data
        ("admin", {**body, "public_key": CLIENT_KEY.public_key.hex()}, 409, "duplicate_member"),
    ]
    for username, sent, status, code in refusals:
        response = http.post("/api/v1/identity/members", json=sent, headers=_bearer(http, username))
        assert response.status_code == status, (sent, response.text)
        assert response.json()["code"] == code
    assert http.get("/api/v1/status").json() == before  # nothing was written
    response = http.post("/api/v1/identity/members", json=body, headers=_bearer(http, "admin"))
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["key_id"] == key.key_id == _sha(key.public_key)
    assert added["status"] == "committed" and added["height"] == before["height"] + 1
    payload = {
        "sha256": _sha(b"signed by a key added by route"),
        "title": "t",
        "category": "notice",
    }
    envelope = build_tx("tsunagu-tama-demo", "documents", "register", payload, key, 1).to_json()
    signed = http.post("/api/v1/tx", json=envelope)
    assert signed.status_code == 201, signed.text
    stored = http.get(f"/api/v1/tx/{signed.json()['tx_id']}").json()
    assert stored["tx"]["signer"] == key.key_id


# --- auth -------------------------------------------------------------------------------------


def test_token_login_and_me(http: TestClient, demo: dict[str, Any]) -> None:
    response = http.post("/api/v1/auth/token", data={"username": "staff1", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 12 * 3600
    me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == "staff1"
    assert body["org"] == "hachioji"
    assert body["roles"] == ["staff"]
    private = demo["private"]
    assert body["key_id"] == private.signing_key(private.user("staff1")).key_id


@pytest.mark.parametrize(
    ("username", "password"), [("staff1", "wrong"), ("nobody", PASSWORD), ("STAFF1", PASSWORD)]
)
def test_bad_login_is_a_401_problem(http: TestClient, username: str, password: str) -> None:
    response = http.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 401
    assert problem["code"] == "bad_credentials"
    assert problem["type"].endswith("/bad_credentials")
    assert problem["title"] and problem["detail"]
    assert "access_token" not in problem


def test_me_without_a_valid_token(http: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = http.get("/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unauthorized"


# --- submitting -------------------------------------------------------------------------------


def test_submit_a_client_signed_transaction(http: TestClient) -> None:
    before = http.get("/api/v1/status").json()
    envelope = _signed()
    response = http.post("/api/v1/tx", json=envelope)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert set(receipt) == {"tx_id", "height", "index", "status"}
    assert receipt["tx_id"] == _sha(rfc8785.dumps(envelope))
    assert receipt["status"] == "committed"
    assert receipt["height"] == before["height"] + 1
    assert receipt["index"] == before["tree_size"]
    after = http.get("/api/v1/status").json()
    assert after["height"] == receipt["height"]
    assert after["tree_size"] == before["tree_size"] + 1
    stored = http.get(f"/api/v1/tx/{receipt['tx_id']}").json()
    assert stored["tx"] == envelope
    assert stored["result"] == {"status": "committed"}
    document = http.get(f"/api/v1/documents/{envelope['payload']['sha256']}")
    assert document.status_code == 200
    assert document.json()["document"]["tx_id"] == receipt["tx_id"]


def test_a_refused_transaction_is_recorded_and_spends_its_seq(http: TestClient) -> None:
    first = _signed()
    assert http.post("/api/v1/tx", json=first).status_code == 201
    before = http.get("/api/v1/status").json()
    again = _signed(payload=first["payload"])  # the same document again: refused
    response = http.post("/api/v1/tx", json=again)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "already_registered"
    assert problem["tx_id"] == _sha(rfc8785.dumps(again))
    assert problem["height"] == before["height"] + 1
    assert problem["index"] == before["tree_size"]
    # It is in the chain, rejected, and its seq is spent.
    stored = http.get(f"/api/v1/tx/{problem['tx_id']}").json()
    assert stored["result"]["status"] == "rejected"
    assert stored["result"]["code"] == "already_registered"
    assert http.get("/api/v1/status").json()["tree_size"] == before["tree_size"] + 1
    replay = http.post("/api/v1/tx", json=again)
    assert replay.status_code == 409
    assert replay.json()["code"] == "replayed_seq"
    assert replay.json()["last_seq"] == again["seq"]
    assert "tx_id" not in replay.json()


def test_custodial_document_registration(http: TestClient) -> None:
    token = http.post(
        "/api/v1/auth/token", data={"username": "staff2", "password": PASSWORD}
    ).json()["access_token"]
    sha = _sha(b"custodial document")
    response = http.post(
        "/api/v1/documents",
        json={"sha256": sha, "title": "大島町のお知らせ", "category": "notice"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["sha256"] == sha
    record = http.get(f"/api/v1/documents/{sha}").json()
    assert record["document"]["org"] == "oshima"
    proof = record["proof"]
    leaf = base64.b64decode(proof["leaf"])
    assert _sha(leaf) == receipt["tx_id"]
    sth = proof["sth"]
    merkle.verify_inclusion(
        merkle.leaf_hash(leaf),
        proof["index"],
        sth["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(sth["root_hash"]),
    )
    assert proof["node_public_key"] == _node_key(http, sth["node_id"])


def test_forwarded_transactions_are_admitted_line_by_line_in_order(http: TestClient) -> None:
    """``POST /api/v1/consortium/forward`` (docs/protocol.md 7.6): what another node of the
    consortium hands to its proposer; one result per line, in order."""
    first, second = _signed(), _signed()
    forged = _signed()
    forged["signature"] = ("0" if forged["signature"][0] != "0" else "1") + forged["signature"][1:]
    payload = {"sha256": _sha(b"forward replay"), "title": "再送", "category": "notice"}
    replay = build_tx(
        "tsunagu-tama-demo", "documents", "register", payload, CLIENT_KEY, second["seq"]
    )
    lines = [rfc8785.dumps(e) for e in (first, second, forged)] + [b"{not json"]
    lines.append(replay.leaf)
    before = http.get("/api/v1/status").json()
    response = http.post(
        "/api/v1/consortium/forward",
        content=b"\n".join(lines),
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r.get("ok") for r in results[:2]] == [True, True]
    assert {r["status"] for r in results[:2]} == {"committed"}
    codes = [r["problem"]["code"] for r in results[2:]]
    assert codes == ["bad_signature", "malformed_transaction", "replayed_seq"]
    assert all(r["problem"]["detail_ja"] for r in results[2:])
    for envelope, result in zip((first, second), results, strict=False):
        stored = http.get(f"/api/v1/tx/{_sha(rfc8785.dumps(envelope))}").json()
        assert stored["height"] == result["height"] > before["height"]
    assert http.get("/api/v1/status").json()["tree_size"] == before["tree_size"] + 2
