"""Correcting a session over the real demo node: a check-out in the same second as the check-in
is accepted (0 minutes) but cannot be attested (``too_short``, in both languages, nothing
changed); correcting an attested session revokes its credential on the chain and returns the
session to "not attested", so the organiser attests again and a new credential states the
corrected hours; the history keeps every step."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tsunagu.apps.community import catalog
from tsunagu.apps.community.contract import format_time
from tsunagu.ledger.keys import SigningKey

from .conftest import Community, assert_problem, at
from .test_pages import client


def _free_now(community: Community) -> str:
    """A demo volunteer with no open session and none ending in the last three hours."""
    since = format_time(datetime.now(UTC) - timedelta(hours=3))
    state = community.node.store.state()
    for username in ("resident4", "resident6", "resident2", "resident3"):
        vid = community.vid(username)
        busy = False
        for _, ref in state.scan("community.vsession", f"{vid}/"):
            session = state.get("community.session", f"{ref['activity']}/{vid}")
            if session is not None and (session["check_out"] or "9") > since:
                busy = True
        if not busy:
            return username
    raise AssertionError("no demo volunteer is free now")


def _verify(community: Community, credential: dict) -> dict:
    response = community.http.post("/api/v1/verify/credential", json=credential)
    assert response.status_code == 200, response.text
    return response.json()


def _credentials(community: Community, user: str) -> dict[str, dict]:
    listed = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers(user)
    ).json()["credentials"]
    return {c["hash"]: c for c in listed}


def _session(community: Community, aid: str, vid: str) -> dict:
    sessions = community.get(f"/activities/{aid}", "organiser1").json()["sessions"]
    return next(s for s in sessions if s["volunteer"] == vid)


def test_a_same_second_check_out_counts_nothing_and_cannot_be_attested(community: Community):
    user = _free_now(community)
    vid = community.vid(user)
    aid = community.activity(category="story-time", title="朝のおはなし会")
    token = community.token(aid)
    assert community.post(f"/activities/{aid}/checkin", user, {"token": token}).status_code == 201
    # At once, no waiting: the check-out may fall in the same second as the check-in.
    response = community.post(f"/activities/{aid}/checkout", user, {"token": token})
    assert response.status_code == 201, response.text
    session = _session(community, aid, vid)
    assert session["check_out"] >= session["check_in"]
    assert (session["minutes"], session["attested"]) == (0, False)

    before = community.snapshot()
    path = f"/activities/{aid}/sessions/{vid}/attest"
    en = assert_problem(community.post(path, "organiser1"), 422, "too_short")
    assert "Less than one minute" in en["detail"]
    ja = assert_problem(community.post(path, "organiser1", lang="ja"), 422, "too_short")
    assert ja["detail"].startswith("記録された時間が1分未満")
    # The contract itself refuses it too, when a client bypasses the API's checks.
    receipt = community.direct("organiser1", "session.attest", {"activity": aid, "volunteer": vid})
    assert (receipt.status, receipt.code) == ("rejected", "too_short")
    assert community.snapshot()[1] == before[1]

    # The organiser's page shows the same refusal in Japanese.
    page = client(community, "organiser1")
    html = page.get(f"/community/activities/{aid}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    refused = page.post(f"/community{path}", data={"csrf": csrf.group(1)})
    assert refused.status_code == 422 and "1分未満" in refused.text

    # A check-out before the check-in is still refused, with a message that says so.
    body = {"check_in": at(-1), "check_out": at(-2), "reason": "訂正"}
    problem = assert_problem(
        community.post(f"/activities/{aid}/sessions/{vid}/correct", "organiser1", body, "ja"),
        422,
        "checkout_before_checkin",
    )
    assert "チェックインより前" in problem["detail"]
    assert community.snapshot()[1] == before[1]


def test_correcting_an_attested_session_revokes_its_credential(community: Community):
    user = _free_now(community)
    vid = community.vid(user)
    aid = community.activity(category="food-bank", title="フードバンク仕分け（臨時）")
    token = community.token(aid)
    assert community.post(f"/activities/{aid}/checkin", user, {"token": token}).status_code == 201
    assert community.post(f"/activities/{aid}/checkout", user, {"token": token}).status_code == 201
    correct = f"/activities/{aid}/sessions/{vid}/correct"
    attest = f"/activities/{aid}/sessions/{vid}/attest"
    first = {"check_in": at(-2), "check_out": at(-1.25), "reason": "受付の記録漏れを訂正"}
    assert community.post(correct, "organiser1", first).status_code == 201
    minutes_before = community.get("/me", user).json()["minutes"]
    response = community.post(attest, "organiser1")
    assert response.status_code == 201, response.text
    old = response.json()["credential_hash"]
    old_credential = _credentials(community, user)[old]["credential"]
    assert "0時間45分" in old_credential["credentialSubject"]["achievement"]["description"]
    assert _verify(community, old_credential)["failed"] == []
    assert community.get("/me", user).json()["minutes"] == minutes_before + 45

    # The volunteer stayed longer: the organiser corrects the attested session.
    second = {"check_in": at(-2), "check_out": at(-0.5), "reason": "片付けまで参加"}
    assert community.post(correct, "organiser1", second).status_code == 201
    session = _session(community, aid, vid)
    assert (session["minutes"], session["attested"], session["credential"]) == (90, False, None)
    assert community.get("/me", user).json()["minutes"] == minutes_before
    report = _verify(community, old_credential)
    assert report["failed"] == ["revocation"] and report["revoked_at"]
    assert report["valid"] is False and report["not_run"] == []
    anchored = community.node.store.state().get("community.credential", old)
    assert anchored["revoked"] and anchored["reason"] == "片付けまで参加"

    # Attested again: a new credential with the corrected hours verifies.
    response = community.post(attest, "organiser1")
    assert response.status_code == 201, response.text
    new = response.json()["credential_hash"]
    listed = _credentials(community, user)
    assert listed[old]["revoked"] is True and listed[new]["revoked"] is False
    new_credential = listed[new]["credential"]
    assert "1時間30分" in new_credential["credentialSubject"]["achievement"]["description"]
    assert _verify(community, new_credential)["valid"] is True
    assert community.get("/me", user).json()["minutes"] == minutes_before + 90

    # Every step is kept, with what the correction replaced and the credential it revoked.
    session = _session(community, aid, vid)
    assert (session["minutes"], session["attested"], session["credential"]) == (90, True, new)
    history = session["history"]
    assert [e["action"] for e in history] == [
        "checkin",
        "checkout",
        "correct",
        "attest",
        "correct",
        "attest",
    ]
    assert history[3]["credential"] == old and history[5]["credential"] == new
    assert history[4]["revoked"] == old
    assert history[4]["before"] == {
        "check_in": first["check_in"],
        "check_out": first["check_out"],
        "minutes": 45,
        "attested": True,
    }

    # The resident's own page and record show the old credential as revoked, the new as valid.
    me = {c["hash"]: c for c in community.get("/me", user).json()["credentials"]}
    assert me[old]["revoked"] is True and me[new]["revoked"] is False
    html = client(community, user).get("/community/me").text
    items = {h: li for li in html.split("<li") for h in (old, new) if f"/{h}" in li}
    assert "badge bad" in items[old] and "badge bad" not in items[new]


def _new_volunteer(community: Community) -> str:
    """A resident registered just now (the admin adds their key): no hours yet."""
    key = SigningKey.generate()
    body = {"public_key": key.public_key.hex(), "org": "hachioji", "roles": ["resident"]}
    response = community.http.post(
        "/api/v1/identity/members", json=body, headers=community.headers("admin")
    )
    assert response.status_code == 201, response.text
    return key.key_id


def test_a_correction_below_a_milestone_revokes_it_until_the_hours_reach_it_again(
    community: Community,
):
    vid = _new_volunteer(community)
    milestone = catalog.MILESTONES[0]  # 10 hours
    # A day before the demo's months, from 00:00 in Tokyo; 11 hours of a day-long activity.
    start = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
    start -= timedelta(days=400)

    def later(minutes: int) -> str:
        return format_time(start + timedelta(minutes=minutes))

    aid = community.activity(
        title="防災倉庫の点検（終日）", starts_at=later(0), ends_at=later(1440)
    )
    key = community.private.signing_key(community.private.user("organiser1"))  # type: ignore[arg-type]
    pending = [
        community.node.submit_signed(
            key, "community", f"session.{kind}", {"activity": aid, "at": moment, "volunteer": vid}
        )
        for kind, moment in (("checkin", later(0)), ("checkout", later(milestone + 60)))
    ]
    results = [p.future.result(30) for p in pending]
    assert [(r.status, r.code) for r in results] == [("committed", None)] * 2
    attest = f"/activities/{aid}/sessions/{vid}/attest"
    correct = f"/activities/{aid}/sessions/{vid}/correct"

    def attested() -> list[str]:
        response = community.post(attest, "organiser1")
        assert response.status_code == 201, response.text
        return response.json()["milestones"]

    def minutes() -> int:
        return community.node.store.state().get("community.volunteer", vid)["minutes"]

    def issued() -> dict | None:
        return community.node.store.state().get("community.milestone", f"{vid}/{milestone}")

    (first,) = attested()  # 11 hours: the 10-hour milestone
    badge = community.store.get(vid, "credential", first)
    assert badge["credentialSubject"]["achievement"]["id"].endswith(f":{milestone}")
    assert _verify(community, badge)["valid"] is True and issued() == {"hash": first}

    # The organiser corrects the session to 9 hours: the milestone is no longer reached, so
    # its credential is revoked on the chain, and the check says why in both languages.
    reason = "終了時刻の記録誤りを訂正"
    body = {"check_in": later(0), "check_out": later(milestone - 60), "reason": reason}
    assert community.post(correct, "organiser1", body).status_code == 201
    report = _verify(community, badge)
    assert report["failed"] == ["revocation"] and report["revoked_reason"] == reason
    check = report["checks"][3]
    assert "訂正により確認済みの活動時間がこの節目（10時間）を下回った" in check["detail_ja"]
    assert "a correction lowered the attested hours below this milestone" in check["detail_en"]
    assert _session(community, aid, vid)["history"][-1]["revoked_milestones"] == [first]
    assert (minutes(), issued()) == (0, None)
    assert attested() == [] and minutes() == milestone - 60  # 9 hours attested: none issued

    # Corrected to 10 and a half hours and attested again: a new milestone credential.
    body = {"check_in": later(0), "check_out": later(milestone + 30), "reason": "片付けまで参加"}
    assert community.post(correct, "organiser1", body).status_code == 201
    assert "revoked_milestones" not in _session(community, aid, vid)["history"][-1]
    (second,) = attested()
    assert second != first and issued() == {"hash": second}
    assert _verify(community, community.store.get(vid, "credential", second))["valid"] is True
    assert _verify(community, badge)["failed"] == ["revocation"]
