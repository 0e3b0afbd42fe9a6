"""The eco-points programme end to end in real Chromium against a real ``tsunagu demo``:

a resident registers a PV device, environment staff approve it, ``tsunagu device simulate``
sends its signed readings over HTTP, the resident's points rise, a QR voucher (decoded from
the page with zxing-cpp) is redeemed at a shop, staff compile a monitoring report, the
verifier approves, staff issue and offer the lot, a company buys and retires it, and the
certificate's QR (decoded from the PDF) opens the public page that confirms the retirement.
Every eco page passes axe-core (no serious or critical violation).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from e2e.axe import assert_accessible
from e2e.conftest import DemoServer, demo_server, login  # noqa: F401

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


@pytest.fixture(scope="module")
def server(demo_server) -> DemoServer:  # noqa: F811
    return demo_server


def open_as(browser: Browser, server: DemoServer, user: str, options: dict[str, Any]) -> Page:
    page = browser.new_context(**options).new_page()
    page.set_default_timeout(TIMEOUT)
    login(page, server, user)
    return page


def visit(page: Page, url: str) -> None:
    page.goto(url)
    assert_accessible(page)


def points(page: Page) -> int:
    return int(page.locator("[data-points]").inner_text().replace(",", ""))


def decode(image: Image.Image) -> str:
    codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(codes) == 1, codes
    return codes[0].text


@pytest.mark.e2e
def test_eco_points_to_retired_credit(browser: Browser, server: DemoServer, tmp_path: Path):
    base = server.url
    visit(browser.new_context(**DESKTOP).new_page(), base + "/eco")

    # 1. The resident registers a PV array whose meter was read three days ago.
    resident = open_as(browser, server, "resident1", PHONE)
    visit(resident, base + "/eco/me")
    before = points(resident)
    resident.fill("#rated_w", "8000")
    start = (datetime.now(UTC) + timedelta(hours=9) - timedelta(days=3)).date().isoformat()
    resident.fill("#start_date", start)
    resident.check("#consent")
    resident.click("form[action='/eco/devices'] button[type=submit]")
    expect(resident.locator("h1")).to_have_text("機器を登録しました")
    assert_accessible(resident)
    provisioning = json.loads(resident.locator("#provisioning").input_value())
    device = provisioning["device"]
    (tmp_path / "device.json").write_text(json.dumps(provisioning), "utf-8")

    # 2. Environment staff approve it.
    staff = open_as(browser, server, "envstaff1", DESKTOP)
    visit(staff, base + "/eco/staff")
    staff.click(f"button[aria-label='{device} を承認']")
    expect(staff.locator(".alert.ok")).to_be_visible()

    # 3. The device sends three days of signed readings over HTTP.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tsunagu.cli",
            "device",
            "simulate",
            "--provisioning",
            str(tmp_path / "device.json"),
            "--interval-minutes",
            "180",
            "--seed",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 rejected" in run.stdout

    # 4. The points rise; the resident shows a QR voucher for a coffee (80 points).
    resident.goto(base + "/eco/me")
    after = points(resident)
    assert after > before
    resident.click("button[aria-label='立川こむぎ堂 コーヒー1杯無料 のQRコードを表示']")
    expect(resident.locator("[data-voucher] svg")).to_be_visible()
    assert_accessible(resident)
    shot = resident.locator("[data-voucher] svg").screenshot()
    url = decode(Image.open(io.BytesIO(shot)))
    assert url.startswith(base + "/eco/shop?code=ECO1.")

    # 5. The shop checks the code (the scanner's fallback field) and redeems it, once.
    shop = open_as(browser, server, "shop1", PHONE)
    visit(shop, base + "/eco/shop")
    shop.fill("#code", url)
    shop.click("form[method=get] button[type=submit]")
    expect(shop.locator("[data-reward]")).to_have_text("立川こむぎ堂 コーヒー1杯無料")
    shop.click("form[action='/eco/shop'][method=post] button[type=submit]")
    expect(shop.locator(".alert.ok")).to_contain_text("消却")
    shop.fill("#code", url)
    shop.click("form[method=get] button[type=submit]")
    expect(shop.locator(".bad")).to_have_text("このQRコードは使用済みです。")
    resident.goto(base + "/eco/me")
    assert points(resident) == after - 80

    # 6. Staff compile last month's report; the verifier approves; staff issue and offer it.
    staff.goto(base + "/eco/staff")
    reports = staff.locator("tbody tr").count()
    staff.click("form:has(input[value=compile]) button[type=submit]")
    expect(staff.locator(".alert.ok")).to_be_visible()
    verifier = open_as(browser, server, "verifier1", DESKTOP)
    visit(verifier, base + "/eco/verifier")
    verifier.locator("form:has(input[value=approve]) button").first.click()
    expect(verifier.locator(".alert.ok")).to_be_visible()
    staff.goto(base + "/eco/staff")
    staff.click("form:has(input[value=issue]) button[type=submit]")
    expect(staff.locator(".alert.ok")).to_contain_text("発行")
    assert staff.locator("tbody tr").count() >= reports
    lots = staff.locator("form:has(input[value=list])")
    lot = lots.last.locator("input[name=lot]").input_value()
    lots.last.locator("button").click()
    expect(staff.locator(".alert.ok")).to_be_visible()

    # 7. The company buys one t-CO2 of the new lot and retires it.
    company = open_as(browser, server, "company1", DESKTOP)
    visit(company, base + "/eco/company")
    company.locator(f"form:has(input[name=lot][value='{lot}']) button").click()
    expect(company.locator(".alert.ok")).to_be_visible()
    held = company.locator("form:has(input[value=retire])").last
    held.locator("input[name=purpose]").fill("2026年度 社用車のCO2排出量のオフセット")
    held.locator("input[name=tco2]").fill("1")
    held.locator("button").click()
    expect(company.locator(".alert.ok")).to_contain_text("無効化")

    # 8. The certificate's QR opens the public page, which confirms the retirement.
    href = company.locator("a[data-certificate]").last.get_attribute("href")
    pdf = company.request.get(base + href)
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    image = pypdfium2.PdfDocument(pdf.body())[0].render(scale=200 / 72, grayscale=True).to_pil()
    public_url = decode(image)
    public = browser.new_context(**PHONE).new_page()
    visit(public, public_url)
    expect(public.locator("[data-verified]")).to_be_visible()
    expect(public.locator("[data-status]")).to_have_text("無効化済み")

    # 9. Staff suspend the resident's device (a reason with a phone number is refused first).
    visit(staff, base + "/eco/staff")
    row = staff.locator(f"form:has(input[name=device][value='{device}']):has(input[value=suspend])")
    row.locator("input[name=reason]").fill("連絡先 090-1234-5678")
    row.locator("button").click()
    expect(staff.locator(".alert.error")).to_contain_text("電話番号")
    assert_accessible(staff)
    row = staff.locator(f"form:has(input[name=device][value='{device}']):has(input[value=suspend])")
    row.locator("input[name=reason]").fill("パワーコンディショナ交換のため")
    staff.click(f"button[aria-label='{device} を停止']")
    expect(staff.locator(".alert.ok")).to_contain_text("停止しました")
    expect(staff.locator(f"button[aria-label='{device} を停止']")).to_have_count(0)
    last = staff.request.get(f"{base}/api/v1/eco/devices/{device}/last").json()
    assert last["status"] == "suspended"

    # 10. It is listed as suspended, with its reason, and taken back once repaired.
    row = staff.locator("tr", has=staff.locator(f"button[aria-label='{device} を再開']"))
    expect(row).to_contain_text("パワーコンディショナ交換のため")
    row.locator("input[name=reason]").fill("交換が完了したため")
    staff.click(f"button[aria-label='{device} を再開']")
    expect(staff.locator(".alert.ok")).to_contain_text("再開しました")
    expect(staff.locator(f"button[aria-label='{device} を再開']")).to_have_count(0)
    expect(staff.locator(f"button[aria-label='{device} を停止']")).to_have_count(1)
    assert_accessible(staff)
    last = staff.request.get(f"{base}/api/v1/eco/devices/{device}/last").json()
    assert last["status"] == "approved"

    # The dashboard shows it all.
    visit(staff, base + "/eco/dashboard")
    expect(staff.locator("h1")).to_have_text("自治体ダッシュボード")
    visit(resident, base + "/eco/staff")  # not for residents
    expect(resident.locator("h1")).to_have_text("権限がありません")
