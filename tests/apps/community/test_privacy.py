"""Privacy between residents: no page or answer another resident sees carries a key id (the
public log would link it to every session), asking for help goes by an opaque handle, a
stored credential opens only for its owner or a share link, the contact is shown only to the
other party of an accepted help request, and the dashboard counts only shown skills and
withholds small municipalities. Also: the certificate's dates are Japanese dates."""

from __future__ import annotations

import copy
import hashlib
import re

import pypdfium2 as pdfium

from tsunagu.apps.community import privacy
from tsunagu.apps.community.certificate import certificate_pdf

from .conftest import C, Community, assert_problem
from .test_pages import client, csrf

RESIDENTS = [f"resident{i}" for i in range(1, 8)]
NI = "not_invited"


def _no_key_ids(community: Community, text: str, viewer: str) -> None:
    for user in RESIDENTS:
        if user == viewer:
            continue
        vid = community.vid(user)
        assert vid[:12] not in text, f"{user}'s key id shown to {viewer}"


def test_search_answers_and_pages_carry_no_key_ids(community: Community):
    for viewer, skill in [("resident2", "light-bulbs"), ("resident4", "light-bulbs")]:
        answer = community.get(f"/search?skill={skill}", viewer)
        assert answer.status_code == 200 and answer.json()["neighbours"]
        assert all(
            re.fullmatch(r"n-[0-9a-f]{24}", n["handle"]) for n in answer.json()["neighbours"]
        )
        _no_key_ids(community, answer.text, viewer)
        page = client(community, viewer).get(f"/community/search?skill={skill}")
        assert page.status_code == 200 and "helper=n-" in page.text
        _no_key_ids(community, page.text, viewer)
    for viewer in ("resident1", "resident4"):
        _no_key_ids(community, client(community, viewer).get("/community/help").text, viewer)
        _no_key_ids(community, community.get("/me", viewer).text, viewer)


def _handle_of(community: Community, viewer: str, skill: str, nickname: str) -> str:
    page = client(community, viewer).get(f"/community/search?skill={skill}").text
    item = next(li for li in page.split("<li>") if nickname in li)
    match = re.search(r"helper=(n-[0-9a-f]{24})", item)
    assert match, item
    return match.group(1)


def _help_ids(community: Community) -> set[str]:
    return {k for k, _ in community.node.store.state().scan("community.help")}


def test_asking_for_help_by_handle_then_each_side_sees_the_others_contact(community: Community):
    r2, r3 = community.vid("resident2"), community.vid("resident3")
    assert (
        community.put(
            "/me/profile", "resident2", {"nickname": "まつもと", "contact": "090-1111-2222"}
        ).status_code
        == 200
    )
    assert (
        community.put(
            "/me/profile", "resident3", {"nickname": "けん", "contact": "ken@example.jp"}
        ).status_code
        == 200
    )

    # resident2 finds けん (public light bulbs) and asks through the page, by handle.
    handle = _handle_of(community, "resident2", "light-bulbs", "けん")
    assert handle == community.store.handle(r3)
    asker = client(community, "resident2")
    form = asker.get(f"/community/help?skill=light-bulbs&helper={handle}").text
    assert f'name="helper" value="{handle}"' in form
    before = _help_ids(community)
    sent = asker.post(
        "/community/help",
        data={"csrf": csrf(form), "skill": "light-bulbs", "helper": handle, "note": "玄関の電球"},
    )
    assert sent.status_code == 303 and "asked=1" in sent.headers["location"], sent.text
    (hid,) = _help_ids(community) - before
    record = community.node.store.state().get("community.help", hid)
    # Whom it asks stays off the chain: asking does not hand the asker けん's key id.
    assert record["requester"] == r2 and record["helper"] is None and record["status"] == "open"
    assert r3 not in str(record)

    # けん sees the request addressed to them, with the note; neither sees a contact yet. The
    # list names it by an opaque reference, not its id (the prefix of the requester's
    # transaction id) and not its exact time.
    ref = community.store.handle(f"help/{hid}")
    helper = client(community, "resident3")
    page = helper.get("/community/help").text
    assert hid not in page and record["requested_at"] not in page
    item = page[page.index(f"/community/help/{ref}/accept") - 600 :]
    assert "玄関の電球" in page and "あなたへの依頼" in item[:800]
    assert "090-1111-2222" not in page
    assert "ken@example.jp" not in asker.get("/community/help").text
    # A Hachioji resident who was not asked does not get it (tachikawa is not their town).
    assert ref not in client(community, "resident4").get("/community/help").text

    accepted = helper.post(f"/community/help/{ref}/accept", data={"csrf": csrf(page)})
    assert accepted.status_code == 303, accepted.text
    assert community.node.store.state().get("community.help", hid)["helper"] == r3

    # Once accepted: each sees the other's nickname and contact, on the page and in the API.
    assert "090-1111-2222" in helper.get("/community/help").text
    mine = asker.get("/community/help").text
    assert "ken@example.jp" in mine and "けん" in mine
    opened = {h["id"]: h for h in community.get("/me", "resident2").json()["helps_open"]}
    assert opened[hid]["other_contact"] == "ken@example.jp"
    assert opened[hid]["other"] == handle and "helper" not in opened[hid]
    # Nobody else does (resident1, whom けん helped before, sees けん's contact on that one).
    for other in ("resident5", "resident6"):
        text = client(community, other).get("/community/help").text
        assert "ken@example.jp" not in text and "090-1111-2222" not in text

    # The two confirm; the help counts.
    for http in (asker, helper):
        page = http.get("/community/help").text
        done = http.post(f"/community/help/{hid}/confirm", data={"csrf": csrf(page)})
        assert done.status_code == 303, done.text
    assert community.node.store.state().get("community.help", hid)["status"] == "done"


