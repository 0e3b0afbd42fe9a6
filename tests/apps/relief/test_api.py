"""The relief API over a real demo node (real SQLite chain, real orderer), in-process with
TestClient, and over a real uvicorn server for the live notification stream.

The source document's example runs from ① to ⑧: おかゆ and アレルギー対応災害食 needed, 子供服
(new, size 150) and アレルギー対応缶詰 offered, matched, labelled, shipped, notified, looked up
by QR code and received; every bad input is answered with problem+json and changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from democache import demo_copy
from liveserver import serving
from tsunagu.apps.relief import catalog
from tsunagu.apps.relief import labels as labels_module
from tsunagu.identity.private import PrivateStore
from tsunagu.node.node import Node

PASSWORD = "pw"
PROBLEM = "application/problem+json"
R = "/api/v1/relief"
MANDATORY = list(catalog.mandatory_allergens())
USERS = (
    "admin",
    "coordinator1",
    "shelter1",
    "shelter2",
    "supporter1",
    "staff1",
    "resident1",
)


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=9, days=offset)).date().isoformat()


@dataclass
class Relief:
    node: Node
    private: PrivateStore
    app: Any
    http: TestClient
    tokens: dict[str, str]

    def headers(self, user: str | None, lang: str = "en") -> dict[str, str]:
        headers = {"Accept-Language": lang}
        if user:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return headers

    def get(self, path: str, user: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.get(R + path, headers=self.headers(user), **kwargs)

    def post(self, path: str, user: str | None, body: Any = None, lang: str = "en"):
        return self.http.post(R + path, json=body or {}, headers=self.headers(user, lang))

    def snapshot(self) -> dict[str, Any]:
        state = self.node.store.state()
        return {
            f"{kind}/{key}": value
            for kind in ("need", "offer", "match", "code")
            for key, value in state.scan(f"relief.{kind}")
        }

    # -- the steps, through the API ------------------------------------------------------

    def need(self, user: str = "shelter1", **fields: Any) -> str:
        body = {"item": "tokyo-51", "quantity": 20, "needed_by": day(3)} | fields
        response = self.post("/needs", user, body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def offer(self, user: str = "supporter1", **fields: Any) -> str:
        item = catalog.items()[fields.get("item", "tokyo-51")]
        body: dict[str, Any] = {"item": item.id, "quantity": 50, "ship_by": day(2)}
        if item.kind == "food":
            body |= {"allergens": [], "expiry": day(500)}
        response = self.post("/offers", user, body | fields)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def confirm(self, user: str, *allocations: tuple[str, str, int]) -> list[dict[str, Any]]:
        body = {
            "allocations": [{"need_id": n, "offer_id": o, "quantity": q} for n, o, q in allocations]
        }
        response = self.post("/matches", user, body)
        assert response.status_code == 201, response.text
        return response.json()["matches"]

    def match(self, shelter_user: str = "shelter1", quantity: int = 10) -> dict[str, Any]:
        """A confirmed match of water from 武蔵野フーズ to the user's shelter."""
        need = self.need(shelter_user, item="tokyo-1", quantity=quantity)
        offer = self.offer(item="tokyo-1", quantity=quantity)
        coordinator = "coordinator1" if shelter_user == "shelter1" else "admin"
        (match,) = self.confirm(coordinator, (need, offer, quantity))
        return match

    def shipped(self, shelter_user: str = "shelter1", quantity: int = 10) -> dict[str, Any]:
        match = self.match(shelter_user, quantity)
        response = self.post(f"/matches/{match['id']}/shipment", "supporter1")
        assert response.status_code == 200, response.text
        return match


def bearer_tokens(http: TestClient, users: Iterable[str]) -> dict[str, str]:
    """An API token for each of ``users`` (demo password ``PASSWORD``)."""
    tokens = {}
    for user in users:
        response = http.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens[user] = response.json()["access_token"]
    return tokens


@pytest.fixture(scope="module")
def relief(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relief]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("relief-api"), apps, PASSWORD)
    app = create_app(node, private, apps)
    http = TestClient(app, follow_redirects=False)
    tokens = bearer_tokens(http, USERS)
    try:
        yield Relief(node, private, app, http, tokens)
    finally:
        node.stop()


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert (problem["status"], problem["code"]) == (status, code), problem
    assert problem["detail_ja"] and problem["detail_en"]
    return problem


def notifications(relief: Relief, user: str) -> list[dict[str, Any]]:
    response = relief.get("/notifications", user)
    assert response.status_code == 200, response.text
    return response.json()["notifications"]


