"""The document pages in real Chromium against a real demo server (``tsunagu demo``).

The verify page hashes files and checks proofs in JavaScript, so these tests read what the
script wrote into the page: each proof check's line, and whether it passed. Tampered proof
bundles (rewritten in flight with ``page.route``) must make exactly the right checks fail,
so a broken check cannot pass unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from playwright.sync_api import Page, expect

from e2e.axe import assert_accessible
from e2e.conftest import login
from tsunagu.ledger import merkle
from tsunagu.ledger.keys import SigningKey

pytestmark = pytest.mark.e2e

CHECKS = ("leaf", "tx", "root", "signature", "node", "block", "member")
TIMEOUT = 15_000


def demo_file(server, name: str) -> Path:
    return server.data / "demo-documents" / name


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drop_file(page: Page, selector: str, path: Path) -> None:
    """Drop a file on an element the way a browser does: dragenter, dragover, drop."""
    page.evaluate(
        """([selector, name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "application/octet-stream" }));
            const zone = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
                zone.dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [selector, path.name, base64.b64encode(path.read_bytes()).decode()],
    )


def verify(page: Page, server, path: Path) -> None:
    page.goto(server.url + "/documents/verify")
    drop_file(page, "#dropzone", path)
    expect(page.locator("#verdict-text")).to_be_visible(timeout=TIMEOUT)


def wait_for_checks(page: Page) -> dict[str, dict[str, Any]]:
    """Each check line the script wrote: whether it passed, and its words."""
    expect(page.locator("#overall")).not_to_be_empty(timeout=TIMEOUT)
    lines = page.eval_on_selector_all(
        "#checks li",
        "items => items.map(li => [li.dataset.check, li.dataset.ok, li.textContent.trim()])",
    )
    assert [line[0] for line in lines] == list(CHECKS)
    return {check: {"ok": ok == "true", "text": words} for check, ok, words in lines}


def failing(checks: dict[str, dict[str, Any]]) -> set[str]:
    for check in checks.values():
        assert check["text"].startswith("✓" if check["ok"] else "✗"), check
    return {name for name, check in checks.items() if not check["ok"]}


def test_register_a_file_then_verify_it_anonymously(demo_server, page, tmp_path):
    path = tmp_path / "hachioji-notice.txt"
    path.write_bytes(f"八王子市 お知らせ（試験） {uuid.uuid4()}\n".encode())
    digest = sha_of(path)

    login(page, demo_server, "staff1")
    page.goto(demo_server.url + "/documents/register")
    page.set_input_files("#sha256-file", str(path))
    # The browser, not the server, computed this hash.
    expect(page.locator("#sha256")).to_have_value(digest, timeout=TIMEOUT)
    expect(page.locator("[data-hash-status]")).to_contain_text(path.name)
    page.fill("#title", "八王子市 お知らせ（試験）")
    page.select_option("#category", "notice")
    page.click("form.register button[type=submit]")
    expect(page.locator("h1")).to_have_text("文書を登録しました")
    expect(page.locator("#done-sha256")).to_have_text(digest)
    tx_id = page.locator("#done-tx").inner_text().strip()
    index = int(page.locator("#done-index").inner_text())
    tx = httpx.get(f"{demo_server.url}/api/v1/tx/{tx_id}").json()
    assert tx["result"] == {"status": "committed"}
    assert (tx["index"], tx["tx"]["payload"]["sha256"]) == (index, digest)
    assert int(page.locator("#done-height").inner_text()) == tx["height"]

    page.click("header form[action='/logout'] button")
    expect(page.locator("header")).to_contain_text("ログイン")
    verify(page, demo_server, path)
    expect(page.locator("#verdict-text")).to_have_text("✓ 登録されています")
    expect(page.locator("#result-org")).to_have_text("八王子市")
    expect(page.locator("#result-status")).to_have_text("有効")
    checks = wait_for_checks(page)
    assert failing(checks) == set()
    assert tx["leaf_hash"][:16] in checks["leaf"]["text"]
    assert "documents/register" in checks["tx"]["text"]
    assert f"ログ番号 {index} からの監査パスが" in checks["root"]["text"]
    assert "tama-node-1" in checks["signature"]["text"]
    assert "tama-node-1" in checks["node"]["text"]
    assert f"ブロック {tx['height']}" in checks["block"]["text"]
    # Who registered it, from the chain: staff1's key, registered in the genesis.
    assert "八王子市（hachioji）の鍵として、役割「自治体職員」" in checks["member"]["text"]
    assert "ブロック 0 で受理" in checks["member"]["text"]
    overall = page.locator("#overall")
    expect(overall).to_have_attribute("data-ok", "true")
    expect(overall).to_contain_text("すべての検証に合格しました。このファイルは八王子市が")
    expect(page.locator("#result-h")).to_be_focused()

    # The same result in English.
    page.goto(f"{demo_server.url}/lang/en?next=/documents/verify")
    page.set_input_files("#file", str(path))
    expect(page.locator("#verdict-text")).to_have_text("✓ Registered", timeout=TIMEOUT)
    expect(page.locator("#result-org")).to_have_text("Hachioji City")
    assert failing(wait_for_checks(page)) == set()
    expect(page.locator("#overall")).to_contain_text("Every check passed")


