"""Audit fixes (session 8): a short receipt re-opens the need, a PATCH that changes nothing is
refused, personal data in full-width or dotted forms is caught, and the CSV exports are safe
for spreadsheets (no formulas), dated in Japan and readable in Japanese.

Over a real demo node (real SQLite chain, real orderer) through the HTTP API (TestClient).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from apps.relief import test_api
from apps.relief.test_api import R, Relief, assert_problem, day
from tsunagu.apps.relief.contract import looks_personal
from tsunagu.apps.relief.reports import jst_date
from tsunagu.web.csvsafe import safe_cell

relief = test_api.relief  # the same module-scoped demo node fixture, a copy for this module


def _csv(relief: Relief, kind: str) -> tuple[list[str], list[str], list[dict[str, str]]]:
    response = relief.get(f"/export/{kind}.csv", "coordinator1")
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    header, tags = rows[0], rows[1]
    return header, tags, [dict(zip(tags, row, strict=True)) for row in rows[2:]]


def _receive(relief: Relief, match: str, body: dict[str, Any]) -> None:
    response = relief.post(f"/matches/{match}/receipt", "shelter1", body)
    assert response.status_code == 201, response.text


# -- 6: a partial or damaged receipt re-opens what did not arrive ----------------------------


def _figures(relief: Relief, item: str) -> dict[str, int]:
    """The coordinator's overview row of 立川第一小 for ``item`` (zeros if none)."""
    rows = relief.get("/overview", "coordinator1").json()["shelters"]
    row = next((r for r in rows if (r["shelter"], r["item"]) == ("tachikawa-shelter-1", item)), {})
    names = ("requested", "matched", "shipped", "received", "short", "unmet")
    return {k: row.get(k, 0) for k in names}


def _delta(after: dict[str, int], before: dict[str, int]) -> tuple[int, ...]:
    return tuple(after[k] - before[k] for k in after)


def test_a_short_receipt_reopens_the_need_and_a_new_match_fills_it(relief: Relief):
    before = _figures(relief, "tokyo-21")
    need = relief.need(item="tokyo-21", quantity=60, priority="urgent")
    offer = relief.offer(item="tokyo-21", quantity=60)
    (match,) = relief.confirm("coordinator1", (need, offer, 60))
    assert relief.get(f"/needs/{need}").json()["need"]["status"] == "fulfilled"
    assert relief.post(f"/matches/{match['id']}/shipment", "supporter1").status_code == 200
    _receive(
        relief,
        match["id"],
        {"outcome": "partial", "quantity": 54, "note": "1箱（6個）不足", "client_ref": "short-1"},
    )

    record = relief.get(f"/needs/{need}").json()["need"]
    assert (record["matched"], record["received"], record["remaining"]) == (54, 54, 6)
    assert record["status"] == "open"
    event = record["history"][-1]
    assert (event["action"], event["match"], event["quantity"]) == ("reopened", match["id"], 6)
    assert event["outcome"] == "partial"
    # The supporter's accounting stays as shipped: the offer gave all 60.
    given = relief.get(f"/offers/{offer}").json()["offer"]
    assert (given["matched"], given["remaining"], given["status"]) == (60, 0, "exhausted")

    # The overview shows the 6 as unmet and short, not as matched, ...
    # (needed, matched, shipped, received, short, unmet)
    assert _delta(_figures(relief, "tokyo-21"), before) == (60, 54, 54, 54, 6, 6)
    # ... in its unmet needs by priority, and the optimiser proposes them again ...
    overview = relief.get("/overview", "coordinator1").json()
    unmet = [row for u in overview["unmet_by_priority"] for row in u["by_item"]]
    assert {"item": "tokyo-21", "quantity": 6} in [
        {"item": row["item"], "quantity": row["quantity"]} for row in unmet
    ]
    more = relief.offer(item="tokyo-21", quantity=10)
    proposal = relief.get("/proposal", "coordinator1").json()
    assert [(a["offer_id"], a["quantity"]) for a in proposal["allocations"] if a["need_id"] == need]
    # ... and a new match for exactly 6 is confirmed (7 would be more than the need lacks).
    response = relief.post(
        "/matches",
        "coordinator1",
        {"allocations": [{"need_id": need, "offer_id": more, "quantity": 7}]},
    )
    assert_problem(response, 409, "exceeds_need")
    relief.confirm("coordinator1", (need, more, 6))
    record = relief.get(f"/needs/{need}").json()["need"]
    assert (record["matched"], record["remaining"], record["status"]) == (60, 0, "fulfilled")
    # Matched never exceeds needed: 54 received and 6 awaiting shipment (60 shipped in all).
    after = _figures(relief, "tokyo-21")
    assert _delta(after, before) == (60, 60, 54, 54, 6, 0)
    assert after["requested"] == after["matched"] + after["unmet"]
    assert after["matched"] >= after["shipped"] >= after["received"]


