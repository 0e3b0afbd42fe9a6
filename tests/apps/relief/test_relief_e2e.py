"""The relief pages in real Chromium against a real demo server, ① to ⑧ with the source
document's own examples: the shelter posts おかゆ and アレルギー対応災害食 (free of the 8
mandatory allergens), the supporter offers 子供服 size 150 and アレルギー対応缶詰, the
coordinator confirms, the label's QR code is decoded from the rasterised PDF and opened, the
shelter hears of the shipment live (SSE), records the receipt while OFFLINE and it lands
exactly once, and the supporter sees matched → shipped → received with transaction ids.
Every relief page passes axe on a desktop and at 390 px.
"""

from __future__ import annotations

from typing import Any

import httpx
import pypdfium2
import pytest
import zxingcpp
from playwright.sync_api import Browser, Page, expect

from e2e.axe import assert_accessible
from e2e.conftest import DemoServer, demo_server, login  # noqa: F401
from tsunagu.apps.relief import catalog

pytestmark = pytest.mark.e2e

TIMEOUT = 15_000
CONTEXT = {
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


@pytest.fixture(scope="module")
def server(demo_server) -> DemoServer:  # noqa: F811
    return demo_server


def api(server: DemoServer, user: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {server.token(user)}"}
    response = httpx.get(server.url + "/api/v1/relief" + path, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


def open_as(browser: Browser, server: DemoServer, user: str, **options: Any) -> Page:
    page = browser.new_context(**(options or CONTEXT)).new_page()
    page.set_default_timeout(TIMEOUT)
    login(page, server, user)
    return page


def visit(page: Page, url: str) -> None:
    page.goto(url)
    assert_accessible(page)


def choose_item(page: Page, item: str) -> None:
    page.select_option("#item", item)


def test_relief_from_need_to_receipt(browser: Browser, server: DemoServer) -> None:
    base = server.url
    shelter = open_as(browser, server, "shelter1")
    supporter = open_as(browser, server, "supporter1")
    coordinator = open_as(browser, server, "coordinator1")

    # ① the shelter posts おかゆ and アレルギー対応災害食 free of the 8 mandatory allergens.
    visit(shelter, base + "/relief")
    visit(shelter, base + "/relief/needs")
    choose_item(shelter, "tokyo-51")
    shelter.fill("#quantity", "40")
    shelter.select_option("#priority", "urgent")
    shelter.click("form[action='/relief/needs'] button[type=submit]")
    expect(shelter.locator(".alert.ok")).to_be_visible()
    choose_item(shelter, "food-allergy-friendly")
    shelter.fill("#quantity", "25")
    for allergen in catalog.mandatory_allergens():
        shelter.check(f"input[name=allergen_free][value={allergen}]")
    shelter.click("form[action='/relief/needs'] button[type=submit]")
    expect(shelter.locator(".alert.ok")).to_be_visible()
    assert_accessible(shelter)
    mine = api(server, "shelter1", "/needs?shelter=tachikawa-shelter-1&status=open")["needs"]
    allergy = [n for n in mine if n["item"] == "food-allergy-friendly" and n["quantity"] == 25]
    assert sorted(allergy[0]["allergen_free"]) == sorted(catalog.mandatory_allergens())
    okayu = [n for n in mine if n["item"] == "tokyo-51" and n["quantity"] == 40]
    ours = {allergy[0]["id"], okayu[0]["id"]}

    # ② the supporter offers 子供服 (new, size 150) and アレルギー対応缶詰.
    visit(supporter, base + "/relief/offers")
    choose_item(supporter, "clothing-children")
    supporter.fill("#quantity", "20")
    supporter.fill("#size", "150")
    supporter.click("form[action='/relief/offers'] button[type=submit]")
    expect(supporter.locator(".alert.ok")).to_be_visible()
    choose_item(supporter, "food-allergy-canned")
    supporter.fill("#quantity", "40")
    supporter.check("input[name=declared][value=yes]")
    supporter.fill("#expiry", "2030-12-31")
    supporter.click("form[action='/relief/offers'] button[type=submit]")
    expect(supporter.locator(".alert.ok")).to_be_visible()
    assert_accessible(supporter)

    # ③ the coordinator keeps the rows that fill the new needs and confirms them in one go.
    visit(coordinator, base + "/relief/review")
    boxes = coordinator.locator("input[name=pick]")
    kept = 0
    for i in range(boxes.count()):
        box = boxes.nth(i)
        if box.get_attribute("value").split("|")[0] in ours:
            kept += 1
        else:
            box.uncheck()
    assert kept >= 1, "the proposal fills none of the new needs"
    coordinator.click("form[action='/relief/review'] button[type=submit]")
    expect(coordinator.locator(".alert.ok")).to_contain_text("台帳に確定しました")
    assert_accessible(coordinator)
    matches = api(server, "supporter1", "/matches?mine=true&status=confirmed")["matches"]
    match = next(m for m in matches if m["need"] in ours)

    # ④ the label: download, rasterise, decode the QR, open the URL.
    visit(supporter, base + "/relief/matches")
    visit(supporter, base + f"/relief/matches/{match['id']}")
    pdf = supporter.request.get(base + match["label_url"])
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    image = pypdfium2.PdfDocument(pdf.body())[0].render(scale=4).to_pil()
    decoded = [r.text for r in zxingcpp.read_barcodes(image) if "/r/" in r.text]
    assert decoded and decoded[0].endswith(f"/r/{match['code']}"), decoded
    visit(supporter, base + "/r/" + decoded[0].rsplit("/r/", 1)[1])
    expect(supporter.locator("h1")).to_contain_text(match["item_name"]["ja"])

    # ⑥ the shelter's inbox is open and listening while ⑤ the supporter reports the shipment.
    visit(shelter, base + "/relief/inbox")
    shelter.wait_for_timeout(300)  # let the EventSource connect
    supporter.goto(base + f"/relief/matches/{match['id']}")
    supporter.fill("#carrier", "ヤマト運輸")
    supporter.fill("#tracking", "1234-5678")
    supporter.click("form[action$='/shipment'] button[type=submit]")
    expect(supporter.locator(".alert.ok")).to_be_visible()
    fresh = shelter.locator(f"li.fresh[data-id]:has-text('{match['item_name']['ja']}')")
    expect(fresh.first).to_be_visible()
    expect(shelter.locator("[data-live]")).to_contain_text("発送")

    # ⑦ the shelter opens the package page, goes offline, records the receipt on the device.
    visit(shelter, base + f"/r/{match['code']}")
    shelter.context.set_offline(True)
    shelter.click("[data-receipt-form] button[type=submit]")
    expect(shelter.locator("[data-receipt-status]")).to_contain_text("この端末に保存しました")
    assert api(server, "shelter1", f"/matches/{match['id']}")["match"]["status"] == "shipped"
    shelter.context.set_offline(False)
    expect(shelter.locator("[data-receipt-status]")).to_contain_text("台帳に記録しました")
    # receipt.js reloads the page 600 ms after the receipt lands: let that reload finish
    # before reloading ourselves, or the two navigations abort each other.
    shelter.wait_for_timeout(1200)
    shelter.wait_for_load_state("load")
    landed = api(server, "shelter1", f"/matches/{match['id']}")["match"]
    assert landed["status"] == "received"
    assert [e["action"] for e in landed["timeline"]] == ["matched", "shipped", "received"]
    shelter.reload()  # a reload must not send it again
    shelter.wait_for_timeout(300)
    again = api(server, "shelter1", f"/matches/{match['id']}")["match"]
    assert [e["action"] for e in again["timeline"]].count("received") == 1

    # ⑧ the supporter sees matched → shipped → received, each with its transaction.
    visit(supporter, base + f"/relief/matches/{match['id']}")
    steps = supporter.locator("ol.timeline li")
    expect(steps).to_have_count(3)
    for i, tx in enumerate(landed["timeline"]):
        expect(steps.nth(i).locator(f"a[href='/explorer/tx/{tx['tx_id']}']")).to_be_visible()
        expect(steps.nth(i)).to_contain_text(str(tx["height"]))
    visit(supporter, base + "/relief/inbox")
    visit(coordinator, base + "/relief/overview")
    visit(coordinator, base + "/relief")
    visit(supporter, base + "/relief")
    visit(shelter, base + "/relief/scan")
    visit(shelter, base + "/relief/matches")

    for page in (shelter, supporter, coordinator):
        page.context.close()


PHONE_PAGES = {
    None: ["/relief", "/relief/scan"],
    "shelter1": ["/relief/needs", "/relief/inbox", "/relief/matches"],
    "supporter1": ["/relief/offers", "/relief/matches"],
    "coordinator1": ["/relief/review", "/relief/overview"],
}


def test_relief_pages_on_a_phone(browser: Browser, server: DemoServer) -> None:
    for user, paths in PHONE_PAGES.items():
        context = browser.new_context(**PHONE)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        if user:
            login(page, server, user)
        for path in paths:
            visit(page, server.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 392, f"{path} scrolls sideways at 390 px ({width} px)"
        if user == "shelter1":
            code = api(server, "shelter1", "/matches?mine=true")["matches"][0]["code"]
            visit(page, server.url + f"/r/{code}")
        context.close()