# -- the catalogue and suggestions -----------------------------------------------------------


def test_catalogue_lists_items_allergens_and_attribution(relief: Relief):
    body = relief.get("/catalog").json()
    ids = [item["id"] for item in body["items"]]
    assert ids[:62] == [f"tokyo-{n}" for n in range(1, 63)]
    assert {"clothing-children", "food-allergy-friendly", "food-allergy-canned"} <= set(ids)
    assert sum(a["mandatory"] for a in body["allergens"]) == 8 and len(body["allergens"]) == 28
    assert "東京備蓄ナビ" in body["stockpile_source"]["source"]
    assert body["group_keys"][0] == "infantsMale"
    allergens = relief.get("/allergens").json()
    assert allergens["revision"]["recommended"] == "2024-03-28"


def test_needs_are_suggested_from_head_counts(relief: Relief):
    counts = {"agedMale": 10, "agedFemale": 14, "adultFemale": 20, "infantsFemale": 3}
    response = relief.post("/needs/suggest", None, {"counts": counts, "days": 3})
    assert response.status_code == 200, response.text
    rows = {row["item"]: row for row in response.json()["suggestions"]}
    assert rows["tokyo-51"]["quantity"] == 24 * 3 * 3  # おかゆ: 3 a day for the elderly
    assert rows["tokyo-51"]["item_name"]["ja"] == "おかゆ"
    assert rows["tokyo-1"]["quantity"] == 44 * 3 * 3 + 22  # water: 2.4 L for infants → 21.6
    assert rows["tokyo-48"] == rows["tokyo-48"] | {"quantity": 90, "unit": "個"}
    bad = relief.post("/needs/suggest", None, {"counts": {"elders": 3}, "days": 3})
    assert_problem(bad, 422, "invalid_input")
    assert "区分 'elders' はありません" in bad.json()["detail_ja"]
    assert "unknown group 'elders'" in bad.json()["detail_en"]
    assert_problem(
        relief.post("/needs/suggest", None, {"counts": {}, "days": 0}), 422, "invalid_input"
    )
    negative = {"counts": {"adultMale": -2}, "days": 3}
    assert_problem(relief.post("/needs/suggest", None, negative), 422, "invalid_input")


# -- ① to ⑧ ------------------------------------------------------------------------------


