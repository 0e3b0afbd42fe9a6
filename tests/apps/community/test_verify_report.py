"""The credential verifier's answer: an unreadable credential says ``malformed`` and fails only
the signature check (the other three are marked as not run, never as failed: it does not claim
to be revoked); the inclusion proof line counts records from 1, in both languages."""

from __future__ import annotations

import json
import re

from .conftest import Community
from .test_pages import client, csrf

CHECKS = ["signature", "issuer", "ledger", "revocation"]


def _verify(community: Community, credential: object) -> dict:
    response = community.http.post("/api/v1/verify/credential", json=credential)
    assert response.status_code == 200, response.text
    return response.json()


def _good(community: Community) -> dict:
    listed = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers("resident1")
    ).json()["credentials"]
    return next(c for c in listed if not c["revoked"] and c["kind"] == "participation")


def test_a_malformed_credential_is_not_called_revoked(community: Community):
    good = _good(community)["credential"]
    no_proof = {k: v for k, v in good.items() if k != "proof"}
    for bad in ({"not": "a credential"}, no_proof, {**good, "proof": "z123"}):
        report = _verify(community, bad)
        assert report["malformed"] is True and report["valid"] is False
        assert report["failed"] == ["signature"]
        assert report["not_run"] == ["issuer", "ledger", "revocation"]
        assert [c["check"] for c in report["checks"]] == CHECKS
        ran = {c["check"]: (c["ran"], c["ok"]) for c in report["checks"]}
        assert ran == {
            "signature": (True, False),
            "issuer": (False, False),
            "ledger": (False, False),
            "revocation": (False, False),
        }
        revocation = report["checks"][3]
        assert "revoked" not in revocation["detail_en"]
        assert "取り消" not in revocation["detail_ja"]
    # A readable credential runs every check.
    report = _verify(community, good)
    assert report["not_run"] == [] and all(c["ran"] and c["ok"] for c in report["checks"])


def test_the_verify_page_marks_unrun_checks_and_counts_from_one(community: Community):
    credential = _good(community)["credential"]
    proof = _verify(community, credential)["inclusion_proof"]
    http = client(community)
    token = csrf(http.get("/community/verify").text)
    page = http.post(
        "/community/verify",
        data={"csrf": token, "credential": json.dumps(credential, ensure_ascii=False)},
    ).text
    line = f"{proof['tree_size']}件中の{proof['index'] + 1}番目の記録"
    assert line in page, re.findall(r"\d+件中の\d+番目", page)
    english = client(community, lang="en")
    en_token = csrf(english.get("/community/verify").text)
    page = english.post(
        "/community/verify", data={"csrf": en_token, "credential": json.dumps(credential)}
    ).text
    assert f"leaf {proof['index'] + 1} of {proof['tree_size']}" in page

    page = http.post("/community/verify", data={"csrf": token, "credential": '{"a": 1}'}).text
    assert 'data-check="signature" data-ok="no"' in page
    for name in ("issuer", "ledger", "revocation"):
        assert f'data-check="{name}" data-ok="not-run"' in page
    assert "未実施" in page and "取り消されています" not in page