def test_a_damaged_receipt_reopens_what_is_unusable_and_a_full_one_nothing(relief: Relief):
    need = relief.need(item="tokyo-21", quantity=10)
    offer = relief.offer(item="tokyo-21", quantity=10)
    first, second = relief.confirm("coordinator1", (need, offer, 4), (need, offer, 6))
    for m in (first, second):
        assert relief.post(f"/matches/{m['id']}/shipment", "supporter1").status_code == 200
    _receive(relief, first["id"], {"outcome": "full", "client_ref": "dmg-1"})
    record = relief.get(f"/needs/{need}").json()["need"]
    assert (record["matched"], record["remaining"], record["history"][-1]["action"]) == (
        10,
        0,
        "posted",
    )
    body = {"outcome": "damaged", "note": "水濡れで使えない", "client_ref": "dmg-2"}
    _receive(relief, second["id"], body)
    record = relief.get(f"/needs/{need}").json()["need"]
    assert (record["matched"], record["received"], record["remaining"]) == (4, 4, 6)
    assert record["history"][-1]["quantity"] == 6


# -- 8b: a PATCH that changes nothing is refused, nothing is written --------------------------


def test_a_need_update_that_changes_nothing_is_refused(relief: Relief):
    need = relief.need(quantity=20, priority="high", needed_by=day(4))
    before = relief.snapshot()
    height = relief.node.head.height
    for body in (
        {"quantity": 20},
        {"priority": "high"},
        {"quantity": 20, "priority": "high", "needed_by": day(4)},
    ):
        response = relief.http.patch(
            f"{R}/needs/{need}", json=body, headers=relief.headers("shelter1", "ja")
        )
        problem = assert_problem(response, 422, "nothing_to_change")
        assert "変更する項目がありません" in problem["detail"]
    assert relief.snapshot() == before
    assert relief.node.head.height == height
    # Only what really changes is written and recorded.
    response = relief.http.patch(
        f"{R}/needs/{need}",
        json={"quantity": 20, "priority": "urgent"},
        headers=relief.headers("shelter1"),
    )
    assert response.status_code == 200, response.text
    history = relief.get(f"/needs/{need}").json()["need"]["history"]
    assert history[-1]["changes"] == {"priority": "urgent"}


# -- 8h: personal data in full-width and dotted forms ---------------------------------------


@pytest.mark.parametrize(
    "note",
    [
        "x＠y.jp",
        "tanaka＠example．jp まで",
        "ｔａｎａｋａ＠ｅｘａｍｐｌｅ．ｊｐ",
        "090.1234.5678",
        "連絡は ０９０．１２３４．５６７８ へ",
        "03.1234.5678",
    ],
)
def test_wide_at_signs_dots_and_dotted_phone_numbers_are_personal(relief: Relief, note: str):
    assert looks_personal(note)
    before = relief.snapshot()
    body = {"item": "tokyo-51", "quantity": 5, "needed_by": day(3), "note": note}
    assert_problem(relief.post("/needs", "shelter1", body), 422, "personal_data")
    assert relief.snapshot() == before