def test_the_source_documents_example_from_need_to_receipt(relief: Relief):
    # ① The Tachikawa shelter asks for おかゆ and allergy-friendly disaster food free of the
    # 8 mandatory allergens, and 子供服 size 150; the Oshima shelter for allergy-friendly cans.
    okayu = relief.need(item="tokyo-51", quantity=50, priority="urgent")
    allergy = relief.need(
        item="food-allergy-friendly", quantity=30, priority="urgent", allergen_free=MANDATORY
    )
    kids = relief.need(item="clothing-children", quantity=10, size="150")
    canned = relief.need(
        "shelter2", item="food-allergy-canned", quantity=24, allergen_free=["egg", "milk", "wheat"]
    )
    response = relief.http.patch(
        f"{R}/needs/{okayu}", json={"quantity": 60}, headers=relief.headers("shelter1")
    )
    assert response.status_code == 200, response.text
    need = relief.get(f"/needs/{okayu}").json()["need"]
    assert (need["quantity"], need["remaining"], need["unit"]) == (60, 60, "食")
    assert need["item_name"]["ja"] == "おかゆ" and need["shelter_name"]["ja"].startswith("立川市")
    assert "posted_by" not in need

    # ② 武蔵野フーズ offers new children's clothes in size 150, allergy-friendly cans (with
    # soy), おかゆ and allergy-free disaster food.
    clothes = relief.offer(item="clothing-children", quantity=15, size="150", condition="new")
    cans = relief.offer(item="food-allergy-canned", quantity=30, allergens=["soybean"])
    okayu_offer = relief.offer(item="tokyo-51", quantity=60)
    allergy_offer = relief.offer(item="food-allergy-friendly", quantity=30, allergens=[])
    offer = relief.get(f"/offers/{clothes}").json()["offer"]
    assert (offer["size"], offer["condition"], offer["ship_from"]) == ("150", "new", "musashino")
    assert offer["org_name"]["ja"] == "武蔵野フーズ株式会社"

    # ③ The coordinator of 立川市 gets a proposal for its own shelters only.
    proposal = relief.get("/proposal", "coordinator1").json()
    assert proposal["municipality"] == "tachikawa"
    rows = proposal["allocations"]
    assert rows and {r["shelter"] for r in rows} == {"tachikawa-shelter-1"}
    for need_id in (okayu, allergy, kids):
        allocated = sum(r["quantity"] for r in rows if r["need_id"] == need_id)
        assert allocated == relief.get(f"/needs/{need_id}").json()["need"]["remaining"]
    assert canned not in {r["need_id"] for r in rows}
    assert all(r["distance_m"] >= 0 and r["sender_name"]["ja"] for r in rows)
    # It adjusts the proposal (its own offers, for the example) and confirms it on the chain.
    matches = relief.confirm(
        "coordinator1", (okayu, okayu_offer, 60), (allergy, allergy_offer, 30), (kids, clothes, 10)
    )
    assert len({m["code"] for m in matches}) == 3
    for m in matches:
        assert len(m["code"]) >= 26 and m["code"].isalnum()
    (island,) = relief.confirm("admin", (canned, cans, 24))

    # ④ Those involved see the matches (not a resident: see test_access_and_forms); their
    # labels can be printed (see the label tests).
    listed = relief.get("/matches", "shelter1", params={"shelter": "tachikawa-shelter-1"}).json()
    ids = {m["id"] for m in listed["matches"]}
    assert {m["id"] for m in matches} <= ids
    assert_problem(relief.get("/matches"), 401, "unauthorized")
    okayu_match = relief.get(f"/matches/{matches[0]['id']}", "shelter1").json()["match"]
    assert okayu_match["status"] == "confirmed" and okayu_match["code"] == matches[0]["code"]
    assert okayu_match["sender_name"]["ja"] == "武蔵野フーズ株式会社"
    assert okayu_match["contents"]["expiry"] is not None

    # ⑤ The supporter reports the shipments.
    for m, tracking in ((matches[0], "4455-6677-8899"), (matches[1], None), (island, None)):
        body = {"carrier": "ヤマト運輸"} | ({"tracking": tracking} if tracking else {})
        response = relief.post(f"/matches/{m['id']}/shipment", "supporter1", body)
        assert response.status_code == 200, response.text

    # ⑥ The shelter is notified of the matches and of the shipment.
    inbox = notifications(relief, "shelter1")
    kinds = {(n["kind"], n["match_id"]) for n in inbox}
    assert {("matched", matches[0]["id"]), ("shipped", matches[0]["id"])} <= kinds
    shipped = next(n for n in inbox if (n["kind"], n["match_id"]) == ("shipped", matches[0]["id"]))
    assert shipped["message_ja"].startswith("支援物資が発送されました: おかゆ 60食")
    assert not shipped["read"]
    assert ("matched", matches[0]["id"]) in {
        (n["kind"], n["match_id"]) for n in notifications(relief, "supporter1")
    }
    assert matches[0]["id"] not in {n["match_id"] for n in notifications(relief, "shelter2")}

    # ⑦ Scanning the QR shows the contents without opening the box (no login), ...
    public = relief.http.get(f"{R}/r/{matches[0]['code']}")
    assert public.status_code == 200, public.text
    view = public.json()
    assert (view["item_name"]["ja"], view["quantity"], view["unit"]) == ("おかゆ", 60, "食")
    assert view["status"] == "shipped"
    assert view["sender"]["name"]["ja"] == "武蔵野フーズ株式会社"
    assert view["destination"]["name"]["ja"] == "立川市立第一小学校 避難所"
    assert view["destination"]["municipality_name"]["ja"] == "立川市"
    assert view["contents"]["allergens_declared"] is True
    text = public.text
    for private_field in ("posted_by", "4455-6677-8899", "client_ref", "note", "tracking"):
        assert private_field not in text
    allergy_view = relief.http.get(f"{R}/r/{matches[1]['code']}").json()
    assert [a["ja"] for a in allergy_view["contents"]["allergen_free"]] == [
        "えび",
        "かに",
        "くるみ",
        "小麦",
        "そば",
        "卵",
        "乳",
        "落花生",
    ]
    # ... and records the receipt: in full, and in part.
    full = relief.post(
        f"/matches/{matches[0]['id']}/receipt",
        "shelter1",
        {"outcome": "full", "client_ref": "tablet-1:0001"},
    )
    assert full.status_code == 201, full.text
    assert full.json()["receipt"]["quantity"] == 60
    partial = relief.post(
        f"/matches/{matches[1]['id']}/receipt",
        "shelter1",
        {"outcome": "partial", "quantity": 28, "note": "1箱（2食）不足", "client_ref": "t-2"},
    )
    assert partial.status_code == 201, partial.text
    island_receipt = relief.post(
        f"/matches/{island['id']}/receipt", "shelter2", {"outcome": "full", "client_ref": "o-1"}
    )
    assert island_receipt.status_code == 201, island_receipt.text
    assert relief.get(f"/needs/{allergy}").json()["need"]["received"] == 28

    # ⑧ The supporter sees that the packages arrived.
    received = {
        n["match_id"]: n for n in notifications(relief, "supporter1") if n["kind"] == "received"
    }
    assert {matches[0]["id"], matches[1]["id"], island["id"]} <= received.keys()
    assert "28" in received[matches[1]["id"]]["message_en"]

    # The timeline is on the chain: each step is a committed transaction in a signed block.
    record = relief.get(f"/matches/{matches[0]['id']}", "supporter1").json()["match"]
    steps = [("matched", "match.confirm"), ("shipped", "shipment.report")]
    steps.append(("received", "receipt.report"))
    assert [e["action"] for e in record["timeline"]] == [a for a, _ in steps]
    for event, (_, tx_type) in zip(record["timeline"], steps, strict=True):
        tx = relief.http.get(event["verify_url"]).json()
        assert tx["tx_id"] == event["tx_id"] and tx["height"] == event["height"]
        assert tx["result"] == {"status": "committed"}
        assert (tx["tx"]["app"], tx["tx"]["type"]) == ("relief", tx_type)
        block = relief.http.get(f"/api/v1/blocks/{event['height']}").json()
        assert block["header"]["timestamp"] == event["at"]
    assert relief.http.get(f"{R}/r/{matches[0]['code']}").json()["status"] == "received"


