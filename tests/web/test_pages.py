"""Platform pages against a real demo node: portal, login, account, explorer, verification."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tsunagu.demo import ACCOUNTS, create_demo
from tsunagu.identity.contract import Role
from tsunagu.identity.private import PrivateStore
from tsunagu.ledger import merkle
from tsunagu.node.node import CHAIN_DB, NODE_KEY_FILE, Node, Receipt
from tsunagu.platform import discover_apps, platform_contracts
from tsunagu.web import pages
from tsunagu.web.app import WEB, build_catalog, create_app

PASSWORD = "pages-test-password"
NAMES = [display_name for _, display_name, _, _ in ACCOUNTS]


@dataclass
class Demo:
    node: Node
    private: PrivateStore
    app: FastAPI
    rejected: Receipt  # a transaction the identity contract refused


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    apps = discover_apps()
    node, private = create_demo(tmp_path_factory.mktemp("pages") / "data", None, apps, PASSWORD)
    # Staff may not add organisations: each try is refused, each in a block of its own, so the
    # chain is long enough to page through.
    staff = private.signing_key(private.user("staff1"))
    for n in range(pages.PAGE_SIZE + 5):
        org = {"id": f"nowhere-{n}", "type": "company", "name_ja": "架空", "name_en": "Nowhere"}
        rejected = node.submit_signed(staff, "identity", "org.add", org).future.result(30)
        assert rejected.status == "rejected"
    try:
        yield Demo(node, private, create_app(node, private, apps), rejected)
    finally:
        node.stop()


@pytest.fixture
def client(demo: Demo) -> Iterator[TestClient]:
    with TestClient(demo.app) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def tokyo(timestamp: str) -> str:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S")


def listed(html: str) -> list[int]:
    return [
        int(h) for h in re.findall(r'<td class="nowrap"><a href="/explorer/blocks/(\d+)"', html)
    ]


def wait_for_job(client: TestClient, job: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/api/v1/verify/{job}").json()
        if state["finished"]:
            return state
        time.sleep(0.05)
    raise AssertionError("verification did not finish within 60 s")


# -- explorer -------------------------------------------------------------------------------


def test_explorer_shows_this_nodes_head_in_japanese(client: TestClient, demo: Demo) -> None:
    status = demo.node.status()
    response = client.get("/explorer")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="ja">' in html
    assert "<h1>台帳エクスプローラー</h1>" in html
    for value in ("node_id", "chain_id", "head_hash", "root_hash", "state_hash"):
        assert status[value] in html
    assert f"<dd>{status['tree_size']}</dd>" in html
    assert f'<time datetime="{status["timestamp"]}">{tokyo(status["timestamp"])}</time>' in html
    assert listed(html)[0] == status["height"]
    # The proposer is named by its organisation, never by a person.
    assert "多摩・島しょ自治体ブロックチェーン協議会" in html
    assert not [name for name in NAMES if name in html]


def test_explorer_in_english(client: TestClient) -> None:
    html = client.get("/explorer?lang=en").text
    assert '<html lang="en">' in html
    assert "<h1>Explorer</h1>" in html
    assert "Verify the chain" in html
    assert "Tama and Islands Municipal Blockchain Consortium" in html
    assert "台帳" not in html


def test_explorer_pages_through_blocks(client: TestClient, demo: Demo) -> None:
    top = demo.node.status()["height"]
    assert top + 1 > pages.PAGE_SIZE
    first = client.get("/explorer").text
    assert listed(first) == list(range(top, top - pages.PAGE_SIZE, -1))
    assert 'rel="prev"' not in first
    older = re.search(r'<a href="([^"]+)" rel="next">古いブロック</a>', first)
    assert older and older.group(1) == f"/explorer?before={top - pages.PAGE_SIZE + 1}"
    second = client.get(older.group(1)).text
    assert listed(second) == list(range(top - pages.PAGE_SIZE, -1, -1))[: pages.PAGE_SIZE]
    assert 'href="/explorer" rel="prev"' in second

    html = client.get("/explorer?before=2").text
    assert listed(html) == [1, 0]
    assert f'href="/explorer?before={2 + pages.PAGE_SIZE}" rel="prev"' in html
    assert 'rel="next"' not in html  # block 0 is the oldest
    assert client.get("/explorer?before=0").status_code == 422
    past = demo.node.status()["height"] + 50
    assert client.get(f"/explorer?before={past}").status_code == 200


def test_block_page_shows_header_and_transactions(client: TestClient, demo: Demo) -> None:
    height = demo.rejected.height
    block = demo.node.store.block(height)
    assert block is not None
    html = client.get(f"/explorer/blocks/{height}").text
    header = block.header
    for value in (block.hash, header.prev_hash, header.results_hash, header.tree_root):
        assert value in html
    assert header.state_hash in html and block.signature in html
    assert f"<h1>ブロック {height}</h1>" in html
    row = html[html.index(f'href="/explorer/tx/{demo.rejected.tx_id}"') :].split("</tr>")[0]
    assert '<span class="badge bad">却下</span>' in row
    assert f"<code>{demo.rejected.code}</code>" in row  # the contract's refusal code
    assert "<code>identity</code>" in row and "<code>org.add</code>" in row
    staff = demo.private.user("staff1")
    assert staff is not None and "八王子市" in row and staff.key_id[:12] in row
    assert not [name for name in NAMES if name in html]


def test_tx_page_shows_envelope_payload_and_where_to_prove_it(
    client: TestClient, demo: Demo
) -> None:
    stored = demo.node.store.tx_at(1)
    assert stored is not None
    html = client.get(f"/explorer/tx/{stored.tx.id.upper()}").text
    leaf_hash = merkle.leaf_hash(stored.tx.leaf).hex()
    assert stored.tx.signature in html and stored.tx.signer in html
    assert f'href="/explorer/blocks/{stored.height}"' in html
    assert f'data-index="{stored.log_index}"' in html
    assert f'data-leaf-hash="{leaf_hash}"' in html
    assert '<span class="badge ok">確定</span>' in html
    title = stored.tx.payload["title"]
    assert f"  &#34;title&#34;: &#34;{title}&#34;" in html  # pretty-printed, not escaped to \u
    assert '<script type="module" src="/static/js/proof.js"></script>' in html
    # What the page's script fetches proves the transaction against the signed tree head.
    sth = client.get("/api/v1/log/sth").json()
    proof = client.get(
        "/api/v1/log/proof/inclusion",
        params={"index": stored.log_index, "tree_size": sth["tree_size"]},
    ).json()
    merkle.verify_inclusion(
        bytes.fromhex(leaf_hash),
        stored.log_index,
        sth["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(sth["root_hash"]),
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/explorer/blocks/9999", "ブロック 9999 はありません。"),
        ("/explorer/blocks/-1", "ブロック -1 はありません。"),
        ("/explorer/tx/" + "0" * 64, "その取引は見つかりません。"),
        ("/explorer/tx/not-a-tx", "その取引は見つかりません。"),
        ("/explorer/verify/nope", "その検証は見つかりません。"),
        ("/no/such/page", "ページが見つかりません。"),
    ],
)
def test_unknown_things_render_the_japanese_error_page(
    client: TestClient, path: str, message: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>ページが見つかりません</h1>" in response.text
    assert message in response.text


def test_error_page_follows_the_language(client: TestClient) -> None:
    response = client.get("/explorer/blocks/9999?lang=en")
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in response.text
    assert "There is no block 9999." in response.text


def test_find_goes_to_the_block_or_transaction(client: TestClient, demo: Demo) -> None:
    tx_id = demo.rejected.tx_id
    found = client.get("/explorer/find", params={"q": " 2 "}, follow_redirects=False)
    assert found.headers["location"] == "/explorer/blocks/2"
    found = client.get("/explorer/find", params={"q": tx_id.upper()}, follow_redirects=False)
    assert found.headers["location"] == f"/explorer/tx/{tx_id}"
    missing = client.get("/explorer/find", params={"q": "hello"})
    assert missing.status_code == 404 and "ブロック高（数字）" in missing.text


# -- verification ---------------------------------------------------------------------------


def test_verify_api_runs_to_ok(client: TestClient, demo: Demo) -> None:
    started = client.post("/api/v1/verify")
    assert started.status_code == 202
    state = wait_for_job(client, started.json()["job"])
    status = demo.node.status()
    assert state["ok"] is True
    assert state["problem"] is None and state["height"] is None
    assert state["blocks"] >= status["height"] + 1
    assert state["transactions"] >= status["tree_size"]
    assert state["done"] == state["total"] == state["blocks"]
    assert isinstance(state["seconds"], float)
    missing = client.get("/api/v1/verify/unknown")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_verify_button_needs_the_form_token(client: TestClient) -> None:
    refused = client.post("/explorer/verify", data={"csrf": "0" * 32})
    assert refused.status_code == 403
    assert "フォームの有効期限が切れました" in refused.text


def test_verify_button_polls_until_the_chain_is_intact(client: TestClient) -> None:
    token = csrf_of(client.get("/explorer").text)
    fragment = client.post(
        "/explorer/verify", data={"csrf": token}, headers={"HX-Request": "true"}
    ).text
    job = re.search(r'id="verify-bar-([0-9a-f]+)"', fragment)
    assert job and "<progress" in fragment
    deadline = time.monotonic() + 60
    while 'hx-trigger="every 500ms"' in fragment:
        assert time.monotonic() < deadline, "the fragment kept polling"
        time.sleep(0.1)
        fragment = client.get(
            f"/explorer/verify/{job.group(1)}", headers={"HX-Request": "true"}
        ).text
    assert 'data-state="ok"' in fragment
    assert '<div id="verify-said" hx-swap-oob="innerHTML">' in fragment
    assert "チェーンは正常です。" in fragment


def test_verify_without_javascript_redirects_to_its_page(client: TestClient) -> None:
    token = csrf_of(client.get("/explorer").text)
    started = client.post("/explorer/verify", data={"csrf": token}, follow_redirects=False)
    assert started.status_code == 303
    location = started.headers["location"]
    assert location.startswith("/explorer/verify/")
    wait_for_job(client, location.rsplit("/", 1)[1])
    html = client.get(location + "?lang=en").text
    assert "<h1>Verify the chain</h1>" in html
    assert "The chain is intact." in html and "hx-swap-oob" not in html


def test_verify_names_the_first_bad_block(demo: Demo, tmp_path: Path) -> None:
    # A copy of the demo chain with one stored result rewritten, served by its own app.
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(demo.node.data_dir / NODE_KEY_FILE, copy / NODE_KEY_FILE)
    with (
        sqlite3.connect(demo.node.data_dir / CHAIN_DB) as source,
        sqlite3.connect(copy / CHAIN_DB) as target,
    ):
        source.backup(target)
        target.execute(
            "UPDATE txs SET result = ? WHERE log_index = ?",
            ('{"status": "committed"}', demo.rejected.index),
        )
    node = Node(copy, platform_contracts(discover_apps()))
    try:
        with TestClient(create_app(node, PrivateStore(copy), discover_apps())) as client:
            job = client.post("/api/v1/verify").json()["job"]
            state = wait_for_job(client, job)
            assert state["ok"] is False
            assert state["height"] == demo.rejected.height
            assert "result differs from the replay" in state["problem"]
            html = client.get(f"/explorer/verify/{job}").text
            assert f"ブロック {state['height']} 以降のチェーンが損なわれています。" in html
            assert f'href="/explorer/blocks/{state["height"]}"' in html
    finally:
        node.stop()


def test_one_verification_at_a_time(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = pages.verify.verify_chain

    def slow(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(pages.verify, "verify_chain", slow)
    with TestClient(demo.app) as client:
        first = client.post("/api/v1/verify").json()["job"]
        assert client.post("/api/v1/verify").json()["job"] == first
        running = client.get(f"/api/v1/verify/{first}").json()
        assert running["finished"] is False and running["ok"] is None
        release.set()
        assert wait_for_job(client, first)["ok"] is True


# -- portal, login, account, language -----------------------------------------------------


def test_portal_explains_the_ledger_and_links_the_apps(client: TestClient, demo: Demo) -> None:
    html = client.get("/").text
    assert "改ざんに強い" in html and "履歴をたどれる" in html and "みんなで共有" in html
    for app in discover_apps():
        for link in app.nav:
            if not link.roles:
                assert f'<a href="{link.path}">' in html
    assert f"<dd>{demo.node.status()['height']}</dd>" in html


def test_login_account_and_logout(client: TestClient, demo: Demo) -> None:
    wrong = client.post("/login", data={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401
    assert "ユーザー名またはパスワードが正しくありません。" in wrong.text
    assert 'value="admin"' in wrong.text
    assert client.get("/account", follow_redirects=False).headers["location"].startswith("/login")

    done = client.post(
        "/login",
        data={"username": "coordinator1", "password": PASSWORD, "next": "/account"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/account"
    html = client.get("/account").text
    assert "立川市" in html  # the organisation's name from the chain, not its id
    assert "<li>災害対策本部</li>" in html and "<li>自治体職員</li>" in html
    assert client.get("/account?lang=en").text.count("Disaster headquarters") == 1

    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    out = client.post("/logout", data={"csrf": csrf_of(html)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/explorer?before=3", "/explorer?before=3"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        (None, "/"),
    ],
)
def test_redirects_stay_on_this_node(target: str | None, expected: str) -> None:
    assert pages._safe_next(target) == expected


def test_login_never_lands_on_the_login_page(client: TestClient) -> None:
    assert pages._after_login("/login?next=/account") == "/"
    assert 'name="next" value="/"' in client.get("/login?next=/login").text
    html = client.get("/login?next=/explorer").text
    assert 'name="next" value="/explorer"' in html
    assert 'href="/lang/en?next=/login%3Fnext%3D%252Fexplorer"' in html  # quoted twice


def test_language_switch_returns_to_the_same_page(client: TestClient) -> None:
    html = client.get("/explorer?before=2&lang=ja").text
    assert 'href="/lang/en?next=/explorer%3Fbefore%3D2"' in html  # ?lang= is dropped
    switched = client.get("/lang/en?next=/explorer%3Fbefore%3D2", follow_redirects=False)
    assert switched.headers["location"] == "/explorer?before=2"
    assert '<html lang="en">' in client.get("/").text
    client.get("/lang/ja")
    assert '<html lang="ja">' in client.get("/").text


# -- translations ---------------------------------------------------------------------------

MSGID = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def platform_msgids() -> set[str]:
    sources = [*sorted((WEB / "templates").rglob("*.html")), Path(pages.__file__)]
    found = {a or b for path in sources for a, b in MSGID.findall(path.read_text("utf-8"))}
    found.discard("role:")  # the prefix of _("role:" ~ role)
    return found


def test_every_platform_message_has_a_japanese_translation() -> None:
    catalog = build_catalog([])
    ids = platform_msgids()
    assert len(ids) > 100
    missing = sorted(i for i in ids if catalog.gettext("ja", i) == i)
    assert missing == []


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_role_has_a_name(lang: str) -> None:
    catalog = build_catalog([])
    for role in typing.get_args(Role):
        assert catalog.gettext(lang, f"role:{role}") != f"role:{role}", role
