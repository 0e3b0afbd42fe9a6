"""Relief audit fixes, over a real demo node through the real API and pages:

- only those who act for an organisation in relief (a relief role in that organisation, or an
  administrator) see its packages, labels and notifications: a resident of 八王子市 sees none;
- numeric form fields refuse ①, ², ٣ with the usual 422 page (no 500) and take full-width ３０;
- the coordinator's review shows allergens, expiry, size and what the need still lacks;
- a cancelled match prints no label; non-food packages show no allergen box; the suggestion
  form explains its day range and empty counts; the shelter's hub card links to its packages.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from democache import demo_copy
from tsunagu.apps.relief import catalog

from .test_api import PASSWORD, R, bearer_tokens
from .test_api import USERS as API_USERS
from .test_pages import Site as PageSite

USERS = (*API_USERS, "envstaff1")
ODD_DIGITS = ("①", "²", "٣")


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=9, days=offset)).date().isoformat()


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@dataclasses.dataclass
class Site(PageSite):
    """The relief pages' test site (``client``, ``snapshot``), with API tokens besides."""

    tokens: dict[str, str]

    def api(self, method: str, path: str, user: str, body: Any = None, lang: str = "en"):
        headers = {"Authorization": f"Bearer {self.tokens[user]}", "Accept-Language": lang}
        http = TestClient(self.app, follow_redirects=False)
        return http.request(method, R + path, json=body, headers=headers)

    def page(self, path: str, user: str, lang: str = "ja"):
        """A page as ``user`` (the API token works for pages too), in ``lang``."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}", "Accept-Language": lang}
        return TestClient(self.app, follow_redirects=False).get(path, headers=headers)

    def matches(self) -> list[dict[str, Any]]:
        return [m for _, m in self.node.store.state().scan("relief.match")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("relief-access"), apps, PASSWORD)
    app = create_app(node, private, apps)
    http = TestClient(app)
    tokens = bearer_tokens(http, USERS)
    try:
        yield Site(node, app, tokens)
    finally:
        node.stop()


def new_match(site: Site, sender: str, item: str = "other-tarp", quantity: int = 5) -> str:
    """A confirmed match from ``sender``'s organisation to 立川第一小 (tachikawa-shelter-1)."""
    need = site.api(
        "POST", "/needs", "shelter1", {"item": item, "quantity": quantity, "needed_by": day(3)}
    )
    assert need.status_code == 201, need.text
    offer = site.api(
        "POST", "/offers", sender, {"item": item, "quantity": quantity, "ship_by": day(2)}
    )
    assert offer.status_code == 201, offer.text
    body = {
        "allocations": [
            {"need_id": need.json()["id"], "offer_id": offer.json()["id"], "quantity": quantity}
        ]
    }
    confirmed = site.api("POST", "/matches", "coordinator1", body)
    assert confirmed.status_code == 201, confirmed.text
    return confirmed.json()["matches"][0]["id"]


