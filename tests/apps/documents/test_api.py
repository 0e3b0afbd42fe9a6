"""The document API over a real demo node (real SQLite chain, real orderer), in-process.

Proof bundles are checked independently of the server: RFC 9162 with
``tsunagu.ledger.merkle.verify_inclusion``, RFC 8785 with ``rfc8785`` and Ed25519 with
``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tsunagu.apps.documents.demo import DOCUMENTS, SUPERSEDED_BY
from tsunagu.ledger import merkle
from tsunagu.ledger.keys import SigningKey

PROBLEM = "application/problem+json"


def unique_sha() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def body(title: str = "テスト文書", **fields: Any) -> dict[str, Any]:
    return {"sha256": unique_sha(), "title": title, "category": "notice", **fields}


@pytest.fixture(scope="module")
def staff(demo_app) -> dict[str, str]:
    return demo_app.bearer("staff1")


@pytest.fixture(scope="module")
def http(demo_app):
    return demo_app.client()


def assert_problem(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code, problem
    assert problem["detail_ja"] and problem["detail_en"]
    return problem


def check_bundle(http, digest: str) -> dict[str, Any]:
    """Verify a document's proof bundle from scratch; return the decoded transaction."""
    response = http.get(f"/api/v1/documents/{digest}")
    assert response.status_code == 200, response.text
    proof = response.json()["proof"]
    leaf = base64.b64decode(proof["leaf"])
    leaf_hash = merkle.leaf_hash(leaf)
    assert leaf_hash == hashlib.sha256(b"\x00" + leaf).digest()
    assert proof["leaf_hash"] == leaf_hash.hex()
    tx = json.loads(leaf)
    assert rfc8785.dumps(tx) == leaf
    sth = proof["sth"]
    assert proof["tree_size"] == sth["tree_size"]
    merkle.verify_inclusion(
        leaf_hash,
        proof["index"],
        sth["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(sth["root_hash"]),
    )
    signed = {k: sth[k] for k in ("chain_id", "node_id", "root_hash", "timestamp", "tree_size")}
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(proof["node_public_key"]))
    public_key.verify(bytes.fromhex(sth["signature"]), rfc8785.dumps(signed))
    nodes = http.get("/api/v1/identity/nodes").json()["nodes"]
    assert any(
        n["id"] == sth["node_id"] and n["public_key"] == proof["node_public_key"] for n in nodes
    )
    # The block that holds it: signed by its proposer (a registered node), its results hash
    # to the header's results_hash, this transaction's result is "committed", and the leaf
    # is in the header's own tree.
    header = check_block(proof["block"], proof["index"], leaf_hash, nodes)
    assert header["chain_id"] == sth["chain_id"] == tx["chain_id"]
    check_member(proof, tx, nodes)
    return tx


def check_block(block: dict[str, Any], index: int, leaf_hash: bytes, nodes: list) -> dict:
    """The block holding leaf ``index`` shows it committed; returns the block's header."""
    header = block["header"]
    proposer = next(n for n in nodes if n["id"] == header["proposer"])
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(proposer["public_key"])).verify(
        bytes.fromhex(block["signature"]), rfc8785.dumps(header)
    )
    results = block["results"]
    assert hashlib.sha256(rfc8785.dumps(results)).hexdigest() == header["results_hash"]
    position = index - (header["tree_size"] - header["tx_count"])
    assert 0 <= position < header["tx_count"] == len(results)
    assert results[position] == {"status": "committed"}
    merkle.verify_inclusion(
        leaf_hash,
        index,
        header["tree_size"],
        [bytes.fromhex(h) for h in block["audit_path"]],
        bytes.fromhex(header["tree_root"]),
    )
    return header


