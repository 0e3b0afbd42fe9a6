"""Community pages over the real demo node: each page in Japanese and English, forms with
CSRF, and a refusal shown in the user's language with nothing changed."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from .conftest import PASSWORD, Community


def client(community: Community, user: str | None = None, lang: str = "ja") -> TestClient:
    http = TestClient(community.app, follow_redirects=False)
    http.cookies.set("lang", lang)
    if user:
        response = http.post("/login", data={"username": user, "password": PASSWORD})
        assert response.status_code == 303, response.text
    return http


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _paths(community: Community) -> list[tuple[str | None, str]]:
    state = community.node.store.state()
    aid = next(k for k, v in state.scan("community.activity") if v["org"] == "tama-volunteer-net")
    r1 = community.vid("resident1")
    digest = next(k for k, v in state.scan("community.credential") if v["recipient"] == r1)
    return [
        (None, "/community"),
        ("organiser1", "/community"),
        ("organiser1", "/community/activities/new"),
        ("organiser1", f"/community/activities/{aid}"),
        ("resident1", f"/community/activities/{aid}"),
        ("resident1", f"/community/checkin/{aid}?t=0.0"),
        ("resident1", "/community/me"),
        ("resident1", "/community/search?skill=light-bulbs"),
        ("resident1", "/community/help"),
        (None, "/community/dashboard"),
        (None, "/community/verify"),
        (None, f"/community/credentials/{digest}?k={community.store.share_token(digest)}"),
        ("resident1", f"/community/credentials/{digest}"),
    ]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_page_renders_in_both_languages(community: Community, lang: str):
    words = {"ja": "地域貢献", "en": "Community"}
    clients: dict[str | None, TestClient] = {}
    for user, path in _paths(community):
        if user not in clients:
            clients[user] = client(community, user, lang)
        response = clients[user].get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert f'<html lang="{lang}">' in response.text
        assert words[lang] in response.text, path


def test_pages_ask_for_login_and_roles(community: Community):
    anonymous = client(community)
    assert anonymous.get("/community/me").status_code == 303
    assert anonymous.get("/community/me").headers["location"].startswith("/login?next=")
    response = client(community, "resident1").get("/community/activities/new")
    assert response.status_code == 403 and "権限がありません" in response.text


def test_publishing_through_the_form_and_a_refusal_in_japanese(community: Community):
    http = client(community, "organiser3")
    token = csrf(http.get("/community/activities/new").text)
    form = {
        "csrf": token,
        "category": "kids-cafeteria",
        "title": "まちだ子ども食堂 臨時回",
        "municipality": "machida",
        "place": "町田市 原町田",
        "starts_at": "2030-01-10T16:00",
        "ends_at": "2030-01-10T19:00",
        "capacity": "15",
    }
    response = http.post("/community/activities", data=form)
    assert response.status_code == 303, response.text
    page = http.get(response.headers["location"])
    assert "まちだ子ども食堂 臨時回" in page.text and "チェックイン用QRコード" in page.text
    activity = community.node.store.state().get(
        "community.activity", response.headers["location"].rsplit("/", 1)[1]
    )
    assert activity["starts_at"] == "2030-01-10T07:00:00Z"  # 16:00 in Japan

    before = community.snapshot()
    bad = {**form, "ends_at": "2030-01-10T15:00"}
    refused = http.post("/community/activities", data=bad)
    assert refused.status_code == 422
    assert "終了時刻は開始時刻より後" in refused.text and "何も変更されていません" in refused.text
    assert http.post("/community/activities", data={**form, "csrf": "x"}).status_code == 403
    assert community.snapshot() == before


def test_the_check_in_page_with_an_expired_code_says_so(community: Community):
    state = community.node.store.state()
    aid = next(k for k, v in state.scan("community.activity") if v["org"] == "oshima-shakyo")
    http = client(community, "resident6")
    token = csrf(http.get(f"/community/checkin/{aid}?t=1.abc").text)
    before = community.snapshot()
    response = http.post(f"/community/checkin/{aid}", data={"csrf": token, "t": "1.abc"})
    assert response.status_code == 403
    assert "有効期限が切れました" in response.text
    assert community.snapshot() == before


def test_the_dashboard_map_plots_tama_and_the_islands(community: Community):
    html = client(community, lang="en").get("/community/dashboard").text
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<circle") == 39  # 30 Tama and 9 island municipalities
    assert "Hachijo" in svg and "Ogasawara" in svg and "Oshima Town: " in svg
    assert len(re.findall(r'class="cm-point cm-active', svg)) >= 4


def test_the_organiser_can_scan_the_volunteers_code_instead(community: Community):
    aid = community.activity(user="organiser2", municipality="tachikawa", title="花壇の水やり")
    volunteer = client(community, "resident2")
    page = volunteer.get(f"/community/activities/{aid}").text
    assert "自分のコードを主催者に読み取ってもらえます" in page and "<svg" in page
    vid = community.vid("resident2")
    path = f"/community/activities/{aid}/volunteer/{vid}"
    outsider = client(community, "organiser1")
    before = community.snapshot()
    assert outsider.get(path).status_code == 403
    token = csrf(outsider.get("/community/activities/new").text)
    refused = outsider.post(path, data={"csrf": token, "action": "checkin"})
    assert refused.status_code == 403 and "主催する団体の主催者だけ" in refused.text
    assert community.snapshot() == before
    organiser = client(community, "organiser2")
    token = csrf(organiser.get(path).text)
    assert organiser.post(path, data={"csrf": token, "action": "checkin"}).status_code == 303
    time.sleep(1.1)
    assert "今チェックアウトを記録する" in organiser.get(path).text
    assert organiser.post(path, data={"csrf": token, "action": "checkout"}).status_code == 303
    session = community.node.store.state().get("community.session", f"{aid}/{vid}")
    assert session["check_out"] > session["check_in"]
    assert [e["by"] for e in session["history"]] == [community.vid("organiser2")] * 2


def test_the_verify_page_takes_a_file_and_names_a_failed_check(community: Community):
    listed = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers("resident1")
    ).json()["credentials"]
    revoked = next(c for c in listed if c["revoked"])
    http = client(community)
    token = csrf(http.get("/community/verify").text)
    body = json.dumps(revoked["credential"], ensure_ascii=False).encode()
    response = http.post(
        "/community/verify",
        data={"csrf": token},
        files={"file": ("credential.json", body, "application/json")},
    )
    assert response.status_code == 200
    assert 'data-check="revocation" data-ok="no"' in response.text
    assert 'data-check="signature" data-ok="yes"' in response.text
    assert "取り消されています" in response.text
    bad = http.post("/community/verify", data={"csrf": token, "credential": "{not json"})
    assert bad.status_code == 422 and "JSONではありません" in bad.text