def test_the_api_takes_the_handle_and_refuses_an_unknown_one(community: Community):
    r2 = community.vid("resident2")
    handle = community.store.handle(r2)
    response = community.post("/help", "resident4", {"skill": "english", "helper": handle})
    assert response.status_code == 201, response.text
    hid = response.json()["help_id"]
    record = community.node.store.state().get("community.help", hid)
    assert record["helper"] is None and r2 not in str(record)
    # On the chain only the commitment SHA-256(salt ‖ key id); the asking node keeps the salt.
    invited, salt = privacy.invitee(community.store, hid)
    assert invited == r2 and salt and salt not in str(record)
    assert record["invite"] == hashlib.sha256(bytes.fromhex(salt + r2)).hexdigest()
    export = community.get("/me/export", "resident4").text  # names the invitee by handle only
    assert handle in export and r2 not in export and salt not in export
    page = client(community, "resident2").get("/community/help").text
    ref = community.store.handle(f"help/{hid}")
    assert f"/community/help/{ref}/accept" in page and hid not in page  # invited, other town

    # Nobody else can accept it: not through the API (403, in both languages), not with the
    # salt itself (it opens the commitment for resident2's key id only), not straight to the
    # node past the API, and not through the page, which does not offer it to them.
    before = community.snapshot()
    ja = assert_problem(community.post(f"/help/{hid}/accept", "resident3", lang="ja"), 403, NI)
    assert "依頼された方だけ" in ja["detail"]
    en = assert_problem(community.post(f"/help/{hid}/accept", "resident3", {"salt": salt}), 403, NI)
    assert "only they can accept" in en["detail"]
    for payload in ({"help": hid, "salt": salt}, {"help": hid}):
        receipt = community.direct("resident3", "help.accept", payload)
        assert (receipt.status, receipt.code) == ("rejected", NI)
    http = client(community, "resident3")  # resident4's town: an open request would show
    page = http.get("/community/help").text
    assert ref not in page
    refused = http.post(f"/community/help/{hid}/accept", data={"csrf": csrf(page)})
    assert refused.status_code == 403 and "依頼された方だけ" in refused.text
    assert community.snapshot()[1] == before[1]

    assert community.post(f"/help/{hid}/accept", "resident2").status_code == 201
    record = community.node.store.state().get("community.help", hid)
    assert record["helper"] == community.vid("resident2") and record["status"] == "accepted"
    # A request that invites nobody is still open to any resident, as before.
    response = community.post("/help", "resident4", {"skill": "gardening"})
    assert response.status_code == 201, response.text
    anyone = response.json()["help_id"]
    assert "invite" not in community.node.store.state().get("community.help", anyone)
    assert community.post(f"/help/{anyone}/accept", "resident3").status_code == 201
    record = community.node.store.state().get("community.help", anyone)
    assert (record["helper"], record["status"]) == (community.vid("resident3"), "accepted")
    # Asking yourself by your own handle is refused like on the chain.
    own = community.store.handle(community.vid("resident4"))
    response = community.post("/help", "resident4", {"skill": "vietnamese", "helper": own})
    assert response.status_code == 422 and response.json()["code"] == "self_help"

    height = community.node.head.height
    unknown = community.post("/help", "resident4", {"skill": "english", "helper": "n-" + "0" * 24})
    assert unknown.status_code == 404 and unknown.json()["detail_ja"]
    http = client(community, "resident4")
    page = http.get("/community/help").text
    refused = http.post(
        "/community/help",
        data={"csrf": csrf(page), "skill": "english", "helper": "n-" + "1" * 24},
    )
    assert refused.status_code == 422
    assert community.node.head.height == height