def test_ordinary_notes_with_dots_are_not_personal():
    for note in ("1.5L × 12本", "2026.12.01 まで", "ver. 2.0", "箱．3個", "ロット 12.345.678"):
        assert not looks_personal(note), note


# -- 4, 5, 8g: the CSV exports -----------------------------------------------------------------


def test_formula_cells_are_neutralised():
    for value in ("=1+1", "+81", "-3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(value) == "'" + value
    assert safe_cell("ヤマト運輸") == "ヤマト運輸"
    assert safe_cell(-3) == -3 and safe_cell(None) == ""


def test_a_formula_in_the_carrier_is_not_a_formula_in_shipments_csv(relief: Relief):
    match = relief.match()
    carrier = '=HYPERLINK("http://x","追跡")'
    response = relief.post(f"/matches/{match['id']}/shipment", "supporter1", {"carrier": carrier})
    assert response.status_code == 200, response.text
    _, _, rows = _csv(relief, "shipments")
    (row,) = [r for r in rows if r["#meta+id"] == match["id"]]
    assert row["#org+name+carrier"] == "'" + carrier
    # No cell of any export starts a formula.
    for kind in ("needs", "offers", "shipments"):
        for r in _csv(relief, kind)[2]:
            assert not any(v[:1] in ("=", "+", "-", "@", "\t", "\r") for v in r.values()), r


def test_csv_dates_are_dates_in_japan():
    assert jst_date("2026-11-30T23:30:00Z") == "2026-12-01"
    assert jst_date("2026-11-30T14:59:59Z") == "2026-11-30"
    assert jst_date("2026-11-30T15:00:00Z") == "2026-12-01"
    assert jst_date(None) is None


def test_csv_dates_follow_the_block_time_in_tokyo(relief: Relief):
    match = relief.match()
    record = relief.get(f"/matches/{match['id']}", "coordinator1").json()["match"]
    matched_at = record["timeline"][0]["at"]
    header, tags, rows = _csv(relief, "shipments")
    (row,) = [r for r in rows if r["#meta+id"] == match["id"]]
    assert row["#date+matched"] == jst_date(matched_at)
    assert header[tags.index("#date+matched")] == "マッチング日（日本時間） Matched on (JST)"
    needs_header, needs_tags, needs = _csv(relief, "needs")
    (posted,) = [r for r in needs if r["#meta+id"] == record["need"]]  # the need behind the match
    need = relief.get(f"/needs/{record['need']}").json()["need"]
    assert posted["#date+reported"] == jst_date(need["history"][0]["at"])
    assert "日本時間" in needs_header[needs_tags.index("#date+reported")]


def test_csv_headers_and_values_read_in_japanese_too(relief: Relief):
    header, tags, rows = _csv(relief, "needs")
    assert header[tags.index("#status")] == "状態 Status"
    assert header[tags.index("#severity")] == "優先度 Priority"
    assert all(any("\u3040" <= c <= "\u9fff" for c in h) for h in header), header
    statuses = {r["#status"] for r in rows}
    assert statuses <= {"受付中 (open)", "充足 (fulfilled)", "取消 (cancelled)"}
    assert "受付中 (open)" in statuses
    assert {r["#severity"] for r in rows} <= {"緊急 (urgent)", "高 (high)", "通常 (normal)"}
    assert {r["#item+condition"] for r in rows} <= {"問わない (any)", "新品 (new)"}
    _, _, offers = _csv(relief, "offers")
    assert {r["#status"] for r in offers} <= {
        "受付中 (open)",
        "完了 (exhausted)",
        "取下げ (withdrawn)",
    }
    _, ship_tags, shipments = _csv(relief, "shipments")
    assert "#status+receipt" in ship_tags and "#loc+name+i_ja+dest" in ship_tags
    outcomes = {r["#status+receipt"] for r in shipments} - {""}
    assert outcomes <= {"全数受領 (full)", "一部のみ受領 (partial)", "破損あり (damaged)"}