# -- labels ------------------------------------------------------------------------------


def test_labels_print_for_those_involved_only(relief: Relief, monkeypatch: pytest.MonkeyPatch):
    match = relief.match()
    path = f"/matches/{match['id']}/label.pdf"
    rendered: list[tuple[list[Any], str]] = []
    real = labels_module.label_pdf

    def recording(labels, sheet="a6"):
        rendered.append((list(labels), sheet))
        return real(labels, sheet)

    monkeypatch.setattr(labels_module, "label_pdf", recording)
    for user in ("supporter1", "shelter1", "coordinator1", "admin"):
        response = relief.get(path, user)
        assert response.status_code == 200, (user, response.text)
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
    (label,), sheet = rendered[0]
    assert sheet == "a6"
    assert label.url == f"http://testserver/r/{match['code']}"
    assert (label.item_ja, label.quantity, label.unit_ja) == ("水", 10, "L")
    assert label.destination_ja == "立川市立第一小学校 避難所"
    assert (label.destination_municipality_ja, label.sender_ja) == (
        "立川市",
        "武蔵野フーズ株式会社",
    )
    assert label.allergens_declared and label.ship_from_ja == "武蔵野市"
    assert relief.get(path, "supporter1", params={"sheet": "a4"}).status_code == 200
    assert rendered[-1][1] == "a4"
    for user in ("shelter2", "staff1", "resident1"):
        assert_problem(relief.get(path, user), 403, "forbidden")
    assert_problem(relief.get(path), 401, "unauthorized")
    assert_problem(
        relief.get("/matches/m-0000000000000000-0/label.pdf", "admin"), 404, "unknown_match"
    )
    assert_problem(relief.get(path, "supporter1", params={"sheet": "a3"}), 422, "invalid_input")


def test_a_sheet_of_labels(relief: Relief):
    first, second = relief.match(), relief.match()
    ids = f"{first['id']},{second['id']}"
    response = relief.get("/labels.pdf", "supporter1", params={"ids": ids})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    island = relief.match("shelter2")  # sent by 武蔵野フーズ too, to Oshima
    both = f"{first['id']},{island['id']}"
    assert_problem(relief.get("/labels.pdf", "shelter1", params={"ids": both}), 403, "forbidden")
    assert_problem(
        relief.get("/labels.pdf", "supporter1", params={"ids": ","}), 422, "invalid_input"
    )


# -- receipts ----------------------------------------------------------------------------