def _credential(community: Community) -> tuple[str, str]:
    listed = community.http.get(
        "/api/v1/volunteer/credentials", headers=community.headers("resident1")
    ).json()["credentials"]
    item = next(c for c in listed if c["kind"] == "participation" and not c["revoked"])
    token = community.store.share_token(item["hash"])
    assert item["share_url"].endswith(f"/community/credentials/{item['hash']}?k={token}")
    return item["hash"], token


def test_a_credential_opens_only_for_its_owner_or_with_the_share_link(community: Community):
    digest, token = _credential(community)
    wrong = ("0" if token[0] != "0" else "1") + token[1:]
    http = community.http
    paths = [
        f"{C}/credentials/{digest}",
        f"/community/credentials/{digest}",
        f"/community/credentials/{digest}/certificate.pdf",
    ]
    for path in paths:
        assert http.get(path).status_code == 404, path
        assert http.get(f"{path}?k={wrong}").status_code == 404, path
        assert http.get(f"{path}?k=").status_code == 404, path
        assert http.get(f"{path}?k={token}").status_code == 200, path
        assert http.get(path, headers=community.headers("resident1")).status_code == 200, path
        assert http.get(path, headers=community.headers("resident2")).status_code == 404, path
    # The organisers of the issuing group (they signed it) may read it; others may not.
    org = community.node.store.state().get("community.credential", digest)["org"]
    issuers = {"tama-volunteer-net": "organiser1", "tachikawa-shakyo": "organiser2"}
    issuer = issuers[org]
    stranger = "organiser2" if issuer == "organiser1" else "organiser1"
    for user, status in [(issuer, 200), (stranger, 404)]:
        got = http.get(f"{C}/credentials/{digest}", headers=community.headers(user))
        assert got.status_code == status, (user, got.text)
    # A stored hash without the token answers exactly like an unknown one.
    unknown = http.get(f"{C}/credentials/{'ab' * 32}")
    known = http.get(f"{C}/credentials/{digest}")
    assert unknown.status_code == known.status_code == 404
    assert {**unknown.json(), "instance": ""} == {**known.json(), "instance": ""}

    # The owner sees the share link; the QR of the PDF carries the same link.
    page = client(community, "resident1").get(f"/community/credentials/{digest}").text
    assert f"/community/credentials/{digest}?k={token}" in page
    # Whoever holds the credential can still verify it, without a login.
    body = http.get(f"{C}/credentials/{digest}?k={token}").json()
    report = http.post("/api/v1/verify/credential", json=body).json()
    assert report["valid"] is True and report["failed"] == [], report


def _pdf_text(pdf: bytes) -> str:
    return pdfium.PdfDocument(pdf)[0].get_textpage().get_text_range()


def test_certificate_dates_are_japanese_dates(community: Community):
    digest, _ = _credential(community)
    credential = copy.deepcopy(
        community.http.get(
            f"{C}/credentials/{digest}", headers=community.headers("resident1")
        ).json()
    )
    credential["validFrom"] = "2026-11-29T23:30:00Z"  # 08:30 on 30 November in Tokyo
    credential["credentialSubject"]["activityStartDate"] = "2026-03-31T15:00:00Z"
    text = _pdf_text(certificate_pdf(credential, "https://node.example/c"))
    assert "発行日 Issued: 2026年11月30日" in text
    assert "活動日 Activity date: 2026年4月1日" in text
    assert "11月29日" not in text and "3月31日" not in text


def test_the_dashboard_counts_shown_skills_and_withholds_small_places(community: Community):
    board = community.get("/dashboard").json()
    state = community.node.store.state()
    rows = [v for _, v in state.scan("community.skill")]
    shown: dict[str, int] = {}
    for row in rows:
        if row["visibility"] in ("public", "municipality"):
            shown[row["skill"]] = shown.get(row["skill"], 0) + 1
    assert dict(board["offered"]) == {k: v for k, v in shown.items() if k in dict(board["offered"])}
    assert "tv-wiring" not in dict(board["offered"])  # only resident4's, private
    assert any(r["skill"] == "tv-wiring" for r in rows)

    people: dict[str, set[str]] = {}
    for _, s in state.scan("community.session"):
        if s["attested"]:
            people.setdefault(s["municipality"], set()).add(s["volunteer"])
    small = sorted(m for m, v in people.items() if len(v) < board["small_cell"])
    assert small and board["small_places"] == small
    for mid in small:
        assert mid not in board["by_place"] and mid not in board["volunteers_by_place"]
    assert all(n >= 3 for n in board["volunteers_by_place"].values())

    html = client(community, lang="en").get("/community/dashboard").text
    assert "&lt;3" in html and 'id="small-cell-note"' in html