def test_an_unregistered_file_is_not_registered(demo_server, page, tmp_path):
    path = tmp_path / "unknown.pdf"
    path.write_bytes(uuid.uuid4().bytes * 100)
    verify(page, demo_server, path)
    expect(page.locator("#verdict-text")).to_have_text("✗ 登録されていません")
    expect(page.locator("#record")).to_contain_text(sha_of(path))
    expect(page.locator("#checks li")).to_have_count(0)


def test_withdrawn_and_superseded_documents_show_their_status(demo_server, page):
    verify(page, demo_server, demo_file(demo_server, "oshima-water-notice.txt"))
    expect(page.locator("#result-status")).to_have_text("取り下げ")
    expect(page.locator("#status-note")).to_contain_text("取り下げられました")
    expect(page.locator("#record")).to_contain_text("工事完了により断水は終了しました")
    expect(page.locator("#result-org")).to_have_text("大島町")
    # The registration itself is still proven.
    assert failing(wait_for_checks(page)) == set()

    final = sha_of(demo_file(demo_server, "hachioji-ordinance-final.txt"))
    verify(page, demo_server, demo_file(demo_server, "hachioji-ordinance-draft.txt"))
    expect(page.locator("#result-status")).to_have_text("差し替え済み")
    expect(page.locator("#result-newer")).to_have_attribute("href", f"/documents/{final}")
    assert failing(wait_for_checks(page)) == set()

    # The final version is proven by the supersede transaction.
    verify(page, demo_server, demo_file(demo_server, "hachioji-ordinance-final.txt"))
    checks = wait_for_checks(page)
    assert failing(checks) == set()
    assert "documents/supersede" in checks["tx"]["text"]


def test_verify_by_hash_from_the_detail_page(demo_server, page):
    digest = sha_of(demo_file(demo_server, "tachikawa-disaster-plan-r6.txt"))
    page.goto(f"{demo_server.url}/documents/{digest}")
    page.click(f"a[href='/documents/verify?sha256={digest}']")
    expect(page.locator("#result-org")).to_have_text("立川市", timeout=TIMEOUT)
    assert failing(wait_for_checks(page)) == set()
    expect(page.locator("#record")).to_contain_text("入力されたSHA-256")


def test_verify_without_webcrypto_uses_the_pure_js_hashes(demo_server, page):
    # Plain HTTP on a LAN address hides crypto.subtle; the page must still work.
    page.add_init_script(
        "Object.defineProperty(Crypto.prototype, 'subtle', { get: () => undefined })"
    )
    verify(page, demo_server, demo_file(demo_server, "hachioji-budget-r7.txt"))
    assert page.evaluate("typeof crypto.subtle") == "undefined"
    expect(page.locator("#record")).to_contain_text(
        sha_of(demo_file(demo_server, "hachioji-budget-r7.txt"))
    )
    assert failing(wait_for_checks(page)) == set()


def _flip(hex_text: str) -> str:
    return ("1" if hex_text[0] == "0" else "0") + hex_text[1:]


# Each takes the whole answer of GET /api/v1/documents/{sha256}: {"document", "proof"}.
def _audit_path(answer: dict[str, Any]) -> None:
    path = answer["proof"]["audit_path"]
    path[0] = _flip(path[0])