def test_a_resent_receipt_gets_the_original_answer(relief: Relief):
    match = relief.shipped()
    path = f"/matches/{match['id']}/receipt"
    body = {"outcome": "partial", "quantity": 8, "note": "2本不足", "client_ref": "tab-9:0042"}
    first = relief.post(path, "shelter1", body)
    assert first.status_code == 201, first.text
    assert first.json()["replayed"] is False
    # The tablet was offline and sends the same receipt again when it is back.
    again = relief.post(path, "shelter1", body)
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["tx_id"] == first.json()["tx_id"]
    assert again.json()["receipt"] == first.json()["receipt"]
    # Another receipt for the same package is an error, in the user's language.
    other = body | {"client_ref": "tab-9:0043", "outcome": "full", "quantity": 10}
    problem = assert_problem(
        relief.post(path, "shelter1", other, lang="ja"), 409, "already_received"
    )
    assert problem["detail"] == problem["detail_ja"] == "受領は記録済みです。"
    # The idempotency key is the destination's: another shelter cannot replay it.
    assert_problem(relief.post(path, "shelter2", body), 403, "not_destination")
    record = relief.get(f"/matches/{match['id']}", "shelter1").json()["match"]
    assert [e["action"] for e in record["timeline"]].count("received") == 1
    assert record["receipt"]["quantity"] == 8


def test_resends_racing_each_other_are_recorded_once(relief: Relief):
    match = relief.shipped()
    path = f"{R}/matches/{match['id']}/receipt"
    body = {"outcome": "full", "client_ref": "flaky-network"}
    results: list[httpx.Response] = []

    def send() -> None:
        results.append(relief.http.post(path, json=body, headers=relief.headers("shelter1")))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results).count(201) == 1, [r.text for r in results]
    assert all(r.status_code in (200, 201) for r in results), [r.text for r in results]
    assert len({r.json()["tx_id"] for r in results}) == 1


# -- bad input ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stage(relief: Relief) -> dict[str, Any]:
    """Packages at each stage, for the bad-input tests (which must not change them)."""
    confirmed = relief.match(quantity=10)
    shipped = relief.shipped(quantity=10)
    cancelled = relief.match(quantity=5)
    response = relief.post(f"/matches/{cancelled['id']}/cancel", "supporter1", {"reason": "欠品"})
    assert response.status_code == 200, response.text
    received = relief.shipped(quantity=6)
    body = {"outcome": "full", "client_ref": "stage-received"}
    assert relief.post(f"/matches/{received['id']}/receipt", "shelter1", body).status_code == 201
    need = relief.get(f"/matches/{confirmed['id']}", "shelter1").json()["match"]["need"]
    return {
        "confirmed": confirmed["id"],
        "shipped": shipped["id"],
        "cancelled": cancelled["id"],
        "received": received["id"],
        "need": need,
    }


