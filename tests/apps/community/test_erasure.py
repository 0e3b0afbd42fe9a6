"""Export and erasure (crypto-shredding): after a resident erases their data, their key and
private rows are gone, their records show as erased, and the real ``verify_chain`` still
passes over the whole chain."""

from __future__ import annotations

import sqlite3

from tsunagu.node.verify import verify_chain
from tsunagu.platform import discover_apps, platform_contracts

from .conftest import Community, assert_problem


def _private_bytes(community: Community, vid: str) -> dict[str, bytes]:
    """The raw bytes SQLite stores for the resident's key row and boxes."""
    db = sqlite3.connect(community.data / "community.db")
    try:
        key_box, salt = db.execute(
            "SELECT key_box, salt FROM community_keys WHERE vid = ?", (vid,)
        ).fetchone()
        boxes = db.execute("SELECT ref, box FROM community_boxes WHERE vid = ?", (vid,)).fetchall()
    finally:
        db.close()
    found = {"key box": bytes(key_box), "salt": salt.encode()}
    found.update({f"box {ref}": bytes(box) for ref, box in boxes})
    assert len(found) > 2
    return found


def test_export_then_erase_keeps_the_chain_verifying(community: Community):
    user = "resident7"
    vid = community.vid(user)
    exported = community.http.get("/api/v1/community/me/export", headers=community.headers(user))
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    data = exported.json()
    assert data["volunteer_id"] == vid and data["private"]["salt"]
    assert data["private"]["profile"]["me"]["nickname"] == "ゆみ"
    assert data["ledger"]["sessions"] and data["ledger"]["skills"]
    found = community.get("/search?skill=shopping", "resident2").json()["neighbours"]
    assert community.store.handle(vid) in {n["handle"] for n in found}

    secrets = _private_bytes(community, vid)

    response = community.post("/me/erase", user)
    assert response.status_code == 200, response.text

    # No copy of the key box, the salt or a box is left in the database or its WAL file.
    for name in ("community.db", "community.db-wal"):
        path = community.data / name
        raw = path.read_bytes() if path.exists() else b""
        for label, secret in secrets.items():
            assert secret not in raw, f"{label} still in {name}"

    # The key and every private row are gone from community.db.
    with sqlite3.connect(community.data / "community.db") as db:
        assert (
            db.execute("SELECT COUNT(*) FROM community_keys WHERE vid = ?", (vid,)).fetchone()[0]
            == 0
        )
        assert (
            db.execute("SELECT COUNT(*) FROM community_boxes WHERE vid = ?", (vid,)).fetchone()[0]
            == 0
        )
    assert community.store.profile(vid) == {}
    me = community.get("/me", user).json()
    assert me["erased"] is True and me["skills"] == [] and me["credentials"] == []
    # Their sessions remain in the community's sums, shown as erased to the organiser.
    assert me["timeline"]
    found = community.get("/search?skill=shopping", "resident2").json()["neighbours"]
    assert community.store.handle(vid) not in {n["handle"] for n in found}
    assert_problem(community.post("/me/erase", user), 409, "erased")
    assert (
        community.put("/skills/english", user, {"visibility": "public"}).json()["code"] == "erased"
    )

    apps = [a for a in discover_apps() if a.name == "community"]
    report = verify_chain(community.data, platform_contracts(apps), workers=0)
    assert report.ok, report.problem