def _root(answer: dict[str, Any]) -> None:
    sth = answer["proof"]["sth"]
    sth["root_hash"] = _flip(sth["root_hash"])


def _signature(answer: dict[str, Any]) -> None:
    sth = answer["proof"]["sth"]
    sth["signature"] = _flip(sth["signature"])


def _tree_size(answer: dict[str, Any]) -> None:
    answer["proof"]["sth"]["tree_size"] += 1


def _claimed_leaf_hash(answer: dict[str, Any]) -> None:
    answer["proof"]["leaf_hash"] = _flip(answer["proof"]["leaf_hash"])


def _leaf_bytes(answer: dict[str, Any]) -> None:
    tx = json.loads(base64.b64decode(answer["proof"]["leaf"]))
    tx["payload"]["title"] += "（改ざん）"
    answer["proof"]["leaf"] = base64.b64encode(rfc8785.dumps(tx)).decode()


def _shown_title(answer: dict[str, Any]) -> None:
    answer["document"]["title"] += "（改ざん）"


def _node_key(answer: dict[str, Any]) -> None:
    answer["proof"]["node_public_key"] = SigningKey.generate().public_key.hex()


def _block_result(answer: dict[str, Any]) -> None:
    """The block's own record of the transaction, turned into a refusal."""
    proof = answer["proof"]
    header = proof["block"]["header"]
    position = proof["index"] - (header["tree_size"] - header["tx_count"])
    proof["block"]["results"][position] = {"status": "rejected", "code": "x", "reason": "x"}


def _block_signature(answer: dict[str, Any]) -> None:
    answer["proof"]["block"]["signature"] = _flip(answer["proof"]["block"]["signature"])