BAD_INPUTS = [
    # (user, path, body, status, code)
    (
        "shelter1",
        "/needs",
        {"item": "tokyo-51", "quantity": 0, "needed_by": day(2)},
        422,
        "invalid_input",
    ),
    (
        "shelter1",
        "/needs",
        {"item": "tokyo-51", "quantity": -4, "needed_by": day(2)},
        422,
        "invalid_input",
    ),
    (
        "shelter1",
        "/needs",
        {"item": "tokyo-51", "quantity": "12", "needed_by": day(2)},
        422,
        "invalid_input",
    ),
    (
        "shelter1",
        "/needs",
        {"item": "caviar", "quantity": 3, "needed_by": day(2)},
        422,
        "unknown_item",
    ),
    (
        "shelter1",
        "/needs",
        {"item": "tokyo-51", "quantity": 3, "needed_by": day(-3)},
        422,
        "date_past",
    ),
    (
        "shelter1",
        "/needs",
        {"item": "tokyo-51", "quantity": 3, "unit": "kg", "needed_by": day(2)},
        422,
        "wrong_unit",
    ),
    (
        "shelter1",
        "/needs",
        {"item": "clothing-children", "quantity": 3, "size": "155", "needed_by": day(2)},
        422,
        "bad_size",
    ),
    (
        "supporter1",
        "/needs",
        {"item": "tokyo-51", "quantity": 3, "needed_by": day(2)},
        403,
        "forbidden",
    ),
    (
        "shelter1",
        "/offers",
        {"item": "tokyo-1", "quantity": 3, "ship_by": day(1)},
        403,
        "forbidden",
    ),
    (
        "supporter1",
        "/offers",
        {"item": "tokyo-1", "quantity": 0, "ship_by": day(1)},
        422,
        "invalid_input",
    ),
    (
        "supporter1",
        "/offers",
        {"item": "tokyo-1", "quantity": 3, "ship_by": day(1)},
        422,
        "expiry_required",
    ),
    (
        "supporter1",
        "/offers",
        {"item": "clothing-adult", "quantity": 3, "ship_by": day(1)},
        422,
        "size_required",
    ),
    (
        "supporter1",
        "/matches/{confirmed}/receipt",
        {"outcome": "full", "client_ref": "b1"},
        403,
        "not_destination",
    ),
    (
        "shelter1",
        "/matches/{confirmed}/receipt",
        {"outcome": "full", "client_ref": "b2"},
        409,
        "not_shipped",
    ),
    (
        "shelter1",
        "/matches/{shipped}/receipt",
        {"outcome": "full", "quantity": 11, "client_ref": "b3"},
        422,
        "more_than_shipped",
    ),
    (
        "shelter1",
        "/matches/{shipped}/receipt",
        {"outcome": "partial", "quantity": 10, "client_ref": "b4"},
        422,
        "bad_partial",
    ),
    (
        "shelter1",
        "/matches/{shipped}/receipt",
        {"outcome": "partial", "quantity": -1, "client_ref": "b5"},
        422,
        "invalid_input",
    ),
    (
        "shelter1",
        "/matches/{shipped}/receipt",
        {"outcome": "damaged", "client_ref": "b6"},
        422,
        "note_required",
    ),
    ("shelter1", "/matches/{shipped}/receipt", {"outcome": "full"}, 422, "invalid_input"),
    (
        "shelter2",
        "/matches/{shipped}/receipt",
        {"outcome": "full", "client_ref": "b7"},
        403,
        "not_destination",
    ),
    (
        "shelter1",
        "/matches/{received}/receipt",
        {"outcome": "full", "client_ref": "b8"},
        409,
        "already_received",
    ),
    (
        "shelter1",
        "/matches/m-0000000000000000-9/receipt",
        {"outcome": "full", "client_ref": "b9"},
        404,
        "unknown_match",
    ),
    ("supporter1", "/matches/m-0000000000000000-9/shipment", {}, 404, "unknown_match"),
    ("supporter1", "/matches/{shipped}/shipment", {}, 409, "already_shipped"),
    ("supporter1", "/matches/{cancelled}/shipment", {}, 409, "match_cancelled"),
    ("staff1", "/matches/{confirmed}/shipment", {}, 403, "not_sender"),
    ("shelter1", "/matches/{confirmed}/shipment", {}, 403, "forbidden"),
    (
        "supporter1",
        "/matches/{confirmed}/shipment",
        {"tracking": "no spaces please"},
        422,
        "invalid_input",
    ),
    ("supporter1", "/matches", {"allocations": []}, 403, "forbidden"),
    ("coordinator1", "/matches", {"allocations": []}, 422, "invalid_input"),
    (
        "coordinator1",
        "/matches",
        {"allocations": [{"need_id": "{need}", "offer_id": "o-0000000000000000", "quantity": 1}]},
        404,
        "unknown_offer",
    ),
    ("shelter1", "/matches/{shipped}/cancel", {}, 403, "not_allowed"),
    ("coordinator1", "/matches/{shipped}/cancel", {}, 409, "not_cancellable"),
    ("shelter2", "/needs/{need}/cancel", {}, 403, "not_shelter_staff"),
]


@pytest.mark.parametrize(("user", "path", "body", "status", "code"), BAD_INPUTS)
def test_bad_input_is_refused_and_changes_nothing(relief, stage, user, path, body, status, code):
    path = path.format(**stage)
    body = json.loads(json.dumps(body).replace("{need}", stage["need"]))
    before = relief.snapshot()
    for lang in ("en", "ja"):
        problem = assert_problem(relief.post(path, user, body, lang=lang), status, code)
        assert problem["detail"] == problem[f"detail_{lang}"]
        assert problem["instance"] == R + path
    assert relief.snapshot() == before


def test_editing_a_need_below_what_is_matched_is_refused(relief: Relief, stage):
    before = relief.snapshot()
    response = relief.http.patch(
        f"{R}/needs/{stage['need']}", json={"quantity": 9}, headers=relief.headers("shelter1")
    )
    assert_problem(response, 409, "below_matched")
    response = relief.http.patch(
        f"{R}/needs/{stage['need']}", json={"quantity": 0}, headers=relief.headers("shelter1")
    )
    assert_problem(response, 422, "invalid_input")
    assert relief.snapshot() == before


