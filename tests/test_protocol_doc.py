"""docs/protocol.md stays true: its worked example, its canonical form, its independent client.

* The worked example in the document is exactly what ``docs/examples/worked_example.py`` computes
  from the code now, every hex value included.
* ``docs/examples/client.py`` (standard library + ``cryptography`` only) recomputes the worked
  example independently, canonicalizes exactly like ``rfc8785`` on the protocol's value set,
  verifies RFC 9162 proofs made by ``tsunagu.ledger.merkle``, and talks to a real node: over
  ``TestClient`` and, as a subprocess, over real HTTP to a uvicorn server.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rfc8785
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from democache import demo_copy
from liveserver import serving
from tsunagu.ledger import merkle

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "protocol.md"
EXAMPLES = ROOT / "docs" / "examples"
SEED = bytes(range(32))
MAX_SAFE = 2**53 - 1
HEX_TOKEN = re.compile(r"(?<![0-9a-z])[0-9a-f]{64,}(?![0-9a-z])")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"protocol_doc_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


worked = _load("worked_example")
client = _load("client")


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return worked.compute()


# --- The worked example is what the code computes now ---------------------------------------


def test_worked_example_script_checks_the_document() -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "worked_example.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


def test_document_section_equals_generated(example: dict[str, Any]) -> None:
    in_doc = worked.section(DOC.read_text(encoding="utf-8"))
    assert in_doc == worked.render(example), (
        "docs/protocol.md's worked example is stale: run docs/examples/worked_example.py --write"
    )


def _hex_values(value: Any) -> set[str]:
    """Every hex string (64+ characters) in a computed value, also inside JSON texts."""
    return set(HEX_TOKEN.findall(json.dumps(value, ensure_ascii=False)))


def test_every_hex_value_in_the_document_is_computed_now(example: dict[str, Any]) -> None:
    in_doc = worked.section(DOC.read_text(encoding="utf-8"))
    printed = HEX_TOKEN.findall(in_doc)
    computed = _hex_values(example)
    assert printed, "no hex values found in the worked example"
    stale = [h for h in printed if h not in computed]
    assert not stale, f"hex values in docs/protocol.md that the code no longer computes: {stale}"
    # And the named values are each printed where a reader looks for them.
    for name in (
        "seed",
        "public_key",
        "key_id",
        "signing_bytes_hex",
        "signature",
        "leaf_hash",
        "tx_id",
        "node_01",
        "root",
        "root_2",
        "results_hash",
        "writes_hash",
        "state_hash",
        "header_hash",
        "header_signature",
        "sth_signature",
    ):
        assert f"`{example[name]}`" in in_doc or f"\n{example[name]}\n" in in_doc, name
    for h in example["inclusion_proof_1"] + example["consistency_proof_2_3"]:
        assert f'"{h}"' in in_doc
    for tx in example["txs"]:
        for field in ("tx_id", "signature", "leaf_hash"):
            assert f"`{tx[field]}`" in in_doc


def test_documented_envelope_json_is_the_computed_one(example: dict[str, Any]) -> None:
    in_doc = worked.section(DOC.read_text(encoding="utf-8"))
    blocks = re.findall(r"```json\n(.*?)\n```", in_doc, flags=re.S)
    parsed = [json.loads(b) for b in blocks]
    assert example["envelope"] in parsed
    assert example["body"] in parsed
    assert example["header"] in parsed


# --- The independent client agrees with the document and the code ----------------------------


def test_client_recomputes_the_worked_example(example: dict[str, Any]) -> None:
    public = client.public_key_of(SEED)
    assert public.hex() == example["public_key"]
    assert client.key_id(public) == example["key_id"]
    body = example["body"]
    assert client.canonical_json(body).hex() == example["signing_bytes_hex"]
    assert client.canonical_json(body).decode() == example["signing_bytes"]
    envelope, leaf, tx_id = client.build_transaction(
        SEED, body["chain_id"], body["app"], body["type"], body["payload"], body["seq"]
    )
    assert envelope == example["envelope"]
    assert envelope["signature"] == example["signature"]
    assert leaf.decode() == example["leaf"]
    assert tx_id == example["tx_id"]
    assert client.leaf_hash(leaf).hex() == example["leaf_hash"]

    # The 3-leaf log, its root and proofs.
    hashes = []
    for tx in example["txs"]:
        assert tx["seq"] in (1, 2, 3)
        hashes.append(bytes.fromhex(tx["leaf_hash"]))
    assert client.node_hash(hashes[0], hashes[1]).hex() == example["node_01"]
    root = client.merkle_root(hashes)
    assert root.hex() == example["root"]
    proof = [bytes.fromhex(h) for h in example["inclusion_proof_1"]]
    assert client.verify_inclusion(hashes[1], 1, 3, proof, root)
    consistency = [bytes.fromhex(h) for h in example["consistency_proof_2_3"]]
    assert client.verify_consistency(2, 3, bytes.fromhex(example["root_2"]), root, consistency)

    # Results, state and header hashes from the documented bytes.
    assert client.canonical_json(example["results"]).decode() == example["results_canonical"]
    assert (
        hashlib.sha256(example["results_canonical"].encode()).hexdigest()
        == (example["results_hash"])
    )
    writes = [[w["ns"], w["key"], json.loads(w["value"])] for w in example["writes"]]
    assert client.canonical_json(writes).decode() == example["writes_canonical"]
    delta = hashlib.sha256(client.canonical_json(writes)).digest()
    assert delta.hex() == example["writes_hash"]
    state = hashlib.sha256(bytes.fromhex(example["prev_state_hash"]) + delta).hexdigest()
    assert state == example["state_hash"] == example["header"]["state_hash"]
    header_bytes = client.canonical_json(example["header"])
    assert header_bytes.decode() == example["header_canonical"]
    assert hashlib.sha256(header_bytes).hexdigest() == example["header_hash"]
    assert client.ed25519_verify(public, bytes.fromhex(example["header_signature"]), header_bytes)

    # The STH example verifies the way the client checks a node's STH.
    sth = {**example["sth_body"], "signature": example["sth_signature"]}
    assert client.canonical_json(example["sth_body"]).decode() == example["sth_canonical"]
    nodes = [{"id": sth["node_id"], "org": "x", "public_key": public.hex()}]
    assert client.verify_sth(sth, nodes)
    assert not client.verify_sth({**sth, "tree_size": 4}, nodes)


def test_documented_canonicalization_example() -> None:
    value = {"b": [True, None, -1], "a": "x\ny", "é": "東京"}
    expected = '{"a":"x\\ny","b":[true,null,-1],"é":"東京"}'.encode()
    assert rfc8785.dumps(value) == expected
    assert client.canonical_json(value) == expected
    # The escapes the document lists.
    text = '"\\/\b\t\n\x0c\r\x00\x1f\x7f防'
    expected_text = '"\\"\\\\/\\b\\t\\n\\f\\r\\u0000\\u001f\x7f防"'.encode()
    assert rfc8785.dumps(text) == expected_text == client.canonical_json(text)
    # UTF-16 ordering of keys: U+10000 (surrogates D800 DC00) sorts before U+E000.
    keys = {"\ue000": 1, "\U00010000": 2, "z": 3}
    assert rfc8785.dumps(keys) == client.canonical_json(keys)
    assert client.canonical_json(keys).decode() == '{"z":3,"\U00010000":2,"\ue000":1}'


# --- canonical JSON: client == rfc8785 on the protocol's value set ---------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE, max_value=MAX_SAFE)
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x3F))
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_client_canonical_json_equals_rfc8785(value: Any) -> None:
    assert client.canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=MAX_SAFE + 1) | st.integers(max_value=-MAX_SAFE - 1))
def test_out_of_range_integers_are_refused_by_both(n: int) -> None:
    with pytest.raises(ValueError):
        client.canonical_json({"n": n})
    with pytest.raises(rfc8785.CanonicalizationError):
        rfc8785.dumps({"n": n})


@pytest.mark.parametrize("value", ["\ud800", {"\udfff": 1}, ["a\udc00b"]])
def test_lone_surrogates_are_refused_by_both(value: Any) -> None:
    with pytest.raises(ValueError):
        client.canonical_json(value)
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
        rfc8785.dumps(value)


@pytest.mark.parametrize("value", [1.0, 0.5, {"a": [1e3]}, float("nan")])
def test_client_refuses_floats(value: Any) -> None:
    with pytest.raises(TypeError):
        client.canonical_json(value)


# --- RFC 9162: the client's verifiers accept the node's proofs, and only those ---------------


def _leaf_hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(b"leaf %d" % i) for i in range(n)]


def _reader(hashes: list[bytes]):
    _, nodes = merkle.append(merkle.Frontier.empty(), hashes)
    table = {(level, index): h for level, index, h in nodes}
    return lambda level, index: table[(level, index)]


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=70).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, n))
    )
)
def test_client_verifies_node_proofs(args: tuple[int, int, int]) -> None:
    n, index, first = args
    hashes = _leaf_hashes(n)
    get = _reader(hashes)
    root = merkle.root_at(n, get)
    assert client.merkle_root(hashes) == root
    path = merkle.inclusion_proof(index, n, get)
    assert client.verify_inclusion(hashes[index], index, n, path, root)
    assert not client.verify_inclusion(hashes[index], index, n, path, bytes(32))
    wrong_leaf = merkle.leaf_hash(b"not in the log")
    assert not client.verify_inclusion(wrong_leaf, index, n, path, root)
    if path:
        bad = list(path)
        bad[-1] = bytes(32)
        assert not client.verify_inclusion(hashes[index], index, n, bad, root)
        assert not client.verify_inclusion(hashes[index], index, n, path[:-1], root)
    assert not client.verify_inclusion(hashes[index], index, n, [*path, bytes(32)], root)

    first_root = merkle.root_at(first, get)
    proof = merkle.consistency_proof(first, n, get)
    assert client.verify_consistency(first, n, first_root, root, proof)
    if first < n:
        assert not client.verify_consistency(first, n, bytes(32), root, proof)
        assert not client.verify_consistency(first, n, first_root, bytes(32), proof)
        bad = list(proof)
        bad[0] = bytes(32)
        assert not client.verify_consistency(first, n, first_root, root, bad)


# --- The client only depends on the standard library and cryptography -----------------------


def test_client_imports_only_stdlib_and_cryptography() -> None:
    tree = ast.parse((EXAMPLES / "client.py").read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    foreign = modules - set(sys.stdlib_module_names) - {"__future__", "cryptography"}
    assert not foreign, f"client.py imports {foreign}"


# --- Against a real node ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("protocol-demo"), apps, "pw")
    admin = private.signing_key(private.user("admin"))
    receipt = node.submit_signed(
        admin,
        "identity",
        "member.add",
        {"public_key": client.public_key_of(SEED).hex(), "org": "hachioji", "roles": ["staff"]},
    ).future.result(timeout=30)
    assert receipt.status == "committed", receipt
    app = create_app(node, private, apps)
    try:
        yield {"node": node, "app": app, "http": TestClient(app)}
    finally:
        node.stop()


def _testclient_transport(http: TestClient):
    def transport(method: str, path: str, body: Any, headers: dict[str, str]):
        if body is None:
            response = http.request(method, path, headers=headers)
        else:
            response = http.request(method, path, json=body, headers=headers)
        return response.status_code, response.json()

    return transport


def test_documented_envelope_is_accepted_by_a_real_node(
    demo: dict[str, Any], example: dict[str, Any]
) -> None:
    """The demo chain is ``tsunagu-tama-demo``: the worked example's transaction, exactly as
    printed in the document, commits there with the documented tx id."""
    in_doc = worked.section(DOC.read_text(encoding="utf-8"))
    envelope = next(
        json.loads(b)
        for b in re.findall(r"```json\n(.*?)\n```", in_doc, flags=re.S)
        if '"signature"' in b
    )
    response = demo["http"].post("/api/v1/tx", json=envelope)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["tx_id"] == example["tx_id"]
    assert receipt["status"] == "committed"
    stored = demo["http"].get(f"/api/v1/tx/{example['tx_id']}").json()
    assert stored["leaf_hash"] == example["leaf_hash"]
    assert stored["tx"] == example["envelope"]
    entry = (
        demo["http"]
        .get("/api/v1/log/entries", params={"start": receipt["index"], "end": receipt["index"]})
        .json()["entries"][0]
    )
    assert base64.b64decode(entry["leaf"]).decode() == example["leaf"]


def test_client_audits_and_submits_through_the_api(demo: dict[str, Any]) -> None:
    api = client.Client(_testclient_transport(demo["http"]))
    lines: list[str] = []
    sth = api.sth()
    client.audit(api, say=lines.append)
    assert any("signature ok" in line for line in lines)

    payload = {
        "sha256": hashlib.sha256(b"client doc 1").hexdigest(),
        "title": "t",
        "category": "plan",
    }
    receipt = client.submit(api, SEED, "documents", "register", payload)
    assert receipt["status"] == "committed"
    status = api.status()
    assert status["tree_size"] == receipt["index"] + 1

    # A later audit checks consistency from the STH verified before.
    newer = client.audit(api, (sth["tree_size"], bytes.fromhex(sth["root_hash"])), say=lines.append)
    assert newer["tree_size"] > sth["tree_size"]

    # A used seq: the client retries above the last_seq the node reports.
    payload2 = {
        "sha256": hashlib.sha256(b"client doc 2").hexdigest(),
        "title": "t",
        "category": "plan",
    }
    again = client.submit(api, SEED, "documents", "register", payload2, seq=1)
    assert again["status"] == "committed"

    # A refusal by the contract is a 409 problem carrying where it is recorded.
    with pytest.raises(client.ProtocolError) as refused:
        client.submit(api, SEED, "documents", "register", payload)
    assert refused.value.status == 409
    assert refused.value.problem["code"] == "already_registered"
    assert {"tx_id", "height", "index"} <= set(refused.value.problem)

    # A forged consistency root is caught.
    with pytest.raises(client.ProtocolError):
        client.audit(api, (sth["tree_size"], bytes(32)), say=lines.append)


@pytest.fixture(scope="module")
def server(demo: dict[str, Any]) -> Iterator[str]:
    with serving(demo["app"]) as port:
        yield f"http://127.0.0.1:{port}"


def _run_client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "client.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_client_script_over_real_http(server: str, tmp_path: Path) -> None:
    key = _run_client("key", "--seed-hex", SEED.hex())
    assert key.returncode == 0, key.stderr
    assert json.loads(key.stdout)["key_id"] == client.key_id(client.public_key_of(SEED))

    state = tmp_path / "sth.json"
    first = _run_client("--url", server, "audit", "--state", str(state))
    assert first.returncode == 0, first.stderr
    assert "signature ok" in first.stdout and "consistency" in first.stdout

    payload = {
        "sha256": hashlib.sha256(b"over http").hexdigest(),
        "title": "HTTP",
        "category": "other",
    }
    sent = _run_client(
        "--url",
        server,
        "submit",
        "--seed-hex",
        SEED.hex(),
        "--app",
        "documents",
        "--type",
        "register",
        "--payload",
        json.dumps(payload),
    )
    assert sent.returncode == 0, sent.stderr
    receipt = json.loads(sent.stdout)
    assert receipt["status"] == "committed"

    second = _run_client("--url", server, "audit", "--state", str(state))
    assert second.returncode == 0, second.stderr
    saved = json.loads(state.read_text())
    assert saved["tree_size"] == receipt["index"] + 1

    replay = _run_client(
        "--url",
        server,
        "submit",
        "--seed-hex",
        SEED.hex(),
        "--seq",
        "1",
        "--app",
        "documents",
        "--type",
        "register",
        "--payload",
        json.dumps(payload),
    )
    assert replay.returncode == 1
    assert "409" in replay.stderr