def check_member(proof: dict[str, Any], tx: dict[str, Any], nodes: list) -> None:
    """The signer's member record: committed identity transactions in the signed tree before
    the document; the first registers the signing key, later ones change its roles, and
    together they give the organisation and roles the bundle names."""
    member, sth = proof["member"], proof["sth"]
    assert member["key_id"] == tx["signer"]
    org = roles = None
    for record in member["records"]:
        leaf = base64.b64decode(record["leaf"])
        identity = json.loads(leaf)
        assert rfc8785.dumps(identity) == leaf
        assert (identity["app"], identity["chain_id"]) == ("identity", sth["chain_id"])
        assert record["index"] < proof["index"]
        merkle.verify_inclusion(
            merkle.leaf_hash(leaf),
            record["index"],
            sth["tree_size"],
            [bytes.fromhex(h) for h in record["audit_path"]],
            bytes.fromhex(sth["root_hash"]),
        )
        check_block(record["block"], record["index"], merkle.leaf_hash(leaf), nodes)
        payload = identity["payload"]
        if org is None:
            entries = payload["members"] if identity["type"] == "genesis" else [payload]
            (entry,) = [
                e
                for e in entries
                if hashlib.sha256(bytes.fromhex(e["public_key"])).hexdigest() == tx["signer"]
            ]
            org, roles = entry["org"], entry["roles"]
        else:
            assert (identity["type"], payload["key_id"]) == ("member.roles", tx["signer"])
            roles = payload["roles"]
    assert (org, roles) == (member["org"], member["roles"])
    assert {"staff", "admin"} & set(roles)


def test_register_answers_once_committed(demo_app, http, staff):
    payload = body("令和7年度 事業計画")
    response = http.post("/api/v1/documents", json=payload, headers=staff)
    assert response.status_code == 201, response.text
    result = response.json()
    assert set(result) == {"tx_id", "height", "index", "sha256"}
    assert result["sha256"] == payload["sha256"]
    # No waiting: by the time of the 201 the block is durable and the state applied.
    tx = http.get(f"/api/v1/tx/{result['tx_id']}").json()
    assert tx["result"] == {"status": "committed"}
    assert (tx["height"], tx["index"]) == (result["height"], result["index"])
    assert tx["tx"]["payload"] == payload
    assert (tx["tx"]["app"], tx["tx"]["type"]) == ("documents", "register")
    block = http.get(f"/api/v1/blocks/{result['height']}").json()
    assert result["tx_id"] in {
        hashlib.sha256(rfc8785.dumps(t)).hexdigest() for t in block["transactions"]
    }
    document = http.get(f"/api/v1/documents/{payload['sha256']}").json()["document"]
    assert document["status"] == "active"
    assert (document["org"], document["org_name_ja"], document["org_name_en"]) == (
        "hachioji",
        "八王子市",
        "Hachioji City",
    )
    assert "registered_by" not in document  # key ids stay out of the public view
    check_bundle(http, payload["sha256"])


def test_register_needs_a_login(http):
    assert_problem(http.post("/api/v1/documents", json=body()), 401, "unauthorized")
    assert_problem(
        http.post("/api/v1/documents", json=body(), headers={"Authorization": "Bearer nope"}),
        401,
        "unauthorized",
    )


def test_register_needs_staff(demo_app, http):
    payload = body()
    for username in ("resident1", "supporter1"):
        response = http.post("/api/v1/documents", json=payload, headers=demo_app.bearer(username))
        assert_problem(response, 403, "forbidden")
    assert http.get(f"/api/v1/documents/{payload['sha256']}").status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": "abc"},
        {"sha256": "G" * 64},
        {"sha256": unique_sha().upper()},
        {"title": ""},
        {"title": "長" * 201},
        {"category": "gossip"},
        {"file_name": "budget.pdf"},
    ],
    ids=["short", "not-hex", "uppercase", "empty-title", "long-title", "category", "extra"],
)
def test_register_refuses_bad_input(http, staff, change):
    payload = {**body(), **change}
    problem = assert_problem(
        http.post("/api/v1/documents", json=payload, headers=staff), 422, "invalid_input"
    )
    assert problem["errors"], problem
    assert http.get(f"/api/v1/documents/{body()['sha256']}").status_code == 404


