"""The demo's credentials agree with what the pages show: every milestone a resident's page
lists as reached has its credential (and no other), and resident1's corrected session had its
first credential revoked and was attested again with a new one stating the corrected hours."""

from __future__ import annotations

from tsunagu.apps.community import catalog
from tsunagu.apps.community.demo import NICKNAMES

from .conftest import Community


def _milestone_minutes(community: Community, user: str) -> list[int]:
    """The milestones of the resident's credentials (the copies the node keeps for them)."""
    listed = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers(user)
    ).json()["credentials"]
    found = []
    for item in listed:
        if item["kind"] != "milestone":
            continue
        achievement = item["credential"]["credentialSubject"]["achievement"]["id"]
        assert achievement.startswith("urn:tsunagu:community:milestone:")
        assert not item["revoked"]
        found.append(int(achievement.rsplit(":", 1)[1]))
    return sorted(found)


def test_every_milestone_shown_has_its_credential(community: Community):
    for user in NICKNAMES:
        me = community.get("/me", user).json()
        if me["erased"]:
            continue  # an erased resident's credentials are gone with their key
        shown = me["milestones"]
        assert shown == [m for m in catalog.MILESTONES if me["minutes"] >= m]
        assert _milestone_minutes(community, user) == shown, user
    # resident1 has months of attested hours: every milestone, 100 hours included.
    me = community.get("/me", "resident1").json()
    assert me["minutes"] >= catalog.MILESTONES[-1]
    assert _milestone_minutes(community, "resident1") == list(catalog.MILESTONES)


def test_the_demo_correction_revoked_the_old_credential_and_reissued(community: Community):
    state = community.node.store.state()
    r1 = community.vid("resident1")
    sessions = [
        state.get("community.session", f"{ref['activity']}/{r1}")
        for _, ref in state.scan("community.vsession", f"{r1}/")
    ]
    corrected = [s for s in sessions if s and any(e["action"] == "correct" for e in s["history"])]
    assert len(corrected) >= 1
    session = next(s for s in corrected if s["history"][2]["action"] == "attest")
    actions = [e["action"] for e in session["history"]]
    assert actions[:5] == ["checkin", "checkout", "attest", "correct", "attest"]
    old, new = session["history"][2]["credential"], session["credential"]
    assert session["history"][3]["revoked"] == old and session["attested"] and old != new
    listed = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers("resident1")
    ).json()["credentials"]
    by_hash = {c["hash"]: c for c in listed}
    old_report = community.http.post(
        "/api/v1/verify/credential", json=by_hash[old]["credential"]
    ).json()
    assert old_report["failed"] == ["revocation"]
    new_credential = by_hash[new]["credential"]
    assert community.http.post("/api/v1/verify/credential", json=new_credential).json()["valid"]
    hours, minutes = divmod(session["minutes"], 60)
    description = new_credential["credentialSubject"]["achievement"]["description"]
    assert f"{hours}時間{minutes}分" in description
    subject = new_credential["credentialSubject"]
    assert subject["achievement"]["id"].endswith(session["activity"])
    assert subject["activityEndDate"] == session["check_out"]
