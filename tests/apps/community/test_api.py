"""The community API over a real demo node: an activity from publication to a verified
credential, skills and help with visibility, and every bad input answered in both languages
with nothing changed (neither the chain's height nor any community state)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tsunagu.apps.community.contract import format_time
from tsunagu.ledger import merkle

from .conftest import Community, assert_problem, at


def test_an_activity_from_publication_to_a_verified_credential(community: Community):
    aid = community.activity(category="dementia-cafe", title="オレンジカフェ")
    token = community.token(aid)
    response = community.post(f"/activities/{aid}/checkin", "resident3", {"token": token})
    assert response.status_code == 201, response.text
    time.sleep(1.1)  # check-out must come after check-in, to the second
    response = community.post(f"/activities/{aid}/checkout", "resident3", {"token": token})
    assert response.status_code == 201, response.text
    vid = community.vid("resident3")
    sessions = community.get(f"/activities/{aid}", "organiser1").json()["sessions"]
    assert [(s["volunteer"], s["minutes"], s["attested"]) for s in sessions] == [(vid, 0, False)]
    # A phone scanned late: the organiser corrects the times; the history keeps both.
    body = {"check_in": at(-2), "check_out": at(-0.5), "reason": "受付の記録漏れを訂正"}
    response = community.post(f"/activities/{aid}/sessions/{vid}/correct", "organiser1", body)
    assert response.status_code == 201, response.text
    response = community.post(f"/activities/{aid}/sessions/{vid}/attest", "organiser1")
    assert response.status_code == 201, response.text
    digest = response.json()["credential_hash"]
    session = community.get(f"/activities/{aid}", "organiser1").json()["sessions"][0]
    assert (session["minutes"], session["attested"]) == (90, True)
    assert [e["action"] for e in session["history"]] == ["checkin", "checkout", "correct", "attest"]
    assert session["history"][2]["before"]["check_out"] != session["check_out"]

    listed = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers("resident3")
    ).json()["credentials"]
    mine = next(c for c in listed if c["hash"] == digest)
    credential = mine["credential"]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    identity = credential["credentialSubject"]["identifier"][0]
    assert identity["hashed"] is True and identity["identityHash"].startswith("sha256$")
    assert "斎藤" not in str(credential) and "resident3" not in str(credential)
    report = community.http.post("/api/v1/verify/credential", json=credential).json()
    assert report["valid"] is True and report["failed"] == []
    proof = report["inclusion_proof"]
    merkle.verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        proof["index"],
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(proof["root_hash"]),
    )
    # The chain holds the hash and pseudonymous ids only.
    anchored = community.node.store.state().get("community.credential", digest)
    assert anchored is not None and anchored["recipient"] == vid


def test_resident1_has_several_credentials_and_a_milestone(community: Community):
    response = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers("resident1")
    )
    credentials = response.json()["credentials"]
    assert len(credentials) >= 5
    assert {"participation", "milestone"} <= {c["kind"] for c in credentials}
    assert any(c["revoked"] for c in credentials)
    me = community.get("/me", "resident1").json()
    assert me["minutes"] >= 600 and 600 in me["milestones"]
    assert sum(me["by_category"].values()) == me["minutes"]


def test_anonymous_and_other_roles_cannot_write(community: Community):
    before = community.snapshot()
    body = {"category": "other", "title": "t", "municipality": "hachioji", "place": "p"}
    body |= {"starts_at": at(1), "ends_at": at(2), "capacity": 3}
    assert_problem(community.post("/activities", None, body), 401, "unauthorized")
    assert_problem(community.post("/activities", "resident1", body), 403, "forbidden")
    assert community.snapshot() == before


def _past_day(days: int) -> datetime:
    """Midnight in Japan ``days`` ago, as UTC."""
    jst = datetime.now(UTC) + timedelta(hours=9)
    midnight = datetime(jst.year, jst.month, jst.day, tzinfo=UTC) - timedelta(days=days)
    return midnight - timedelta(hours=9)


def _free_day(community: Community) -> tuple[str, datetime]:
    """A demo volunteer and a Japanese day on which back-dated sessions from midnight to 03:00
    the next day can be recorded for them: after every session they already have (a check-in
    stays open until its check-out, so it overlaps every later session) and over 27 hours ago.
    The demo's weekly sessions follow today's date, so the volunteer changes with the day."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    for username in ("resident6", "resident5", "resident2", "resident7", "resident3"):
        vid = community.vid(username)
        state = community.node.store.state()
        ends = [""]
        for _, ref in state.scan("community.vsession", f"{vid}/"):
            session = state.get("community.session", f"{ref['activity']}/{vid}")
            if session is not None:
                ends.append(session["check_out"] or session["check_in"])
        for days in range(1, 30):
            day = _past_day(days)
            if format_time(day) < max(ends):
                break
            if day + timedelta(hours=27) <= now:
                return username, day
    raise AssertionError("no demo volunteer is free long enough before now")