# How an answer is tampered with, and exactly which checks must then fail.
TAMPERING: dict[str, tuple[Callable[[dict[str, Any]], None], set[str]]] = {
    "audit-path": (_audit_path, {"root"}),
    # The signer's registration is proven against the same signed root.
    "root": (_root, {"root", "signature", "member"}),
    "signature": (_signature, {"signature"}),
    "tree-size": (_tree_size, {"root", "signature", "member"}),
    # The root is recomputed from the leaf's own hash, never from the claimed one.
    "claimed-leaf-hash": (_claimed_leaf_hash, {"leaf"}),
    # The edited title no longer matches the record shown, and the leaf hash changes.
    "leaf-bytes": (_leaf_bytes, {"leaf", "tx", "root", "block"}),
    "shown-title": (_shown_title, {"tx"}),
    "node-key": (_node_key, {"signature", "node"}),
    # The block no longer shows the transaction accepted, or its header signature breaks.
    "block-result": (_block_result, {"block"}),
    "block-signature": (_block_signature, {"block"}),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_tampered_proof_fails_the_right_checks(demo_server, page, case):
    path = demo_file(demo_server, "hachioji-council-minutes-2025-09.txt")
    mutate, expected = TAMPERING[case]

    def tamper(route) -> None:
        response = route.fetch()
        answer = response.json()
        mutate(answer)
        route.fulfill(response=response, json=answer)

    page.route(f"**/api/v1/documents/{sha_of(path)}", tamper)
    verify(page, demo_server, path)
    checks = wait_for_checks(page)
    assert failing(checks) == expected
    expect(page.locator("#overall")).to_have_attribute("data-ok", "false")
    expect(page.locator("#overall")).to_contain_text("検証に失敗した項目があります")


def test_a_valid_proof_or_signer_of_another_document_fails_the_right_check(demo_server, page):
    path = demo_file(demo_server, "hachioji-council-minutes-2025-09.txt")
    other = sha_of(demo_file(demo_server, "hachioji-budget-r7.txt"))
    other_proof = httpx.get(f"{demo_server.url}/api/v1/documents/{other}").json()["proof"]

    def swap(route) -> None:
        response = route.fetch()
        body = response.json()
        body["proof"] = other_proof
        route.fulfill(response=response, json=body)

    page.route(f"**/api/v1/documents/{sha_of(path)}", swap)
    verify(page, demo_server, path)
    assert failing(wait_for_checks(page)) == {"tx"}

    # The signer's member record, forged or taken from another document's bundle (another
    # town's staff), fails the member check alone.
    answer = httpx.get(f"{demo_server.url}/api/v1/documents/{sha_of(path)}").json()
    member = answer["proof"]["member"]
    elsewhere = sha_of(demo_file(demo_server, "tachikawa-disaster-plan-r6.txt"))
    foreign = httpx.get(f"{demo_server.url}/api/v1/documents/{elsewhere}").json()
    forged = [
        {**member, "org": "tachikawa"},
        {**member, "roles": ["admin"]},
        {**member, "records": []},
        foreign["proof"]["member"],
    ]
    failed = page.evaluate(
        """async ([answer, sha, forged]) => {
            const { checkProof } = await import("/static/documents/proof.js");
            const { nodes } = await (await fetch("/api/v1/identity/nodes")).json();
            const out = [];
            for (const member of [answer.proof.member, ...forged]) {
                const proof = { ...answer.proof, member };
                const checks = await checkProof(proof, sha, nodes, answer.document);
                out.push(checks.filter((c) => !c.ok).map((c) => c.id));
            }
            return out;
        }""",
        [answer, sha_of(path), forged],
    )
    assert failed == [[], ["member"], ["member"], ["member"], ["member"]]


def test_a_node_key_outside_the_consortium_fails_the_node_check(demo_server, page):
    def replace_keys(route) -> None:
        response = route.fetch()
        body = response.json()
        for node in body["nodes"]:
            node["public_key"] = SigningKey.generate().public_key.hex()
        route.fulfill(response=response, json=body)

    page.route("**/api/v1/identity/nodes", replace_keys)
    verify(page, demo_server, demo_file(demo_server, "oshima-typhoon-evacuation.txt"))
    # The blocks' proposers (the document's, the signer's registration's) are checked
    # against the same (now foreign) node keys.
    assert failing(wait_for_checks(page)) == {"node", "block", "member"}


def test_js_hashes_match_hashlib(demo_server, page):
    page.goto(demo_server.url + "/documents/verify")
    lengths = [0, 1, 3, 55, 56, 57, 63, 64, 65, 111, 112, 119, 120, 127, 128, 129, 1000, 70_000]
    results = page.evaluate(
        """async (lengths) => {
            const { Sha256, toHex } = await import("/static/documents/sha256.js");
            const { sha512 } = await import("/static/documents/sha512.js");
            return lengths.map((n) => {
                const data = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) % 256);
                const hash = new Sha256();
                // Uneven pieces exercise the partial-block buffering.
                for (let at = 0, step = 1; at < n; at += step, step = step * 3 + 1) {
                    hash.update(data.subarray(at, at + step));
                }
                return [toHex(hash.digest()), toHex(sha512(data))];
            });
        }""",
        lengths,
    )
    for n, (js256, js512) in zip(lengths, results, strict=True):
        data = bytes((i * 7 + 3) % 256 for i in range(n))
        assert js256 == hashlib.sha256(data).hexdigest(), n
        assert js512 == hashlib.sha512(data).hexdigest(), n


def _python_verifies(leaf: str, index: int, size: int, path: list[str], root: str) -> bool:
    try:
        merkle.verify_inclusion(
            bytes.fromhex(leaf), index, size, [bytes.fromhex(h) for h in path], bytes.fromhex(root)
        )
    except (merkle.ProofError, ValueError):
        return False
    return True


def test_js_inclusion_check_matches_rfc9162(demo_server, page):
    leaves = [hashlib.sha256(f"leaf {i}".encode()).digest() for i in range(33)]
    _, nodes = merkle.append(merkle.Frontier.empty(), [merkle.leaf_hash(x) for x in leaves])
    table = {(level, index): h for level, index, h in nodes}

    def get(level: int, index: int) -> bytes:
        return table[(level, index)]

    # Every leaf of small trees and of trees around a power of two, each with a valid proof
    # and broken variants; Python's RFC 9162 verifier decides what the answer must be.
    cases = []
    for size in [*range(1, 20), 31, 32, 33]:
        root = merkle.root_at(size, get).hex()
        for index in range(size):
            path = [h.hex() for h in merkle.inclusion_proof(index, size, get)]
            leaf = get(0, index).hex()
            other = (index + 1) % size
            cases += [
                [leaf, index, size, path, root],
                [leaf, other, size, path, root],
                [get(0, other).hex(), index, size, path, root],
                [leaf, index, size, path[:-1], root],
                [leaf, index, size, [*path, leaf], root],
                [leaf, index, size, path[::-1], root],
                [leaf, index, size + 1, path, root],
                [leaf, index, size, path, merkle.root_at(size - 1, get).hex()],
            ]
    expected = [_python_verifies(*case) for case in cases]
    assert 500 < expected.count(False) < len(cases) - 200
    page.goto(demo_server.url + "/documents/verify")
    results = page.evaluate(
        """async (cases) => {
            const { verifyInclusion } = await import("/static/documents/proof.js");
            const { fromHex } = await import("/static/documents/sha256.js");
            const out = [];
            for (const [leaf, index, size, path, root] of cases) {
                out.push(await verifyInclusion(fromHex(leaf), index, size, path, root));
            }
            return out;
        }""",
        cases,
    )
    wrong = [
        (case[1], case[2], len(case[3]), want)
        for case, want, got in zip(cases, expected, results, strict=True)
        if got != want
    ]
    assert not wrong, wrong[:10]


def test_js_canonical_json_matches_rfc8785(demo_server, page):
    values = [
        {"b": 1, "a": [True, None, "x"], "c": {"z": "", "y": -7}},
        {"title": "八王子市 災害時要配慮者支援条例（案）", "reason": '改行\nタブ\t引用"\\'},
        {"é": 1, "z": 2, "\U0001f600": 3, "\ufb01": 4, "A": 5, "": 6},
        {"control": "\u0001\u001f\u007f", "n": 9007199254740991, "neg": -1},
    ]
    page.goto(demo_server.url + "/documents/verify")
    got = page.evaluate(
        """async (values) => {
            const { canonicalJson } = await import("/static/documents/proof.js");
            return values.map(canonicalJson);
        }""",
        values,
    )
    assert [g.encode() for g in got] == [rfc8785.dumps(v) for v in values]


@pytest.mark.parametrize("viewport", ["page", "phone_page"])
def test_document_pages_are_accessible(demo_server, request, viewport, tmp_path):
    page: Page = request.getfixturevalue(viewport)
    url = demo_server.url
    draft = sha_of(demo_file(demo_server, "hachioji-ordinance-draft.txt"))

    page.goto(url + "/documents")
    assert_accessible(page)
    page.goto(f"{url}/documents/{draft}")
    assert_accessible(page)
    page.goto(url + "/documents/verify")
    page.click(".by-hash summary")
    assert_accessible(page)
    # A result with every part: status note, reason, proof checks and the verdict.
    verify(page, demo_server, demo_file(demo_server, "oshima-water-notice.txt"))
    wait_for_checks(page)
    assert_accessible(page)
    unknown = tmp_path / "unknown.txt"
    unknown.write_bytes(uuid.uuid4().bytes)
    verify(page, demo_server, unknown)
    assert_accessible(page)

    login(page, demo_server, "staff1")
    page.goto(url + "/documents/register")
    assert_accessible(page)
    document = tmp_path / "register.txt"
    document.write_bytes(uuid.uuid4().bytes)
    page.set_input_files("#sha256-file", str(document))
    expect(page.locator("#sha256")).to_have_value(sha_of(document), timeout=TIMEOUT)
    page.eval_on_selector("form.register", "form => form.noValidate = true")
    page.click("form.register button[type=submit]")
    expect(page.locator(".field-error")).to_have_count(2)  # no title, no category
    assert_accessible(page)
    page.fill("#title", "アクセシビリティ確認用")
    page.select_option("#category", "other")
    page.click("form.register button[type=submit]")
    expect(page.locator("h1")).to_have_text("文書を登録しました")
    assert_accessible(page)
    page.goto(f"{url}/documents/{sha_of(document)}")
    page.click("#withdraw summary")
    page.click("#supersede summary")
    assert_accessible(page)

    login(page, demo_server, "resident1")
    page.goto(url + "/documents/register")
    expect(page.locator("main .alert")).to_contain_text("文書を登録できるのは")
    assert_accessible(page)