def test_an_unknown_code_is_a_404_problem(relief: Relief):
    for code in ("a" * 26, "does-not-exist", "ａ" * 26):
        assert_problem(relief.http.get(f"{R}/r/{code}"), 404, "unknown_code")
    assert_problem(relief.get("/needs/n-0000000000000000"), 404, "unknown_need")
    assert_problem(relief.get("/offers/o-0000000000000000"), 404, "unknown_offer")


# -- proposal, overview, exports -------------------------------------------------------------


def test_only_coordinators_get_proposals(relief: Relief):
    for user in ("shelter1", "supporter1", "resident1"):
        assert_problem(relief.get("/proposal", user), 403, "forbidden")
    everything = relief.get("/proposal", "admin").json()
    assert everything["municipality"] is None
    assert {"oshima", "hachijo"} & {
        relief.get(f"/needs/{r['need_id']}").json()["need"]["municipality"]
        for r in everything["allocations"]
    }
    # Nothing was written.
    assert relief.get("/proposal", "admin").json()["allocations"] == everything["allocations"]


def test_overview_is_scoped_to_the_user(relief: Relief):
    mine = relief.get("/overview", "coordinator1").json()
    assert mine["scope"] == {"shelter": None, "municipality": "tachikawa"}
    assert {row["shelter"] for row in mine["shelters"]} == {"tachikawa-shelter-1"}
    listed = relief.get("/matches", "coordinator1", params={"municipality": "tachikawa"}).json()
    for stage_name in ("confirmed", "shipped", "received", "cancelled"):
        expected = sum(m["status"] == stage_name for m in listed["matches"])
        assert mine["packages"][stage_name] == expected
    assert [u["priority"] for u in mine["unmet_by_priority"]] == ["urgent", "high", "normal"]
    assert all(m["status"] == "shipped" for m in mine["in_transit"])
    okayu = next(r for r in mine["shelters"] if r["item"] == "tokyo-51")
    assert okayu["requested"] >= okayu["matched"] >= okayu["received"] > 0
    island = relief.get("/overview", "shelter2").json()
    assert island["scope"] == {"shelter": "oshima-shelter-1", "municipality": None}
    assert {row["shelter"] for row in island["shelters"]} == {"oshima-shelter-1"}
    everything = relief.get("/overview", "admin").json()
    assert {
        "tachikawa-shelter-1",
        "hachioji-shelter-4",
        "oshima-shelter-1",
        "hachijo-shelter-1",
    } <= {row["shelter"] for row in everything["shelters"]}
    assert_problem(relief.get("/overview"), 401, "unauthorized")


def test_overview_unmet_rows_name_their_unit(relief: Relief):
    everything = relief.get("/overview", "admin").json()
    rows = [row for u in everything["unmet_by_priority"] for row in u["by_item"]]
    assert rows
    for row in rows:
        item = catalog.item(row["item"])
        assert row["unit_name"] == {"ja": item.unit_ja, "en": item.unit_en}
        assert row["unit"] == item.unit_ja


@pytest.mark.parametrize(
    ("kind", "listing", "tags"),
    [
        (
            "needs",
            "/needs",
            {"#meta+id", "#status", "#item+code", "#item+name+i_ja", "#indicator+num+needed"},
        ),
        ("offers", "/offers", {"#meta+id", "#org+code", "#org+name+i_ja", "#date+expiry"}),
        ("shipments", "/matches", {"#meta+id", "#indicator+num+shipped", "#loc+name+i_ja+dest"}),
    ],
)
def test_csv_exports_carry_hxl_hashtags(relief: Relief, kind, listing, tags):
    response = relief.get(f"/export/{kind}.csv", "coordinator1")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    header, hashtags, data = rows[0], rows[1], rows[2:]
    assert len(header) == len(hashtags)
    assert all(tag.startswith("#") for tag in hashtags)
    assert tags <= set(hashtags)
    assert {"#adm2+name+i_ja", "#adm2+code"} & {t.split("+dest")[0] for t in hashtags}
    key = listing.strip("/")
    expected = relief.get(listing, "admin").json()[key]  # all of them (the export is open data)
    assert len(data) == len(expected)
    assert {row[0] for row in data} == {record["id"] for record in expected}
    lat = hashtags.index("#geo+lat" if kind != "shipments" else "#geo+lat+dest")
    assert all(35.0 < float(row[lat]) < 36.0 or 32.0 < float(row[lat]) < 35.0 for row in data)
    if kind == "needs":
        needed_by = hashtags.index("#date+needed")
        assert all(len(row[needed_by]) == 10 for row in data)
    assert_problem(relief.get(f"/export/{kind}.csv"), 401, "unauthorized")