def test_bad_input_is_refused_in_both_languages_and_changes_nothing(community: Community):
    aid = community.activity(title="花壇の手入れ", category="flower-beds")
    other = community.activity(title="ごみ拾い", category="litter-picking")
    token = community.token(aid)
    r5 = community.vid("resident5")
    response = community.post(f"/activities/{aid}/checkin", "resident5", {"token": token})
    assert response.status_code == 201, response.text
    # A 20-hour session that ends the day, then one started before midnight: over 24 h that day.
    volunteer, day = _free_day(community)
    long = community.activity(
        starts_at=format_time(day), ends_at=format_time(day + timedelta(hours=20))
    )
    late = community.activity(
        starts_at=format_time(day + timedelta(hours=21)),
        ends_at=format_time(day + timedelta(hours=27)),
    )
    for tx, payload in (
        ("session.checkin", {"activity": long, "at": format_time(day)}),
        ("session.checkout", {"activity": long, "at": format_time(day + timedelta(hours=20))}),
    ):
        receipt = community.direct(volunteer, tx, payload)
        assert receipt.status == "committed", receipt
    help_id = community.post("/help", "resident2", {"skill": "english"}).json()["help_id"]
    assert community.post(f"/help/{help_id}/accept", "resident1").status_code == 201
    assert community.post(f"/help/{help_id}/confirm", "resident2").status_code == 201

    before = community.snapshot()
    cases = [
        # a code scanned at another activity
        (
            community.post(f"/activities/{other}/checkout", "resident4", {"token": token}),
            403,
            "bad_token",
        ),
        # check-out before check-in (no check-in at all)
        (
            community.post(
                f"/activities/{other}/checkout", "resident4", {"token": community.token(other)}
            ),
            422,
            "not_checked_in",
        ),
        # overlapping sessions: resident5 is still checked in elsewhere
        (
            community.post(
                f"/activities/{other}/checkin", "resident5", {"token": community.token(other)}
            ),
            422,
            "overlapping",
        ),
        # a correction whose check-out is before its check-in
        (
            community.post(
                f"/activities/{long}/sessions/{community.vid(volunteer)}/correct",
                "organiser1",
                {"check_in": format_time(day + timedelta(hours=2)), "check_out": format_time(day)}
                | {"reason": "訂正"},
            ),
            422,
            "checkout_before_checkin",
        ),
        # attestation by another group's organiser
        (
            community.post(
                f"/activities/{long}/sessions/{community.vid(volunteer)}/attest", "organiser2"
            ),
            403,
            "other_group",
        ),
        # confirming help twice
        (community.post(f"/help/{help_id}/confirm", "resident2"), 409, "already_confirmed"),
        (community.post(f"/help/{help_id}/confirm", "resident3"), 403, "not_party"),
        (
            community.post("/activities/a-0000000000000000/signup", "resident4"),
            404,
            "unknown_activity",
        ),
        (
            community.put("/skills/juggling", "resident4", {"visibility": "public"}),
            422,
            "unknown_skill",
        ),
        (
            community.post(
                "/activities",
                "organiser1",
                {
                    "category": "other",
                    "title": "連絡は 090-1234-5678 まで",
                    "municipality": "hachioji",
                    "place": "p",
                    "starts_at": at(1),
                    "ends_at": at(2),
                    "capacity": 3,
                },
            ),
            422,
            "personal_data",
        ),
    ]
    for response, status, code in cases:
        assert_problem(response, status, code)
    ja = community.post(f"/help/{help_id}/confirm", "resident2", lang="ja")
    assert assert_problem(ja, 409, "already_confirmed")["detail"] == "既に確認済みです。"
    assert community.snapshot() == before

    # The contract refuses the same things when a client bypasses the API's checks.
    refused = [
        (
            volunteer,
            "session.checkin",
            {"activity": late, "at": format_time(day + timedelta(hours=21))},
        ),
    ]
    receipt = community.direct(*refused[0])
    assert receipt.status == "committed"  # checking in is fine; the day limit bites at check-out
    checkout = {"activity": late, "at": format_time(day + timedelta(hours=26))}
    height = community.node.head.height  # type: ignore[union-attr]
    bad = [
        (volunteer, "session.checkout", checkout, "over_24h"),
        (
            volunteer,
            "session.checkout",
            {"activity": late, "at": format_time(day + timedelta(hours=20, minutes=30))},
            "checkout_before_checkin",
        ),
        ("resident5", "session.checkin", {"activity": other, "at": at(0)}, "overlapping"),
        ("organiser2", "session.attest", {"activity": long, "volunteer": r5}, "other_group"),
    ]
    state_before = community.snapshot()[1]
    for user, tx, payload, code in bad:
        receipt = community.direct(user, tx, payload)
        assert (receipt.status, receipt.code) == ("rejected", code), receipt
    assert community.snapshot()[1] == state_before
    assert community.node.head.height > height  # the refusals are recorded in blocks


