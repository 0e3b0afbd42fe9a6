"""The platform pages in real Chromium against a real demo node: log in, explore, prove a
transaction in the browser, verify the chain, switch language, and pass axe on every page at
desktop and phone width."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from e2e.axe import assert_accessible
from e2e.conftest import DemoServer, login

pytestmark = pytest.mark.e2e


def first_tx_link(page: Page, server: DemoServer) -> str:
    """The explorer link of a transaction in block 1 (the first block after genesis)."""
    page.goto(server.url + "/explorer/blocks/1")
    return page.locator("table.txs tbody tr").first.locator("a").get_attribute("href") or ""


def fits_width(page: Page) -> None:
    """Nothing sticks out sideways: only .table-wrap regions may scroll horizontally."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url
    width = page.viewport_size["width"] if page.viewport_size else 0
    for item in page.locator("nav.main li").all():
        box = item.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, page.url


def test_admin_explores_proves_verifies_and_switches_language(
    page: Page, demo_server: DemoServer
) -> None:
    login(page, demo_server, "admin")
    expect(page.locator('nav.main a[href="/account"]')).to_have_text("協議会 管理者")

    page.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="台帳エクスプローラー"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("台帳エクスプローラー")
    status = httpx.get(demo_server.url + "/api/v1/status").json()
    expect(page.locator("main")).to_contain_text(status["node_id"])
    expect(page.locator("main")).to_contain_text(status["chain_id"])

    # A block, then one of its transactions. The demo has hundreds of blocks: block 1 (the
    # consortium's first members) is on the oldest page.
    page.goto(demo_server.url + "/explorer?before=2")
    page.get_by_role("link", name="ブロック 1", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("ブロック 1")
    expect(page.locator("dl.facts")).to_contain_text("多摩・島しょ自治体ブロックチェーン協議会")
    tx_link = page.locator("table.txs tbody tr").first.locator("a")
    tx_id = tx_link.locator("code").get_attribute("title") or ""
    tx_link.click()
    expect(page).to_have_url(re.compile(f"/explorer/tx/{tx_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"取引 {tx_id[:12]}")

    # The browser proves the transaction from the log API by itself.
    proof = page.locator("#proof")
    expect(proof).to_have_attribute("data-state", "ok", timeout=15_000)
    expect(proof.locator(".checks li.pass")).to_have_count(3)
    expect(proof.locator(".proof-summary")).to_contain_text("ブラウザでの検証に成功しました")

    # Verify the whole chain and watch the result arrive.
    page.get_by_role("link", name="台帳エクスプローラー", exact=True).first.click()
    page.get_by_role("button", name="チェーンを検証する").click()
    result = page.locator("#verify-said")
    expect(result).to_contain_text("チェーンは正常です。", timeout=30_000)
    bar = page.locator("#verify-job progress")
    assert bar.get_attribute("value") == bar.get_attribute("max")
    expect(page.locator("#verify-job .verify-job")).to_have_attribute("data-state", "ok")

    # English and back, staying on the same page.
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Explorer")
    expect(page.get_by_role("button", name="Verify the chain")).to_be_visible()
    page.get_by_role("link", name="日本語").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text("台帳エクスプローラー")
    assert page.url.endswith("/explorer")


def test_wrong_password_is_explained_in_japanese(page: Page, demo_server: DemoServer) -> None:
    page.goto(demo_server.url + "/login")
    page.fill("#username", "admin")
    page.fill("#password", "not the password")
    page.click("main button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("ユーザー名またはパスワードが正しくありません。")
    expect(page.locator("#username")).to_have_value("admin")
    assert_accessible(page)


@pytest.mark.parametrize("viewport", ["page", "phone_page"])
def test_every_platform_page_is_accessible(
    request: pytest.FixtureRequest, viewport: str, demo_server: DemoServer
) -> None:
    page: Page = request.getfixturevalue(viewport)
    url = demo_server.url

    def check(path: str) -> None:
        page.goto(url + path)
        page.wait_for_load_state("load")
        assert_accessible(page)
        fits_width(page)

    check("/")
    expect(page.locator(".cards a")).not_to_have_count(0)
    check("/login")
    check("/explorer")
    check("/explorer/blocks/1")
    check("/explorer/blocks/999999")
    expect(page.get_by_role("heading", level=1)).to_have_text("ページが見つかりません")

    tx = first_tx_link(page, demo_server)
    page.goto(url + tx)
    expect(page.locator("#proof")).to_have_attribute("data-state", "ok", timeout=15_000)
    page.locator("#proof details summary").click()
    assert_accessible(page)
    fits_width(page)

    # The explorer with a finished verification in it, and the verification's own page.
    page.goto(url + "/explorer")
    page.get_by_role("button", name="チェーンを検証する").click()
    expect(page.locator("#verify-said .alert")).to_be_visible(timeout=30_000)
    assert_accessible(page)
    fits_width(page)
    job = httpx.post(url + "/api/v1/verify").json()["job"]
    check(f"/explorer/verify/{job}")

    login(page, demo_server, "resident1")
    check("/account")
    expect(page.locator("main")).to_contain_text("住民")
    check("/account?lang=en")
    check("/explorer?lang=en")


@pytest.mark.e2e
@pytest.mark.parametrize(("username", "path"), [(None, "/relief/scan"), ("shop1", "/eco/shop")])
def test_scanners_share_the_camera_module(
    page: Page, demo_server: DemoServer, username: str | None, path: str
) -> None:
    """Both scan pages run /static/qrscan.js: with no camera (headless Chromium has none)
    the start button says so in Japanese, and the page raises no script error."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    loaded: list[str] = []
    page.on("response", lambda r: loaded.append(r.url) if r.ok else None)
    if username:
        login(page, demo_server, username)
    page.goto(demo_server.url + path)
    page.locator("[data-scanner] [data-start]").click()
    expect(page.locator("[data-scan-status]")).to_have_text(
        "ここではカメラを使えません。コードを入力してください。", timeout=10_000
    )
    assert any(u.endswith("/static/qrscan.js") for u in loaded)
    assert any(u.endswith("/static/vendor/jsQR.js") for u in loaded)
    assert errors == []
