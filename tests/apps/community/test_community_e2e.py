"""The community pages in real Chromium against a real ``tsunagu demo`` server: an organiser
publishes an activity; the volunteer checks in and out by the rotating QR code (decoded with
zxing-cpp from a screenshot of the organiser's screen, then opened on the volunteer's phone:
a camera cannot run headless); the organiser attests; the volunteer downloads the credential
and verifies it on the public page; a skill search finds a neighbour only when its visibility
allows; the volunteer erases their data. Every community page passes axe."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from e2e.axe import assert_accessible
from e2e.conftest import DemoServer, login

pytestmark = pytest.mark.e2e

TIMEOUT = 15_000
DESKTOP = {
    "locale": "ja-JP",
    "timezone_id": "Asia/Tokyo",
    "viewport": {"width": 1280, "height": 800},
}
PHONE = {
    "locale": "ja-JP",
    "timezone_id": "Asia/Tokyo",
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}


def open_as(browser: Browser, server: DemoServer, user: str, options: dict[str, Any]) -> Page:
    page = browser.new_context(**options).new_page()
    page.set_default_timeout(TIMEOUT)
    login(page, server, user)
    return page


def visit(page: Page, url: str) -> None:
    page.goto(url)
    assert_accessible(page)


def scan(organiser: Page) -> str:
    """What a phone camera would read from the QR code on the organiser's screen."""
    organiser.reload()
    png = organiser.locator(".cm-qr svg").screenshot()
    (result,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return result.text


def search(page: Page, server: DemoServer, skill: str) -> str:
    page.goto(f"{server.url}/community/search?skill={skill}")
    return page.locator("#results").inner_text()


def test_community_walk(browser: Browser, demo_server: DemoServer) -> None:
    base = demo_server.url
    organiser = open_as(browser, demo_server, "organiser1", DESKTOP)
    volunteer = open_as(browser, demo_server, "resident3", PHONE)

    # The organiser publishes an activity (the form defaults to starting in five minutes).
    visit(organiser, base + "/community")
    visit(organiser, base + "/community/activities/new")
    organiser.select_option("#category", "story-time")
    organiser.fill("#title", "こども読み聞かせ会")
    organiser.fill("#place", "八王子市 南大沢図書館")
    organiser.click("main form button[type=submit]")
    expect(organiser.locator("h1")).to_have_text("こども読み聞かせ会")
    assert_accessible(organiser)

    # The volunteer's phone scans the rotating code and checks in, then out.
    url = scan(organiser)
    assert url.startswith(base + "/community/checkin/a-")
    visit(volunteer, url)
    volunteer.click("text=今すぐチェックイン")
    expect(volunteer.locator("[role=status]")).to_contain_text("チェックインしました")
    volunteer.goto(scan(organiser))
    volunteer.click("text=今すぐチェックアウト")
    expect(volunteer.locator("[role=status]")).to_contain_text("チェックアウトしました")

    # Out at once: under a minute counts as nothing and cannot be attested. The organiser
    # corrects the times (the volunteer stayed two minutes), then attests; the credential is
    # issued and anchored.
    here = organiser.url
    organiser.reload()
    organiser.click("text=確認する")
    expect(organiser.locator("[role=alert]")).to_contain_text("1分未満")
    organiser.goto(here)
    organiser.click("text=時刻を訂正する")
    stayed = datetime.fromisoformat(organiser.input_value("#in-1")) + timedelta(minutes=2)
    organiser.fill("#out-1", stayed.strftime("%Y-%m-%dT%H:%M"))
    organiser.fill("#reason-1", "受付の後も活動していたため訂正")
    organiser.click("text=訂正を記録する")
    expect(organiser.locator("[role=status]")).to_contain_text("訂正を記録しました")
    organiser.click("text=確認する")
    expect(organiser.locator("[role=status]")).to_contain_text("証明書を発行")
    assert_accessible(organiser)

    # The volunteer downloads the credential and verifies it on the public page.
    visit(volunteer, base + "/community/me")
    item = volunteer.locator(".cm-list li", has_text="こども読み聞かせ会").first
    with volunteer.expect_download() as download:
        item.locator("text=証明書（JSON）").click()
    credential = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    public = browser.new_context(**PHONE).new_page()
    public.goto(base + "/community/verify")
    public.fill("#credential", json.dumps(credential, ensure_ascii=False))
    public.click("main form button[type=submit]")
    expect(public.locator(".cm-report [role=status]")).to_contain_text("この証明書は有効です")
    assert public.locator("[data-ok=yes]").count() == 4
    assert_accessible(public)
    credential["credentialSubject"]["achievement"]["name"] = "認知症カフェ"
    public.goto(base + "/community/verify")
    public.fill("#credential", json.dumps(credential, ensure_ascii=False))
    public.click("main form button[type=submit]")
    expect(public.locator("[data-check=signature]")).to_have_attribute("data-ok", "no")
    item.locator("a").first.click()
    expect(volunteer.locator(".cm-report")).to_contain_text("この証明書は有効です")
    assert_accessible(volunteer)

    # A skill for the same municipality only: a Hachioji neighbour finds it, Tachikawa does not.
    volunteer.goto(base + "/community/me")
    volunteer.select_option("#skill", "paperwork")
    volunteer.select_option("#visibility", "municipality")
    volunteer.click("text=技能を保存")
    expect(volunteer.locator("#skills")).to_contain_text("書類の記入の手伝い")
    neighbour = open_as(browser, demo_server, "resident4", DESKTOP)
    far = open_as(browser, demo_server, "resident2", DESKTOP)
    assert "けん" in search(neighbour, demo_server, "paperwork")
    assert_accessible(neighbour)
    assert "けん" not in search(far, demo_server, "paperwork")
    visit(neighbour, base + "/community/help")
    visit(neighbour, base + "/community/dashboard")
    # The organiser's side of "scan the volunteer's code", and a page that is not there.
    me = httpx.get(
        base + "/api/v1/me", headers={"Authorization": f"Bearer {demo_server.token('resident4')}"}
    ).json()
    aid = url.split("/checkin/")[1].split("?")[0]
    visit(organiser, f"{base}/community/activities/{aid}/volunteer/{me['key_id']}")
    expect(organiser.locator("main button")).to_have_text("今チェックインを記録する")
    visit(neighbour, base + "/community/activities/a-0000000000000000")

    # The volunteer erases their data; the organiser's list shows the session as erased.
    volunteer.goto(base + "/community/me")
    volunteer.check("input[name=confirm]")
    volunteer.click("text=地域貢献のデータを消去する")
    expect(volunteer.locator("[role=status]").first).to_contain_text("消去されました")
    organiser.goto(f"{base}/community/activities/{aid}")
    expect(organiser.locator("table")).to_contain_text("（消去済み）")
    assert "けん" not in search(neighbour, demo_server, "paperwork")
