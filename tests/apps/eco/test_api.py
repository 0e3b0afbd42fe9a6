"""The eco API in-process (FastAPI TestClient) over the shared eco demo node: lots and their
trace, roles, vouchers and redemptions, settlement CSV, dashboard, and the retirement
certificate whose QR (decoded with zxing-cpp from the rendered PDF) leads to the public page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium
import pytest
import zxingcpp

from tsunagu.apps.eco.simulate import reading_payload
from tsunagu.ledger.block import format_timestamp
from tsunagu.ledger.keys import SigningKey

from .conftest import PASSWORD, PROBLEM, Api, EcoChain

E = "/api/v1/eco"


def test_lots_api_shape_and_roles(api: Api) -> None:
    lots = api.get(f"{E}/credits/lots", "verifier1").json()
    assert lots and all(
        {"id", "serial_start", "serial_end", "tco2", "status", "holder"} <= set(x) for x in lots
    )
    assert {x["status"] for x in lots} >= {"issued", "retired"}
    for user in ("envstaff1", "staff1", "admin"):
        assert api.get(f"{E}/credits/lots", user).status_code == 200
    for user in ("resident1", "company1", "shop1"):
        r = api.get(f"{E}/credits/lots", user)
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert api.get(f"{E}/credits/lots").status_code == 401


def test_trace_lists_signed_readings_with_proofs(api: Api, eco_chain: EcoChain) -> None:
    lots = api.get(f"{E}/credits/lots", "envstaff1").json()
    lot = next(x for x in lots if x["status"] == "retired")
    trace = api.get(f"{E}/credits/lots/{lot['id']}/trace", "envstaff1").json()
    readings = trace["readings"]
    assert len(readings) > 100
    assert sum(r["grams"] for r in readings) == lot["tco2"] * 1_000_000 == trace["grams"]
    assert len({(r["tx_id"], r["serial"]) for r in readings}) == len(readings)
    assert {r["serial"] for r in readings} == set(range(lot["serial_start"], lot["serial_end"] + 1))
    first = readings[0]
    tx = api.get(f"/api/v1/tx/{first['tx_id']}").json()
    assert tx["tx"]["type"].startswith("reading.") and tx["result"]["status"] == "committed"
    signer = eco_chain.node.store.state().get("identity.member", tx["tx"]["signer"])
    assert signer["kind"] == "device"
    proof = api.get(first["proof_url"]).json()
    assert proof["index"] == first["log_index"] and proof["leaf_hash"] == tx["leaf_hash"]
    assert api.get(f"{E}/credits/lots/nope/trace", "envstaff1").status_code == 404


def test_voucher_redemption_and_settlement(api: Api) -> None:
    before = api.get(f"{E}/me", "resident2").json()["points"]
    v = api.post(f"{E}/vouchers", "resident2", {"reward": "komugido-coffee"}).json()
    assert v["url"].endswith(v["code"]) and "<svg" in v["qr_svg"]
    preview = api.post(f"{E}/redemptions/preview", "shop1", {"code": v["url"]}).json()
    assert preview["reward"]["id"] == "komugido-coffee" and not preview["used"]
    done = api.post(f"{E}/redemptions", "shop1", {"code": v["code"]})
    assert done.status_code == 201, done.text
    after = api.get(f"{E}/me", "resident2").json()["points"]
    assert after["used"] == before["used"] + 80
    again = api.post(f"{E}/redemptions", "shop1", {"code": v["code"]}, lang="ja")
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["code"] == "already_redeemed"
    assert again.json()["detail"] == "このQRコードは使用済みです。"
    assert api.post(f"{E}/redemptions", "shop1", {"code": "hello"}).status_code == 422
    assert api.post(f"{E}/redemptions", "resident1", {"code": v["code"]}).status_code == 403
    month = done.json()["redemption"]["at"][:7]
    r = api.get(f"{E}/shops/tachikawa-bakery/settlement.csv", "shop1", params={"month": month})
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][0] == "redeemed_at_jst" and rows[-1][0] == "total"
    assert any(row[1] == "komugido-coffee" and row[5] == done.json()["tx_id"] for row in rows)
    assert api.get(f"{E}/shops/tachikawa-bakery/settlement.csv", "resident1").status_code == 403


def test_bad_device_registration_changes_nothing(api: Api, eco_chain: EcoChain) -> None:
    before = eco_chain.snapshot()
    r = api.post(
        f"{E}/devices", "resident1", {"kind": "pv", "rated_w": 4000, "consent": False}, lang="ja"
    )
    assert r.status_code == 422 and "同意" in r.json()["detail"]
    r = api.post(f"{E}/devices", "resident1", {"kind": "pv", "rated_w": -4, "consent": True})
    assert r.status_code == 422
    assert eco_chain.snapshot() == before
    ok = api.post(f"{E}/devices", "resident1", {"kind": "ev", "rated_w": 6000, "consent": True})
    assert ok.status_code == 201
    prov = ok.json()["provisioning"]
    assert prov["device"] == ok.json()["id"] and len(prov["private_key_seed"]) == 64
    assert api.post(f"{E}/devices/{prov['device']}/approve", "resident1").status_code == 403
    assert api.post(f"{E}/devices/{prov['device']}/approve", "envstaff1").status_code == 200
    last = api.get(f"{E}/devices/{prov['device']}/last").json()
    assert last["status"] == "approved" and last["a"] == 0


def test_staff_suspend_a_device_and_its_readings_are_refused(api: Api, eco_chain: EcoChain) -> None:
    ok = api.post(f"{E}/devices", "resident1", {"kind": "pv", "rated_w": 3000, "consent": True})
    prov = ok.json()["provisioning"]
    dev = prov["device"]
    assert api.post(f"{E}/devices/{dev}/approve", "envstaff1").status_code == 200
    before = eco_chain.snapshot()
    url = f"{E}/devices/{dev}/suspend"
    assert api.post(url, "resident1", {"reason": "moved"}).status_code == 403
    assert api.post(url, "envstaff1", {"reason": ""}).status_code == 422
    assert api.post(url, "envstaff1", {"reason": "x", "extra": 1}).status_code == 422
    unknown = api.post(f"{E}/devices/no-such-device/suspend", "envstaff1", {"reason": "x"})
    assert unknown.status_code == 404
    personal = api.post(url, "envstaff1", {"reason": "call 090-1234-5678"}, lang="ja")
    assert personal.status_code == 422 and personal.headers["content-type"] == PROBLEM
    assert personal.json()["code"] == "personal_data" and "電話番号" in personal.json()["detail"]
    assert eco_chain.snapshot() == before  # every refusal above changed nothing

    done = api.post(url, "envstaff1", {"reason": "inverter replaced"})
    assert done.status_code == 200 and done.json()["id"] == dev and done.json()["tx_id"]
    record = eco_chain.get("device", dev)
    assert record["status"] == "suspended"
    assert record["history"][-1]["reason"] == "inverter replaced"
    assert record["history"][-1]["tx_id"] == done.json()["tx_id"]
    listed = api.get(f"{E}/devices", "envstaff1", params={"status": "suspended"}).json()
    mine = [d for d in listed["devices"] if d["id"] == dev]
    assert mine and mine[0]["suspended_because"] == "inverter replaced"

    again = api.post(url, "envstaff1", {"reason": "twice"}, lang="ja")
    assert again.status_code == 409 and again.json()["code"] == "already_suspended"
    assert again.json()["detail"] == "この機器は停止済みです。"
    # The device's own key still signs, but the contract refuses its readings now.
    key = SigningKey.from_seed(bytes.fromhex(prov["private_key_seed"]))
    at = format_timestamp(datetime.now(UTC))
    payload = reading_payload(dev, "pv", at, 1_000, 0)
    eco_chain.refused(key, "reading.pv", payload, "device_not_approved")


def test_staff_reinstate_a_device_whose_next_reading_is_its_new_start(
    api: Api, eco_chain: EcoChain
) -> None:
    """A reinstated device earns nothing for what its meter counted while suspended: its
    first reading afterwards is recorded as the new starting point, and the readings after
    that count as before. Every refusal changes nothing."""
    d = eco_chain.device(hours=6)
    ok, bad = eco_chain.reading(d, d.at + timedelta(hours=1), d.a + 1_000, d.b + 200)
    eco_chain.ok(d.key, ok, bad)
    url = f"{E}/devices/{d.id}/reinstate"
    before = eco_chain.snapshot()
    not_yet = api.post(url, "envstaff1", {"reason": "fixed"}, lang="ja")
    assert not_yet.status_code == 409 and not_yet.json()["code"] == "not_suspended"
    assert not_yet.json()["detail"] == "この機器は停止中ではありません。"
    assert eco_chain.snapshot() == before
    suspend = api.post(f"{E}/devices/{d.id}/suspend", "envstaff1", {"reason": "broken"})
    assert suspend.status_code == 200, suspend.text
    suspended = eco_chain.get("device", d.id)
    before = eco_chain.snapshot()
    assert api.post(url, "resident1", {"reason": "fixed"}).status_code == 403
    assert api.post(url, "envstaff1", {"reason": ""}).status_code == 422
    assert (
        api.post(f"{E}/devices/no-such-device/reinstate", "envstaff1", {"reason": "x"}).status_code
        == 404
    )
    personal = api.post(url, "envstaff1", {"reason": "連絡先 090-1234-5678"})
    assert personal.status_code == 422 and personal.json()["code"] == "personal_data"
    assert eco_chain.snapshot() == before

    done = api.post(url, "envstaff1", {"reason": "inverter repaired"})
    assert done.status_code == 200 and done.json()["id"] == d.id, done.text
    record = eco_chain.get("device", d.id)
    assert record["status"] == "approved"
    assert record["history"][-1] == {
        "action": "reinstated",
        "tx_id": done.json()["tx_id"],
        "at": record["history"][-1]["at"],
        "reason": "inverter repaired",
    }
    again = api.post(url, "envstaff1", {"reason": "twice"})
    assert again.status_code == 409 and again.json()["code"] == "not_suspended"

    # Four hours of generation while suspended (far more than the 4 kW array could make in
    # the one hour after): the first reading is taken as the start and credits nothing.
    start = d.at + timedelta(hours=5)
    t, payload = eco_chain.reading(d, start, d.a + 16_000, d.b + 3_000)
    eco_chain.ok(d.key, t, payload)
    rebased = eco_chain.get("device", d.id)
    assert rebased["grams"] == suspended["grams"] and rebased["readings"] == suspended["readings"]
    assert rebased["last"] == {"at": payload["at"], "a": d.a + 16_000, "b": d.b + 3_000}
    assert rebased["history"][-1]["action"] == "rebased"
    # and the next one counts from there, with the usual checks
    t, payload = eco_chain.reading(d, start + timedelta(minutes=30), d.a + 17_000, d.b + 3_100)
    eco_chain.ok(d.key, t, payload)
    counted = eco_chain.get("device", d.id)
    assert counted["readings"] == suspended["readings"] + 1
    assert counted["grams"] > suspended["grams"]
    t, payload = eco_chain.reading(d, start + timedelta(minutes=40), d.a + 99_000, d.b + 3_100)
    eco_chain.refused(d.key, t, payload, "exceeds_capacity")


def test_dashboard_and_report_validation(api: Api) -> None:
    d = api.get(f"{E}/dashboard", "envstaff1").json()
    assert d["points"]["issued"] > 0 and d["points"]["redeemed"] > 0
    assert d["points"]["expired"] > 0
    assert d["credits"]["issued"] >= d["credits"]["sold"] >= d["credits"]["retired"] > 0
    assert len(d["by_municipality"]) >= 5 and len(d["by_month"]) >= 5
    assert api.get(f"{E}/dashboard", "resident1").status_code == 403
    r = api.post(f"{E}/reports", "envstaff1", {"period_from": "2026-05", "period_to": "2026-04"})
    assert r.status_code == 422 and r.json()["code"] == "bad_period"


def test_certificate_qr_leads_to_the_public_page(api: Api) -> None:
    lots = api.get(f"{E}/credits/holdings", "company1").json()
    lot = next(x for x in lots if x["status"] == "retired")
    pdf = api.get(f"{E}/credits/lots/{lot['id']}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    page = pdfium.PdfDocument(pdf.content)[0]
    text = page.get_textpage().get_text_range()
    assert "無効化証明書" in text and lot["retirement"]["purpose"][:10] in text
    image = page.render(scale=200 / 72, grayscale=True).to_pil()
    codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(codes) == 1
    url = codes[0].text
    assert url.endswith(f"/eco/credits/{lot['id']}")
    public = api.get(url.split("testserver", 1)[-1])
    assert public.status_code == 200 and "data-verified" in public.text
    not_retired = next(
        x for x in api.get(f"{E}/credits/lots", "admin").json() if x["status"] != "retired"
    )
    assert api.get(f"{E}/credits/lots/{not_retired['id']}/certificate.pdf").status_code == 404


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_pages_by_role(api: Api, lang: str) -> None:
    pages = {
        "/eco": None,
        "/eco/me": "resident1",
        "/eco/shop": "shop1",
        "/eco/staff": "envstaff1",
        "/eco/verifier": "verifier1",
        "/eco/company": "company1",
        "/eco/dashboard": "envstaff1",
    }
    for path, user in pages.items():
        r = api.get(path, user, lang=lang, params={"lang": lang})
        assert r.status_code == 200, (path, r.text[:500])
        assert "eco-status:" not in r.text and "eco-action:" not in r.text
    assert "エコポイント" in api.get("/eco", None, params={"lang": "ja"}).text
    assert "Eco-points" in api.get("/eco", None, params={"lang": "en"}).text
    assert api.get("/eco/staff", "resident1", lang=lang).status_code == 403
    assert api.get("/eco/company", "shop1", lang=lang).status_code == 403
    login = api.http.get("/eco/me", params={"lang": lang})
    assert login.status_code == 303 and login.headers["location"].startswith("/login")


def test_page_write_needs_csrf_and_changes_nothing(api: Api, eco_chain: EcoChain) -> None:
    from tsunagu.web.deps import SESSION_COOKIE

    before = eco_chain.snapshot()
    login = api.http.post("/login", data={"username": "envstaff1", "password": PASSWORD})
    session = login.cookies[SESSION_COOKIE]
    form = {"action": "compile", "period_from": "2026-01", "period_to": "2026-01"}
    try:
        api.http.cookies.set(SESSION_COOKIE, session)
        forged = api.http.post("/eco/staff", data=form)
        assert forged.status_code == 403 and "フォームの有効期限" in forged.text
        # With the page's own token the write reaches the contract, which refuses the period:
        # the page shows the reason in Japanese, and nothing changed.
        page = api.http.get("/eco/staff")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        refused = api.http.post("/eco/staff", data=form | {"csrf": token})
        assert refused.status_code == 409 and "次の報告の対象期間" in refused.text
    finally:
        api.http.cookies.clear()
    assert eco_chain.snapshot() == before
