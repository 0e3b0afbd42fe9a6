"""The relief pages, server side, over a real demo node: every page in Japanese and English,
role gating, forms that change state through the contract, and bad input answered with a
Japanese message that changes nothing.

The browser side (live inbox, offline receipt, QR round trip) is test_relief_e2e.py.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from democache import demo_copy
from tsunagu.apps.relief import catalog

PASSWORD = "pw"
HERE = __import__("pathlib").Path(catalog.__file__).parent
MANDATORY = list(catalog.mandatory_allergens())


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=9, days=offset)).date().isoformat()


@dataclasses.dataclass
class Site:
    node: Any
    app: Any

    def client(self, username: str | None = None, lang: str = "ja") -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        client.cookies.set("lang", lang)
        if username:
            response = client.post("/login", data={"username": username, "password": PASSWORD})
            assert response.status_code == 303, response.text
        return client

    def snapshot(self) -> dict[str, Any]:
        state = self.node.store.state()
        return {
            f"{kind}/{key}": value
            for kind in ("need", "offer", "match")
            for key, value in state.scan(f"relief.{kind}")
        }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = discover_apps()
    node, private = demo_copy(tmp_path_factory.mktemp("relief-pages"), apps, PASSWORD)
    try:
        yield Site(node, create_app(node, private, apps))
    finally:
        node.stop()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def post(client: TestClient, page: str, action: str, data: dict[str, Any]):
    token = csrf(client.get(page).text)
    return client.post(action, data={"csrf": token, **data})


def code_of(site: Site, shipped: bool = True) -> tuple[str, dict[str, Any]]:
    for _, m in site.node.store.state().scan("relief.match"):
        if (m["status"] == "shipped") == shipped and m["shelter"] == "tachikawa-shelter-1":
            return m["code"], m
    raise AssertionError("the demo has no such package")


PAGES = {
    "shelter1": [
        "/relief",
        "/relief/needs",
        "/relief/inbox",
        "/relief/matches",
        "/relief/overview",
    ],
    "supporter1": ["/relief", "/relief/offers", "/relief/matches", "/relief/inbox"],
    "coordinator1": ["/relief", "/relief/review", "/relief/overview", "/relief/matches"],
}


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("user", sorted(PAGES))
def test_pages_render_for_each_role(site, user, lang):
    client = site.client(user, lang)
    for path in PAGES[user]:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert f'<html lang="{lang}">' in page.text
        if lang == "en":
            assert "relief-status:" not in page.text and "relief-priority:" not in page.text


def test_public_pages_in_japanese(site):
    client = site.client()
    hub = text(client.get("/relief").text)
    assert "支援物資" in hub and "ラベルを読み取る" in hub
    assert client.get("/relief/scan").status_code == 200
    code, _ = code_of(site)
    page = client.get(f"/r/{code}")
    assert page.status_code == 200
    words = text(page.text)
    assert "アレルゲン" in words and "発送済み" in words
    assert 'action="/api/v1/relief/matches/' not in page.text  # no receive form for the public
    assert client.get("/r/no-such-code").status_code == 404
    assert (
        client.get("/relief/scan/go", params={"code": f"https://x/r/{code}"}).headers["location"]
        == f"/r/{code}"
    )


def test_role_gating(site):
    anonymous = site.client()
    for path in ("/relief/needs", "/relief/offers", "/relief/review", "/relief/inbox"):
        assert anonymous.get(path).status_code == 303
    assert site.client("supporter1").get("/relief/needs").status_code == 403
    assert site.client("shelter1").get("/relief/offers").status_code == 403
    assert site.client("shelter1").get("/relief/review").status_code == 403


def test_post_need_and_cancel(site):
    client = site.client("shelter1")
    before = len(site.snapshot())
    response = post(
        client,
        "/relief/needs",
        "/relief/needs",
        {
            "item": "food-allergy-friendly",
            "quantity": "30",
            "allergen_free": MANDATORY,
            "priority": "urgent",
            "needed_by": day(2),
            "condition": "any",
        },
    )
    assert response.status_code == 303, text(response.text)
    needs = [n for k, n in site.snapshot().items() if k.startswith("need/")]
    assert len(site.snapshot()) == before + 1
    mine = max(needs, key=lambda n: n["history"][0]["height"])
    assert sorted(mine["allergen_free"]) == sorted(MANDATORY) and mine["quantity"] == 30
    listing = text(client.get("/relief/needs").text)
    assert "アレルギー対応" in listing
    response = post(client, "/relief/needs", f"/relief/needs/{mine['id']}/cancel", {})
    assert response.status_code == 303
    assert site.node.store.state().get("relief.need", mine["id"])["status"] == "cancelled"


def test_bad_need_shows_japanese_error_and_changes_nothing(site):
    client = site.client("shelter1")
    before = site.snapshot()
    response = post(
        client,
        "/relief/needs",
        "/relief/needs",
        {"item": "tokyo-51", "quantity": "たくさん", "needed_by": day(2)},
    )
    assert response.status_code == 422
    assert "確認" in text(response.text)
    response = post(
        client,
        "/relief/needs",
        "/relief/needs",
        {"item": "tokyo-51", "quantity": "5", "needed_by": day(-3)},
    )
    assert response.status_code == 422
    assert site.snapshot() == before


def test_suggest_then_post_chosen(site):
    client = site.client("shelter1")
    counts = {k: "0" for k in catalog.GROUP_KEYS} | {"adultMale": "10", "agedFemale": "4"}
    page = post(client, "/relief/needs", "/relief/needs/suggest", {**counts, "days": "3"})
    assert page.status_code == 200
    picks = re.findall(r'name="pick" value="([^"]+)"', page.text)
    assert picks
    before = len(site.snapshot())
    chosen = picks[:2]
    data = {"pick": chosen, "needed_by": day(3), "priority": "high"}
    data |= {f"q-{i}": "7" for i in chosen}
    response = client.post("/relief/needs/suggested", data={"csrf": csrf(page.text), **data})
    assert response.status_code == 303, text(response.text)
    assert len(site.snapshot()) == before + len(chosen)


def test_offer_review_confirm_ship(site):
    supporter = site.client("supporter1")
    response = post(
        supporter,
        "/relief/offers",
        "/relief/offers",
        {
            "item": "clothing-children",
            "quantity": "20",
            "size": "150",
            "condition": "new",
            "declared": "no",
            "ship_from": "musashino",
            "ship_by": day(2),
        },
    )
    assert response.status_code == 303, text(response.text)
    coordinator = site.client("coordinator1")
    review = coordinator.get("/relief/review")
    assert review.status_code == 200
    picks = re.findall(r'name="pick" value="([^"]+)"', review.text)
    assert picks, text(review.text)
    matches_before = sum(k.startswith("match/") for k in site.snapshot())
    data = {"csrf": csrf(review.text), "pick": picks[:1]}
    data[f"q-{picks[0]}"] = re.search(
        rf'name="q-{re.escape(picks[0])}"[^>]*value="(\d+)"', review.text
    ).group(1)
    done = coordinator.post("/relief/review", data=data)
    assert done.status_code == 200, text(done.text)
    assert "台帳に確定しました" in text(done.text)
    after = site.snapshot()
    assert sum(k.startswith("match/") for k in after) == matches_before + 1
    new = max(
        (v for k, v in after.items() if k.startswith("match/")),
        key=lambda m: m["timeline"][0]["height"],
    )
    if new["sender"] == "musashino-foods":
        detail = supporter.get(f"/relief/matches/{new['id']}")
        assert detail.status_code == 200 and "<svg" in detail.text
        shipped = post(
            supporter,
            f"/relief/matches/{new['id']}",
            f"/relief/matches/{new['id']}/shipment",
            {"carrier": "ヤマト運輸", "tracking": "bad tracking!"},
        )
        assert shipped.status_code == 422
        shipped = post(
            supporter,
            f"/relief/matches/{new['id']}",
            f"/relief/matches/{new['id']}/shipment",
            {"carrier": "ヤマト運輸", "tracking": "1234-5678"},
        )
        assert shipped.status_code == 303
        assert site.node.store.state().get("relief.match", new["id"])["status"] == "shipped"


def test_bad_review_changes_nothing(site):
    coordinator = site.client("coordinator1")
    before = site.snapshot()
    response = post(coordinator, "/relief/review", "/relief/review", {})
    assert response.status_code == 422
    assert "選んで" in text(response.text)
    assert site.snapshot() == before


def test_receive_form_for_destination_staff_only(site):
    code, _ = code_of(site)
    shelter = text(site.client("shelter1").get(f"/r/{code}").text)
    assert "受領を記録" in shelter and "個人名" in shelter
    supporter = text(site.client("supporter1").get(f"/r/{code}").text)
    assert "受領を記録" not in supporter


def test_inbox_marks_read(site):
    client = site.client("shelter1")
    page = client.get("/relief/inbox")
    assert "aria-live" in page.text
    response = client.post("/relief/inbox/read", data={"csrf": csrf(page.text)})
    assert response.status_code == 303
    assert "未読: 0" in text(client.get("/relief/inbox").text)


def newest_need(site: Site, shelter: str) -> dict[str, Any]:
    needs = [n for k, n in site.snapshot().items() if k.startswith("need/")]
    return max(
        (n for n in needs if n["shelter"] == shelter), key=lambda n: n["history"][0]["height"]
    )


def shelter_options(html: str) -> list[str]:
    select = re.search(r'<select id="shelter" name="shelter"[^>]*>(.*?)</select>', html, re.S)
    return re.findall(r'<option value="([^"]+)"', select.group(1)) if select else []


def test_coordinator_posts_a_need_for_a_shelter_of_its_municipality(site):
    # Shelter staff post for their own shelter: no shelter to choose.
    assert 'name="shelter"' not in site.client("shelter1").get("/relief/needs").text
    coordinator = site.client("coordinator1")
    page = coordinator.get("/relief/needs")
    assert page.status_code == 200
    assert shelter_options(page.text) == ["tachikawa-shelter-1"]
    assert shelter_options(site.client("admin").get("/relief/needs").text) == sorted(
        ["tachikawa-shelter-1", "hachioji-shelter-4", "oshima-shelter-1", "hachijo-shelter-1"],
        key=lambda s: (s.split("-")[0], s),
    )
    need = {"item": "tokyo-1", "quantity": "240", "priority": "high", "needed_by": day(3)}
    before = len(site.snapshot())
    response = post(
        coordinator, "/relief/needs", "/relief/needs", need | {"shelter": "tachikawa-shelter-1"}
    )
    assert response.status_code == 303, text(response.text)
    assert len(site.snapshot()) == before + 1
    posted = newest_need(site, "tachikawa-shelter-1")
    assert (posted["item"], posted["quantity"], posted["priority"]) == ("tokyo-1", 240, "high")
    assert posted["municipality"] == "tachikawa"
    # The coordinator's needs page lists the needs of its municipality's shelters.
    assert f"/relief/needs/{posted['id']}/update" in coordinator.get("/relief/needs").text

    # No shelter chosen: a Japanese message, nothing posted.
    before = site.snapshot()
    response = post(coordinator, "/relief/needs", "/relief/needs", need)
    assert response.status_code == 422
    assert "避難所を選んでください" in text(response.text)
    # The coordinator of 大島町 may not post for a shelter of 立川市.
    other = site.client("coordinator2")
    assert shelter_options(other.get("/relief/needs").text) == ["oshima-shelter-1"]
    response = post(
        other, "/relief/needs", "/relief/needs", need | {"shelter": "tachikawa-shelter-1"}
    )
    assert response.status_code == 403
    assert "災害対策本部だけです" in text(response.text)
    assert site.snapshot() == before


def test_edit_a_need_quantity_priority_and_date(site):
    shelter = site.client("shelter1")
    response = post(
        shelter,
        "/relief/needs",
        "/relief/needs",
        {"item": "tokyo-39", "quantity": "50", "priority": "normal", "needed_by": day(4)},
    )
    assert response.status_code == 303, text(response.text)
    need = newest_need(site, "tachikawa-shelter-1")
    page = shelter.get("/relief/needs").text
    assert f'id="p-{need["id"]}"' in page and f'id="d-{need["id"]}"' in page
    action = f"/relief/needs/{need['id']}/update"
    change = {"quantity": "80", "priority": "urgent", "needed_by": day(1)}
    response = post(shelter, "/relief/needs", action, change)
    assert response.status_code == 303, text(response.text)
    now = site.node.store.state().get("relief.need", need["id"])
    assert (now["quantity"], now["priority"], now["needed_by"]) == (80, "urgent", day(1))
    assert now["history"][-1]["changes"] == {
        "quantity": 80,
        "priority": "urgent",
        "needed_by": day(1),
    }

    # Only what the form changes is sent.
    same = {"quantity": "80", "priority": "urgent", "needed_by": day(6)}
    assert post(shelter, "/relief/needs", action, same).status_code == 303
    now = site.node.store.state().get("relief.need", need["id"])
    assert now["history"][-1]["changes"] == {"needed_by": day(6)}

    # The coordinator of the shelter's municipality may edit it too.
    coordinator = site.client("coordinator1")
    response = post(coordinator, "/relief/needs", action, {"quantity": "90", "priority": "high"})
    assert response.status_code == 303, text(response.text)
    now = site.node.store.state().get("relief.need", need["id"])
    assert (now["quantity"], now["priority"], now["needed_by"]) == (90, "high", day(6))

    before = site.snapshot()
    # Another municipality's coordinator is refused in Japanese.
    other = site.client("coordinator2")
    response = post(other, "/relief/needs", action, {"quantity": "5", "priority": "normal"})
    assert response.status_code == 403
    assert "災害対策本部だけです" in text(response.text)
    # A date in the past, a quantity of zero, a priority that is none: refused.
    response = post(shelter, "/relief/needs", action, {"quantity": "90", "needed_by": day(-2)})
    assert response.status_code == 422 and "必要期限" in text(response.text)
    response = post(shelter, "/relief/needs", action, {"quantity": "0"})
    assert response.status_code == 422 and "確認" in text(response.text)
    response = post(shelter, "/relief/needs", action, {"quantity": "90", "priority": "someday"})
    assert response.status_code == 422
    assert site.snapshot() == before


def overview_rows(html: str) -> set[str]:
    table = re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1)
    return set(re.findall(r'<td data-label="避難所">([^<]+)</td>', table))


def test_overview_filters_for_coordinators_and_admin(site):
    tachikawa = "立川市立第一小学校 避難所"
    oshima = "大島町開発総合センター 避難所"
    admin = site.client("admin")
    page = admin.get("/relief/overview")
    assert page.status_code == 200 and 'name="shelter"' in page.text
    assert {tachikawa, oshima} <= overview_rows(page.text)
    page = admin.get("/relief/overview", params={"shelter": "oshima-shelter-1"})
    assert overview_rows(page.text) == {oshima}
    assert '<option value="oshima-shelter-1" selected>' in page.text

    coordinator = site.client("coordinator1")
    assert overview_rows(coordinator.get("/relief/overview").text) == {tachikawa}
    page = coordinator.get("/relief/overview", params={"municipality": "oshima"})
    assert overview_rows(page.text) == {oshima}
    assert '<option value="oshima" selected>' in page.text
    # A malformed filter is ignored, not an error.
    page = coordinator.get("/relief/overview", params={"shelter": "<script>"})
    assert page.status_code == 200 and overview_rows(page.text) == {tachikawa}

    # Shelter staff see their own shelter, without filters.
    staff = site.client("shelter1").get("/relief/overview", params={"shelter": "oshima-shelter-1"})
    assert 'name="shelter"' not in staff.text and overview_rows(staff.text) == {tachikawa}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_overview_unmet_needs_show_unit_names(site, lang):
    page = text(site.client("admin", lang).get("/relief/overview").text)
    water = catalog.item("tokyo-1")
    unit = water.unit_ja if lang == "ja" else water.unit_en
    name = water.name_ja if lang == "ja" else water.name_en
    assert re.search(rf"{re.escape(name)} \d+ {re.escape(unit)}", page), page[:2000]


def test_every_msgid_has_japanese():
    with open(HERE / "locales/ja/LC_MESSAGES/messages.po", "rb") as fh:
        po = read_po(fh, locale="ja")
    missing = [m.id for m in po if m.id and not m.string]
    assert not missing
    used: set[str] = set()
    for path in (HERE / "templates/relief").glob("*.html"):
        used |= set(re.findall(r'_\(\s*"([^"]+)"', path.read_text()))
        used |= set(re.findall(r"_\(\s*'([^']+)'", path.read_text()))
    known = {m.id for m in po if m.id}
    # The platform's catalogue words what relief pages share with every page ("Not allowed").
    with open(HERE.parent.parent / "web/locales/ja/LC_MESSAGES/messages.po", "rb") as fh:
        known |= {m.id for m in read_po(fh, locale="ja") if m.id and m.string}
    assert not {u for u in used if not u.endswith(":")} - known