def test_register_refuses_malformed_json(http, staff):
    response = http.post(
        "/api/v1/documents",
        content=b'{"sha256": ',
        headers={**staff, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed_json")


def test_registering_twice_is_a_conflict_in_both_languages(http, staff):
    payload = body()
    assert http.post("/api/v1/documents", json=payload, headers=staff).status_code == 201
    before = http.get("/api/v1/status").json()
    again = http.post("/api/v1/documents", json=payload, headers={**staff, "Accept-Language": "ja"})
    problem = assert_problem(again, 409, "already_registered")
    assert problem["detail"] == "このSHA-256の文書は既に登録されています。"
    assert problem["detail_en"] == "A document with this SHA-256 is already registered."
    # The contract refused it before it was submitted: nothing reached the chain.
    assert "tx_id" not in problem
    after = http.get("/api/v1/status").json()
    assert (after["height"], after["tree_size"]) == (before["height"], before["tree_size"])


def test_register_an_uploaded_file(http, staff):
    content = f"大島町 お知らせ {uuid.uuid4()}\n".encode()
    response = http.post(
        "/api/v1/documents/file",
        files={"file": ("notice.txt", content, "text/plain")},
        data={"title": "お知らせ", "category": "notice"},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    digest = hashlib.sha256(content).hexdigest()
    assert response.json()["sha256"] == digest
    tx = check_bundle(http, digest)
    assert tx["payload"] == {"sha256": digest, "title": "お知らせ", "category": "notice"}
    assert content not in base64.b64decode(
        http.get(f"/api/v1/documents/{digest}").json()["proof"]["leaf"]
    )


def test_upload_refuses_bad_form_fields(http, staff):
    response = http.post(
        "/api/v1/documents/file",
        files={"file": ("a.txt", b"x", "text/plain")},
        data={"title": "a", "category": "gossip"},
        headers=staff,
    )
    assert_problem(response, 422, "invalid_input")


def test_proof_bundles_of_every_demo_document_verify(demo_app, http):
    folder = demo_app.data / "demo-documents"
    names = [name for _, name, *_ in DOCUMENTS] + [SUPERSEDED_BY[0]]
    for name in names:
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        tx = check_bundle(http, digest)
        field = "new_sha256" if tx["type"] == "supersede" else "sha256"
        assert tx["payload"][field] == digest, name
        answer = http.get(f"/api/v1/documents/{digest}").json()
        # Who registered it, proven: the demo's staff were registered in the genesis.
        member = answer["proof"]["member"]
        assert member["org"] == answer["document"]["org"], name
        assert [json.loads(base64.b64decode(r["leaf"]))["type"] for r in member["records"]] == [
            "genesis"
        ]


def test_the_member_record_follows_role_changes_and_catches_a_false_one(demo_app, http):
    """A key registered as a verifier, then given the staff role: both transactions are in
    the bundle. A bundle naming another organisation or missing the registration fails."""
    node = demo_app.node
    admin = demo_app.private.signing_key(demo_app.private.user("admin"))
    key = SigningKey.from_seed(hashlib.sha256(b"documents member record").digest())
    payload = {"public_key": key.public_key.hex(), "org": "hachioji", "roles": ["verifier"]}
    for type_, body_ in (
        ("member.add", payload),
        ("member.roles", {"key_id": key.key_id, "roles": ["verifier", "staff"]}),
    ):
        receipt = node.submit_signed(admin, "identity", type_, body_).future.result(30)
        assert receipt.status == "committed", receipt
    doc = body("役割変更後の登録")
    assert node.submit_signed(key, "documents", "register", doc).future.result(30).status == (
        "committed"
    )
    tx = check_bundle(http, doc["sha256"])
    proof = http.get(f"/api/v1/documents/{doc['sha256']}").json()["proof"]
    member = proof["member"]
    assert (member["key_id"], member["org"]) == (key.key_id, "hachioji")
    assert member["roles"] == ["verifier", "staff"]
    kinds = [json.loads(base64.b64decode(r["leaf"]))["type"] for r in member["records"]]
    assert kinds == ["member.add", "member.roles"]
    nodes = http.get("/api/v1/identity/nodes").json()["nodes"]
    for forged in (
        {**member, "org": "tachikawa"},
        {**member, "roles": ["admin"]},
        {**member, "records": member["records"][1:]},
    ):
        with pytest.raises((AssertionError, KeyError)):
            check_member({**proof, "member": forged}, tx, nodes)


def test_a_tampered_proof_does_not_verify(demo_app, http):
    name = DOCUMENTS[0][1]
    digest = hashlib.sha256((demo_app.data / "demo-documents" / name).read_bytes()).hexdigest()
    proof = http.get(f"/api/v1/documents/{digest}").json()["proof"]
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    assert path, "the demo chain is big enough for a non-empty audit path"
    path[0] = bytes([path[0][0] ^ 1]) + path[0][1:]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(
            bytes.fromhex(proof["leaf_hash"]),
            proof["index"],
            proof["tree_size"],
            path,
            bytes.fromhex(proof["sth"]["root_hash"]),
        )
    sth = dict(proof["sth"], tree_size=proof["sth"]["tree_size"] + 1)
    signed = {k: sth[k] for k in ("chain_id", "node_id", "root_hash", "timestamp", "tree_size")}
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(proof["node_public_key"]))
    with pytest.raises(InvalidSignature):
        key.verify(bytes.fromhex(sth["signature"]), rfc8785.dumps(signed))


def test_withdraw_and_supersede(http, staff, demo_app):
    first, second = body("旧版"), body("差し替え元")
    for payload in (first, second):
        assert http.post("/api/v1/documents", json=payload, headers=staff).status_code == 201
    url = f"/api/v1/documents/{first['sha256']}/withdraw"
    withdrawn = http.post(url, json={"reason": "誤りがあったため"}, headers=staff)
    assert withdrawn.status_code == 200, withdrawn.text
    record = http.get(f"/api/v1/documents/{first['sha256']}").json()["document"]
    assert record["status"] == "withdrawn"
    assert record["history"][-1]["reason"] == "誤りがあったため"
    assert_problem(http.post(url, json={"reason": "再度"}, headers=staff), 409, "not_active")
    other_town = demo_app.bearer("staff2")
    url = f"/api/v1/documents/{second['sha256']}/supersede"
    new = {"new_sha256": unique_sha(), "title": "新版", "category": "plan", "reason": "改訂"}
    assert_problem(http.post(url, json=new, headers=other_town), 409, "other_org")
    assert_problem(http.post(url, json={**new, "extra": 1}, headers=staff), 422, "invalid_input")
    replaced = http.post(url, json=new, headers=staff)
    assert replaced.status_code == 201, replaced.text
    assert replaced.json()["sha256"] == new["new_sha256"]
    old = http.get(f"/api/v1/documents/{second['sha256']}").json()["document"]
    assert (old["status"], old["superseded_by"]) == ("superseded", new["new_sha256"])
    tx = check_bundle(http, new["new_sha256"])
    assert (tx["type"], tx["payload"]["sha256"]) == ("supersede", second["sha256"])


def test_lookups(http):
    assert_problem(http.get(f"/api/v1/documents/{unique_sha()}"), 404, "not_found")
    assert_problem(http.get("/api/v1/documents/not-a-hash"), 422, "invalid_input")
    listing = http.get("/api/v1/documents", params={"org": "oshima", "status": "withdrawn"})
    docs = listing.json()["documents"]
    assert [d["title"] for d in docs] == ["断水のお知らせ（元町地区）"]