def assert_problem(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code, problem
    return problem


# -- 1. acting for an organisation needs a relief role -----------------------------------------


def test_a_resident_gets_none_of_the_towns_labels_or_notifications(site: Site):
    match = new_match(site, "staff1")  # 八王子市 sends, staff1 (staff) acts for it
    shipped = next(m for m in site.matches() if m["sender"] == "hachioji")
    for mid in (match, shipped["id"]):
        for user in ("resident1", "envstaff1"):
            assert_problem(site.api("GET", f"/matches/{mid}/label.pdf", user), 403, "forbidden")
        ok = site.api("GET", f"/matches/{mid}/label.pdf", "staff1")
        assert ok.status_code == 200 and ok.content.startswith(b"%PDF-")
    sheet = site.api("GET", f"/labels.pdf?ids={match}", "resident1")
    assert_problem(sheet, 403, "forbidden")

    before = site.api("GET", "/notifications", "staff1").json()
    assert before["unread"] > 0 and before["notifications"]
    for method, path in (
        ("GET", "/notifications"),
        ("GET", "/notifications/stream"),
        ("POST", "/notifications/read-all"),
        ("POST", f"/notifications/{before['notifications'][0]['id']}/read"),
    ):
        assert_problem(site.api(method, path, "resident1"), 403, "forbidden")
    assert site.api("GET", "/notifications", "staff1").json()["unread"] == before["unread"]
    assert site.api("GET", "/notifications", "supporter1").status_code == 200

    mine = site.api("GET", "/matches?mine=true", "resident1").json()["matches"]
    assert mine == []
    staff_mine = {
        m["id"] for m in site.api("GET", "/matches?mine=true", "staff1").json()["matches"]
    }
    assert {match, shipped["id"]} <= staff_mine


def test_a_resident_sees_no_packages_or_inbox_on_the_pages(site: Site):
    match = new_match(site, "staff1")
    resident, staff = site.client("resident1"), site.client("staff1")
    unread = site.api("GET", "/notifications", "staff1").json()["unread"]

    assert resident.get("/relief/inbox").status_code == 403
    token = csrf(resident.get("/relief").text)
    assert resident.post("/relief/inbox/read", data={"csrf": token}).status_code == 403
    assert site.api("GET", "/notifications", "staff1").json()["unread"] == unread

    assert match not in resident.get("/relief/matches").text
    assert match in staff.get("/relief/matches").text
    hub = resident.get("/relief").text
    assert match not in hub and "/relief/inbox" not in hub

    assert resident.get(f"/relief/matches/{match}").status_code == 404
    page = staff.get(f"/relief/matches/{match}").text
    assert f"/relief/matches/{match}/shipment" in page and f"/matches/{match}/label.pdf" in page

    assert staff.get("/relief/inbox").status_code == 200
    assert site.client("supporter1").get("/relief/inbox").status_code == 200
    own = next(m for m in site.matches() if m["sender"] == "musashino-foods")
    assert site.api("GET", f"/matches/{own['id']}/label.pdf", "supporter1").status_code == 200


# -- 1b. a match's own page and record are for those who have a reason to see them ---------


def test_a_match_is_shown_only_to_those_involved(site: Site):
    match = new_match(site, "supporter1")  # 武蔵野フーズ → 立川第一小 (立川市)
    record = next(m for m in site.matches() if m["id"] == match)
    # A resident, another shelter's staff, another supporter (八王子市 staff sends supplies too).
    outsiders = ("resident1", "shelter2", "staff1")
    # The shelter, the supporter, 立川市's coordinator, an administrator.
    insiders = ("shelter1", "supporter1", "coordinator1", "admin")
    for user in outsiders:
        page = site.page(f"/relief/matches/{match}", user)
        assert page.status_code == 404, user
        assert record["code"] not in page.text and "label.pdf" not in page.text
        assert_problem(site.api("GET", f"/matches/{match}", user), 404, "unknown_match")
        listed = site.api("GET", "/matches", user).json()["matches"]
        assert match not in {m["id"] for m in listed}
        assert match not in site.page("/relief/matches", user).text
    # Exactly what a match that does not exist gets (in Japanese first): nothing tells that
    # this one does.
    words = text(site.page(f"/relief/matches/{match}", "resident1").text)
    assert "見つかりません" in words and "このコードの荷物・マッチングはありません。" in words
    none = site.page("/relief/matches/m-0000000000000000-0", "resident1")
    assert (none.status_code, text(none.text)) == (404, words)
    answer = site.api("GET", f"/matches/{match}", "resident1", lang="ja").json()
    unknown = site.api("GET", "/matches/m-0000000000000000-0", "resident1", lang="ja").json()
    assert answer["detail"] == unknown["detail"].replace("m-0000000000000000-0", match)
    assert "はありません" in answer["detail"]
    for user in insiders:
        page = site.page(f"/relief/matches/{match}", user)
        assert page.status_code == 200, user
        assert f"/r/{record['code']}" in page.text
        assert site.api("GET", f"/matches/{match}", user).json()["match"]["id"] == match
        assert match in {m["id"] for m in site.api("GET", "/matches", user).json()["matches"]}
    # 八王子市's relief staff see the packages for 八王子市's shelters; its residents do not.
    hachioji = next(m for m in site.matches() if m["shelter"] == "hachioji-shelter-4")
    assert hachioji["sender"] != "hachioji"
    assert site.page(f"/relief/matches/{hachioji['id']}", "staff1").status_code == 200
    assert site.page(f"/relief/matches/{hachioji['id']}", "resident1").status_code == 404

    # Another supporter's refused shipment form shows no page either (and ships nothing).
    refused = TestClient(site.app, follow_redirects=False).post(
        f"/relief/matches/{match}/shipment",
        headers={"Authorization": f"Bearer {site.tokens['staff1']}"},
    )
    assert refused.status_code == 404 and record["code"] not in refused.text

    # The QR label's page stays open: the shelter records the receipt there, the supporter
    # sees the arrival on the match's page.
    shipped = site.api("POST", f"/matches/{match}/shipment", "supporter1", {})
    assert shipped.status_code == 200, shipped.text
    label = site.page(f"/r/{record['code']}", "shelter1")
    assert label.status_code == 200 and "data-receipt-form" in label.text
    assert f'data-match="{match}"' in label.text
    body = {"outcome": "full", "client_ref": "access-1"}
    received = site.api("POST", f"/matches/{match}/receipt", "shelter1", body)
    assert received.status_code == 201, received.text
    arrival = text(site.page(f"/relief/matches/{match}", "supporter1").text)
    assert "受領済み" in arrival


def test_the_overview_explains_its_figures(site: Site):
    ja = site.page("/relief/overview", "coordinator1")
    assert ja.status_code == 200 and "不足・破損" in text(ja.text)
    assert "要望 = マッチング + 未充足" in text(ja.text)
    en = text(site.page("/relief/overview", "coordinator1", "en").text)
    assert "Needed = Matched + Unmet" in en and "missing or damaged on receipt" in en


# -- 2. odd digits: a 422 page, never a 500 ---------------------------------------------------


def open_need(site: Site) -> dict[str, Any]:
    return next(
        n
        for _, n in site.node.store.state().scan("relief.need")
        if n["shelter"] == "tachikawa-shelter-1" and n["status"] == "open"
    )


def forms(site: Site, odd: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(user, page with the form, action, fields) for every numeric field of the relief forms."""
    need = open_need(site)
    review = site.client("coordinator1").get("/relief/review").text
    pick = re.search(r'name="pick" value="([^"]+)"', review)
    assert pick, "the demo proposal has no rows"
    counts = {k: "0" for k in catalog.GROUP_KEYS}
    return [
        (
            "shelter1",
            "/relief/needs",
            "/relief/needs",
            {"item": "tokyo-1", "quantity": odd, "needed_by": day(3)},
        ),
        (
            "coordinator1",
            "/relief/review",
            "/relief/review",
            {"pick": pick.group(1), f"q-{pick.group(1)}": odd},
        ),
        ("shelter1", "/relief/inbox", "/relief/inbox/read", {"id": odd}),
        (
            "shelter1",
            "/relief/needs",
            "/relief/needs/suggest",
            counts | {"adultMale": odd, "days": "3"},
        ),
        (
            "shelter1",
            "/relief/needs",
            "/relief/needs/suggest",
            counts | {"adultMale": "5", "days": odd},
        ),
        (
            "shelter1",
            "/relief/needs",
            "/relief/needs/suggested",
            {"pick": "tokyo-1", "q-tokyo-1": odd, "needed_by": day(3)},
        ),
        ("shelter1", "/relief/needs", f"/relief/needs/{need['id']}/update", {"quantity": odd}),
    ]


@pytest.mark.parametrize("odd", ODD_DIGITS)
def test_odd_digits_are_refused_with_a_japanese_page(site: Site, odd: str):
    before = site.snapshot()
    unread = site.api("GET", "/notifications", "coordinator1").json()["unread"]
    shelter_unread = site.api("GET", "/notifications", "shelter1").json()["unread"]
    for user, page, action, fields in forms(site, odd):
        client = site.client(user)
        token = csrf(client.get(page).text)
        response = client.post(action, data={"csrf": token, **fields})
        assert response.status_code == 422, (action, fields, response.text[:300])
        assert '<html lang="ja">' in response.text
        assert re.search(r"入力|確認|選んで", text(response.text)), (action, text(response.text))
    assert site.snapshot() == before
    assert site.api("GET", "/notifications", "coordinator1").json()["unread"] == unread
    assert site.api("GET", "/notifications", "shelter1").json()["unread"] == shelter_unread


def test_full_width_digits_still_count(site: Site):
    client = site.client("shelter1")
    token = csrf(client.get("/relief/needs").text)
    fields = {"item": "other-tarp", "quantity": "３０", "needed_by": day(4), "csrf": token}
    assert client.post("/relief/needs", data=fields).status_code == 303
    newest = max(
        (n for _, n in site.node.store.state().scan("relief.need") if n["item"] == "other-tarp"),
        key=lambda n: n["history"][0]["height"],
    )
    assert newest["quantity"] == 30
    english = site.client("shelter1", "en")
    token = csrf(english.get("/relief/needs").text)
    page = english.post("/relief/needs", data=fields | {"quantity": "①", "csrf": token})
    assert page.status_code == 422 and "whole-number quantity" in page.text


# -- 7. the review table ------------------------------------------------------------------------


def test_review_shows_allergens_expiry_size_and_what_is_still_needed(site: Site):
    for item, fields in (("food-allergy-canned", {}), ("clothing-children", {"size": "150"})):
        body = {"item": item, "quantity": 5, "needed_by": day(3)} | fields
        assert site.api("POST", "/needs", "shelter1", body).status_code == 201
    proposal = site.api("GET", "/proposal", "coordinator1").json()["allocations"]
    page = site.client("coordinator1").get("/relief/review").text
    words = text(page)
    assert 'class="table-wrap"' in page
    for column in ("アレルゲン", "賞味・消費期限", "数量"):
        assert f'data-label="{column}"' in page
    for row in proposal:
        assert f"必要数の残り: {row['need_remaining']}" in words
        if row["expiry"]:
            assert row["expiry"] in words
    allergy = next(r for r in proposal if r["allergen_free_names"])
    assert "除去: " + "、".join(a["ja"] for a in allergy["allergen_free_names"]) in words
    declared = next(r for r in proposal if r["allergen_names"])
    assert "含む: " + "、".join(a["ja"] for a in declared["allergen_names"]) in words
    sized = [r for r in proposal if r["offer_size"]]
    assert sized
    for row in sized:
        assert f"サイズ: {row['need_size'] or '—'} → {row['offer_size']}" in words


# -- 8a. a cancelled match prints no label -----------------------------------------------------


def test_a_cancelled_match_prints_no_label(site: Site):
    match = new_match(site, "supporter1")
    cancel = site.api("POST", f"/matches/{match}/cancel", "coordinator1", {"reason": "重複"})
    assert cancel.status_code == 200, cancel.text
    for user in ("supporter1", "shelter1", "coordinator1", "admin"):
        problem = assert_problem(
            site.api("GET", f"/matches/{match}/label.pdf", user, lang="ja"), 409, "match_cancelled"
        )
        assert "取り消された" in problem["detail"]
    assert_problem(
        site.api("GET", f"/labels.pdf?ids={match}", "supporter1"), 409, "match_cancelled"
    )
    client = site.client("supporter1")
    page = text(client.get(f"/relief/matches/{match}").text)
    assert "このマッチングは取り消されました" in page and "ラベルは印刷できません" in page
    assert f"/matches/{match}/label.pdf" not in client.get(f"/relief/matches/{match}").text
    listing = client.get("/relief/matches").text
    assert f"/matches/{match}/label.pdf" not in listing and "取消済みのためラベルなし" in listing
    assert f'value="{match}" data-pick' not in listing


# -- 8c. no allergen box for clothing ----------------------------------------------------------


def test_clothing_packages_show_no_allergen_box(site: Site):
    clothing = next(m for m in site.matches() if m["item"] == "clothing-children")
    food = next(m for m in site.matches() if catalog.items()[m["item"]].kind == "food")
    client = site.client()
    page = client.get(f"/r/{clothing['code']}")
    assert page.status_code == 200
    assert "allergen-box" not in page.text and "表示対象の28品目" not in page.text
    assert "子ども服" in text(page.text) or catalog.item("clothing-children").name_ja in page.text
    assert "allergen-box" in client.get(f"/r/{food['code']}").text


# -- 8d. the suggestion form's messages --------------------------------------------------------


@pytest.mark.parametrize("days", ["0", "99", "３１"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_suggestion_days_outside_the_range_say_so(site: Site, days: str, lang: str):
    client = site.client("shelter1", lang)
    token = csrf(client.get("/relief/needs").text)
    fields = {k: "0" for k in catalog.GROUP_KEYS} | {"adultMale": "10", "days": days}
    page = client.post("/relief/needs/suggest", data=fields | {"csrf": token})
    assert page.status_code == 422
    words = text(page.text)
    if lang == "ja":
        assert "日数は 1 から 30 までの整数で指定してください。" in words
    else:
        assert "days must be a whole number from 1 to 30" in words


def test_suggestion_with_no_evacuees_says_so(site: Site):
    client = site.client("shelter1")
    token = csrf(client.get("/relief/needs").text)
    fields = {k: "0" for k in catalog.GROUP_KEYS} | {"days": "3", "csrf": token}
    page = client.post("/relief/needs/suggest", data=fields)
    assert page.status_code == 422
    assert "少なくとも1つの区分に避難者の人数を入力してください。" in text(page.text)


# -- 8f. the shelter's card links to its packages ----------------------------------------------


def test_the_shelter_card_links_to_the_packages(site: Site):
    hub = site.client("shelter1").get("/relief").text
    card = hub.split('href="/relief/needs"', 1)[1].split("</section>", 1)[0]
    assert 'href="/relief/matches"' in card
