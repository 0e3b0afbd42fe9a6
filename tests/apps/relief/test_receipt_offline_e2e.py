"""Offline receipts in real Chromium against a real demo server (audit finding 3): a receipt
kept on the device survives an expired session and is sent after logging in again; a receipt
the contract refuses leaves the device and is listed on whatever relief page is open, and the
form can be used again.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.axe import assert_accessible
from e2e.conftest import DemoServer, demo_server  # noqa: F401

from .test_relief_e2e import CONTEXT, TIMEOUT

pytestmark = pytest.mark.e2e

PENDING = "tsunagu.relief.pendingReceipts"
FAILED = "tsunagu.relief.failedReceipts"


@pytest.fixture(scope="module")
def server(demo_server) -> DemoServer:  # noqa: F811
    return demo_server


def call(server: DemoServer, user: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {server.token(user)}"}
    response = httpx.request(
        method, server.url + "/api/v1/relief" + path, json=body, headers=headers, timeout=20
    )
    assert response.status_code < 300, response.text
    return response.json()


def shipped(server: DemoServer, quantity: int = 12) -> dict[str, Any]:
    """A match of water from supporter1 to shelter1's shelter, reported shipped."""
    from datetime import UTC, datetime, timedelta

    day = lambda n: (datetime.now(UTC) + timedelta(hours=9, days=n)).date().isoformat()  # noqa: E731
    need = call(
        server,
        "shelter1",
        "POST",
        "/needs",
        {"item": "tokyo-1", "quantity": quantity, "needed_by": day(3)},
    )["id"]
    offer = call(
        server,
        "supporter1",
        "POST",
        "/offers",
        {
            "item": "tokyo-1",
            "quantity": quantity,
            "ship_by": day(2),
            "allergens": [],
            "expiry": day(500),
        },
    )["id"]
    body = {"allocations": [{"need_id": need, "offer_id": offer, "quantity": quantity}]}
    (match,) = call(server, "coordinator1", "POST", "/matches", body)["matches"]
    call(server, "supporter1", "POST", f"/matches/{match['id']}/shipment", {})
    return call(server, "shelter1", "GET", f"/matches/{match['id']}")["match"]


def log_in(page: Page, server: DemoServer, user: str) -> None:
    page.goto(server.url + "/login")
    page.fill("#username", user)
    page.fill("#password", server.password)
    page.click("main button[type=submit]")
    page.wait_for_load_state("load")


def kept(page: Page, key: str = PENDING) -> list[dict[str, Any]]:
    return json.loads(page.evaluate(f"localStorage.getItem('{key}') || '[]'"))


def shelter_page(browser: Browser, server: DemoServer) -> Page:
    """A fresh browser context, logged in as shelter1's staff."""
    page = browser.new_context(**CONTEXT).new_page()
    page.set_default_timeout(TIMEOUT)
    log_in(page, server, "shelter1")
    return page


def test_an_offline_receipt_survives_an_expired_session(browser: Browser, server: DemoServer):
    match = shipped(server)
    page = shelter_page(browser, server)
    page.goto(server.url + f"/r/{match['code']}")
    page.context.set_offline(True)
    page.check("input[name=outcome][value=partial]")
    page.fill("#r-quantity", "10")
    page.click("[data-receipt-form] button[type=submit]")
    status = page.locator("[data-receipt-status]")
    expect(status).to_contain_text("この端末に保存しました")

    # The session ends while the device is offline; back online, the receipt is refused 401.
    page.context.clear_cookies()
    page.context.set_offline(False)
    expect(status).to_contain_text("ログインしてください")
    expect(status).to_contain_text("消えていません")
    assert_accessible(page)
    assert [e["match"] for e in kept(page)] == [match["id"]]
    assert call(server, "shelter1", "GET", f"/matches/{match['id']}")["match"]["status"] == (
        "shipped"
    )

    # The link logs in and comes back to the package, where the kept receipt is sent.
    page.click("[data-receipt-login]")
    page.wait_for_url("**/login**")
    page.fill("#username", "shelter1")
    page.fill("#password", server.password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**/r/{match['code']}")
    expect(page.locator("[data-receipt-status]")).to_contain_text("台帳に記録しました")
    page.wait_for_timeout(1200)  # receipt.js reloads the page after the receipt lands
    page.wait_for_load_state("load")
    landed = call(server, "shelter1", "GET", f"/matches/{match['id']}")["match"]
    assert landed["status"] == "received"
    assert (landed["receipt"]["outcome"], landed["receipt"]["quantity"]) == ("partial", 10)
    assert kept(page) == []
    page.context.close()


def test_a_refused_receipt_is_listed_on_any_page_and_the_form_works_again(
    browser: Browser, server: DemoServer
):
    first, second = shipped(server), shipped(server)
    page = shelter_page(browser, server)

    # A receipt for the first package waits on the device while someone else records it.
    page.goto(server.url + f"/r/{first['code']}")
    page.context.set_offline(True)
    page.click("[data-receipt-form] button[type=submit]")
    expect(page.locator("[data-receipt-status]")).to_contain_text("この端末に保存しました")
    body = {"outcome": "full", "client_ref": "other-tablet-1"}
    call(server, "shelter1", "POST", f"/matches/{first['id']}/receipt", body)

    # Back online on the SECOND package's page: the refusal of the first is shown here.
    page.goto("about:blank")
    page.context.set_offline(False)
    page.goto(server.url + f"/r/{second['code']}")
    failures = page.locator("[data-receipt-failures]")
    expect(failures).to_contain_text(first["id"])
    expect(failures).to_contain_text("受領は記録済みです")
    assert_accessible(page)
    assert kept(page) == []
    assert [f["match"] for f in kept(page, FAILED)] == [first["id"]]

    # A refused submission of the form on screen: the button can be used again.
    page.check("input[name=outcome][value=partial]")
    page.fill("#r-quantity", "99")
    button = page.locator("[data-receipt-form] button[type=submit]")
    button.click()
    expect(page.locator("[data-receipt-status]")).to_contain_text("受け付けられませんでした")
    expect(button).to_be_enabled()
    assert kept(page) == []
    page.fill("#r-quantity", "11")
    button.click()
    expect(page.locator("[data-receipt-status]")).to_contain_text("台帳に記録しました")
    page.wait_for_timeout(1200)
    page.wait_for_load_state("load")
    assert call(server, "shelter1", "GET", f"/matches/{second['id']}")["match"]["status"] == (
        "received"
    )
    # The list stays until dismissed.
    expect(page.locator("[data-receipt-failures]")).to_be_visible()
    page.click("[data-receipt-failures] button")
    expect(page.locator("[data-receipt-failures]")).to_have_count(0)
    assert kept(page, FAILED) == []
    page.context.close()