def test_help_counts_only_when_both_confirm(community: Community):
    helper = community.vid("resident3")
    helps = community.get("/me", "resident3").json()["helps"]
    body = {"skill": "furniture", "helper": helper, "note": "本棚の組み立て"}
    response = community.post("/help", "resident4", body)
    assert response.status_code == 201, response.text
    hid = response.json()["help_id"]
    assert community.post(f"/help/{hid}/accept", "resident3").status_code == 201
    assert community.post(f"/help/{hid}/confirm", "resident3").status_code == 201
    assert community.get("/me", "resident3").json()["helps"] == helps
    assert community.post(f"/help/{hid}/confirm", "resident4").status_code == 201
    assert community.get("/me", "resident3").json()["helps"] == helps + 1
    record = community.node.store.state().get("community.help", hid)
    assert record["status"] == "done" and "本棚" not in str(record)  # the note is off the chain


@pytest.mark.parametrize(
    ("viewer", "skill", "expected"),
    [
        # resident3 lists light bulbs publicly; resident1 for Hachioji only
        ("resident2", "light-bulbs", {"resident3"}),
        ("resident4", "light-bulbs", {"resident3", "resident1"}),
        # resident3's furniture skill shows only to people resident3 has helped (resident1)
        ("resident1", "furniture", {"resident3"}),
        ("resident2", "furniture", set()),
        # private: nobody else
        ("resident1", "tv-wiring", set()),
    ],
)
def test_search_respects_visibility(community: Community, viewer, skill, expected):
    response = community.get(f"/search?skill={skill}", viewer)
    assert response.status_code == 200, response.text
    found = {n["handle"] for n in response.json()["neighbours"]}
    assert found == {community.store.handle(community.vid(u)) for u in expected}


def test_dashboard_sums_attested_hours(community: Community):
    board = community.get("/dashboard").json()
    assert board["total_minutes"] >= sum(board["by_place"].values()) > 0
    shown = set(board["by_place"]) | set(board["small_places"])
    assert {"hachioji", "tachikawa", "machida", "oshima"} <= shown
    assert board["offered"] and board["requested"] and board["helps_done"] >= 4
    months = [m["month"] for m in board["months"]]
    assert months == sorted(months) and len(months) >= 5