def test_offers_ship_from_the_users_municipality_by_default(relief: Relief):
    offer = relief.offer("staff1", item="bedding-blanket", quantity=5)
    assert relief.get(f"/offers/{offer}").json()["offer"]["ship_from"] == "hachioji"
    response = relief.post(f"/offers/{offer}/withdraw", "supporter1", {})
    assert_problem(response, 403, "not_owner")
    assert relief.post(f"/offers/{offer}/withdraw", "staff1", {}).status_code == 200
    assert relief.get(f"/offers/{offer}").json()["offer"]["status"] == "withdrawn"


# -- notifications -------------------------------------------------------------------------


def test_notifications_are_marked_read(relief: Relief):
    relief.match()
    box = relief.get("/notifications", "shelter1").json()
    assert box["unread"] > 0
    first = box["notifications"][0]
    assert relief.post(f"/notifications/{first['id']}/read", "shelter1").json() == {
        "id": first["id"],
        "read": True,
    }
    after = relief.get("/notifications", "shelter1").json()
    assert after["unread"] == box["unread"] - 1
    assert first["id"] not in {
        n["id"]
        for n in relief.get("/notifications", "shelter1", params={"unread": True}).json()[
            "notifications"
        ]
    }
    # Another organisation's notification is not found, let alone marked.
    assert_problem(relief.post(f"/notifications/{first['id']}/read", "shelter2"), 404, "not_found")
    assert relief.post("/notifications/read-all", "shelter1").json()["marked"] >= 0
    assert relief.get("/notifications", "shelter1").json()["unread"] == 0
    assert_problem(relief.get("/notifications"), 401, "unauthorized")


def test_notifications_read_back_from_stored_blocks_are_those_of_the_live_blocks(relief: Relief):
    """After a restart the inbox reads the blocks it missed from the store, decoding only
    their relief transactions: it must find exactly what it found in the live blocks."""
    from tsunagu.apps.relief.service import service_for

    relief.match()
    inbox = service_for(relief.node)
    found = 0
    for height in range(relief.node.head.height + 1):
        block = relief.node.store.block(height)
        live = inbox._notifications(block.header, list(zip(block.txs, block.results, strict=True)))
        header, txs = relief.node.store.app_txs(height, "relief")
        assert header == block.header
        assert [tx for _, tx, _ in txs] == [tx for tx in block.txs if tx.app == "relief"]
        assert inbox._notifications(header, [(tx, r) for _, tx, r in txs]) == live
        found += len(live)
    assert found > 0


@pytest.fixture(scope="module")
def server(relief: Relief) -> Iterator[str]:
    """The same app on a real uvicorn server, for the event stream."""
    with serving(relief.app, lifespan="off", timeout_graceful_shutdown=1) as port:
        yield f"http://127.0.0.1:{port}"


def read_event(lines: Iterator[str]) -> dict[str, str]:
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in event:
                return event
            event = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(": ")
        event[field] = value
    raise AssertionError("the stream ended")


def test_notifications_stream_live_and_resume(relief: Relief, server: str):
    match = relief.match("shelter2")
    headers = {"Authorization": f"Bearer {relief.tokens['shelter2']}"}
    with (
        httpx.Client(base_url=server, timeout=10) as http,
        http.stream("GET", f"{R}/notifications/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "retry: 5000"
        # The supporter ships while the shelter's page is open: the shelter hears at once.
        assert relief.post(f"/matches/{match['id']}/shipment", "supporter1").status_code == 200
        event = read_event(lines)
    assert event["event"] == "notification"
    note = json.loads(event["data"])
    assert (note["kind"], note["match_id"], note["org"]) == (
        "shipped",
        match["id"],
        "oshima-shelter-1",
    )
    assert event["id"] == str(note["id"])
    # A client that reconnects with Last-Event-ID gets what it missed first.
    resume = headers | {"Last-Event-ID": str(note["id"] - 1)}
    with (
        httpx.Client(base_url=server, timeout=10) as http,
        http.stream("GET", f"{R}/notifications/stream", headers=resume) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == "retry: 5000"
        again = read_event(lines)
    assert again["id"] == event["id"]
    with httpx.Client(base_url=server, timeout=10) as http:
        assert http.get(f"{R}/notifications/stream").status_code == 401
