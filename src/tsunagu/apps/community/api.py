"""Community API (``/api/v1/community``), plus ``/api/v1/volunteer/credentials`` and
``/api/v1/verify/credential``.

Routes check who the user is, prepare the transaction (and, for an attestation, the signed
credential whose hash it anchors) and let the contract decide.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.apps.community import catalog, issuing, views
from tsunagu.apps.community.contract import ORGANISER_ROLES, RESIDENT_ROLES
from tsunagu.apps.community.credentials import credential_hash
from tsunagu.apps.community.privacy import (
    ask_help,
    erase_resident,
    export_of,
    help_payload,
    readable_credential,
    share_url,
)
from tsunagu.apps.community.web import http_error, precheck, store, submit
from tsunagu.errors import Forbidden, InvalidInput, NotFound, Rejected
from tsunagu.identity.private import User
from tsunagu.web.deps import current_user, optional_user, require_roles, services

PREFIX = "/api/v1/community"
Time = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Vid = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# A neighbour as the search names them (opaque handle); a client that already knows the key
# id may still give it.
Helper = Annotated[str, Field(pattern=r"^(n-[0-9a-f]{24}|[0-9a-f]{64})$")]
Reason = Annotated[str, Field(min_length=1, max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ActivityBody(_In):
    category: Slug
    title: Annotated[str, Field(min_length=1, max_length=80)]
    municipality: Slug
    place: Annotated[str, Field(min_length=1, max_length=80)]
    starts_at: Time
    ends_at: Time
    capacity: Annotated[int, Field(ge=1, le=1000)]


class TokenBody(_In):
    token: Annotated[str, Field(max_length=64)]


class CorrectBody(_In):
    check_in: Time
    check_out: Time
    reason: Reason


class ReasonBody(_In):
    reason: Reason


class SkillBody(_In):
    visibility: Literal["public", "municipality", "helped", "private"]


class HelpBody(_In):
    skill: Slug
    helper: Helper | None = Field(None, description="the handle the search gave")
    note: Annotated[str, Field(max_length=400)] | None = Field(
        None, description="kept off the chain, encrypted for the requester"
    )


class HelpActionBody(_In):
    salt: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        None, description="opens an invitation's commitment (the node adds it for its invitee)"
    )


class ProfileBody(_In):
    nickname: Annotated[str, Field(min_length=1, max_length=40)]
    contact: Annotated[str, Field(max_length=120)] | None = None


organiser = require_roles(*ORGANISER_ROLES)
resident_role = require_roles(*RESIDENT_ROLES)


def _receipt(r: Any) -> dict[str, Any]:
    return {"tx_id": r.tx_id, "height": r.height, "index": r.index, "status": r.status}


def activity_or_404(st: views.State, aid: str) -> dict[str, Any]:
    activity = st.get("activity", aid)
    if activity is None:
        raise NotFound(f"No activity {aid}.", f"活動 {aid} はありません。")
    return activity


def qr_url(request: Request, aid: str) -> tuple[str, str]:
    token = store(request).qr_token(aid)
    base = services(request).base_url(str(request.base_url))
    return token, f"{base}/community/checkin/{aid}?t={token}"


async def check(request: Request, user: User, aid: str, token: str, action: str) -> dict:
    """A volunteer's check-in or check-out with the code scanned from the organiser's page."""
    if not store(request).qr_valid(aid, token):
        raise Forbidden(
            "The check-in code has expired. Scan the code on the organiser's screen again.",
            "チェックイン用のコードの有効期限が切れました。主催者の画面のコードをもう一度読み取ってください。",
            code="bad_token",
        )
    payload = {"activity": aid, "at": issuing.now_time()}
    (receipt,) = await submit(request, user, [(f"session.{action}", payload)])
    return _receipt(receipt)


async def attest(request: Request, user: User, aid: str, vid: str) -> dict[str, Any]:
    """Attest a session and issue its credential (and any milestone it reaches) at once."""
    svc = services(request)
    st = views.State(svc.node)
    activity = activity_or_404(st, aid)
    session = st.get("session", f"{aid}/{vid}")
    if session is None or session["check_out"] is None or session["attested"]:
        # The contract says exactly why; let it answer before anything is signed.
        try:
            precheck(request, user, "session.attest", {"activity": aid, "volunteer": vid})
        except Rejected as exc:
            raise http_error(exc) from None
    assert session is not None
    key = svc.private.signing_key(user)
    cs = store(request)
    credential = issuing.participation(svc.node, cs, key, user.org, activity, session)
    digest = credential_hash(credential)
    items = [
        (
            "session.attest",
            {"activity": aid, "volunteer": vid, "credential": {"hash": digest}},
        )
    ]
    record = st.volunteer(vid)
    total = record["minutes"] + session["minutes"]
    issued = {int(k.split("/")[1]) for k in _milestone_keys(st, vid)}
    extra: dict[str, dict[str, Any]] = {}
    for minutes in issuing.milestones_due({"minutes": total}, issued):
        badge = issuing.milestone(svc.node, cs, key, user.org, vid, minutes)
        extra[credential_hash(badge)] = badge
        payload = {"hash": credential_hash(badge), "recipient": vid, "minutes": minutes}
        items.append(("credential.milestone", payload))
    receipts = await submit(request, user, items)
    cs.put(vid, "credential", digest, credential)
    for h, badge in extra.items():
        cs.put(vid, "credential", h, badge)
    return {**_receipt(receipts[0]), "credential_hash": digest, "milestones": list(extra)}


def _milestone_keys(st: views.State, vid: str) -> list[str]:
    return [k for k, _ in st.state.scan("community.milestone", f"{vid}/")]


def router() -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["community"])

    @r.get("/catalog")
    def catalog_terms() -> dict[str, Any]:
        """Activity categories, skills, visibilities and milestones."""
        return {
            "categories": [vars_of(t) for t in catalog.CATEGORIES.values()],
            "skills": [vars_of(t) for t in catalog.SKILLS.values()],
            "visibilities": list(catalog.VISIBILITIES),
            "milestones_minutes": list(catalog.MILESTONES),
        }

    @r.get("/activities")
    def list_activities(request: Request) -> dict[str, Any]:
        return {"activities": views.activities(views.State(services(request).node))}

    @r.post("/activities", status_code=201)
    async def publish(
        request: Request, body: ActivityBody, user: Annotated[User, Depends(organiser)]
    ) -> dict[str, Any]:
        (receipt,) = await submit(request, user, [("activity.publish", body.model_dump())])
        return {**_receipt(receipt), "activity_id": f"a-{receipt.tx_id[:16]}"}

    @r.get("/activities/{aid}")
    def activity(request: Request, aid: str) -> dict[str, Any]:
        st = views.State(services(request).node)
        found = activity_or_404(st, aid)
        user = optional_user(request)
        body: dict[str, Any] = {"activity": found}
        if user is not None and user.has_role(*ORGANISER_ROLES) and user.org == found["org"]:
            body["sessions"] = views.sessions_of_activity(st, aid)
        return body

    @r.post("/activities/{aid}/signup", status_code=201)
    async def signup(
        request: Request, aid: str, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        (receipt,) = await submit(request, user, [("activity.signup", {"activity": aid})])
        return _receipt(receipt)

    @r.get("/activities/{aid}/qr-token")
    def qr_token(
        request: Request, aid: str, user: Annotated[User, Depends(organiser)]
    ) -> dict[str, Any]:
        """The current rotating check-in code (valid about two minutes) and its URL."""
        found = activity_or_404(views.State(services(request).node), aid)
        if user.org != found["org"] and "admin" not in user.roles:
            raise Forbidden()
        token, url = qr_url(request, aid)
        return {"token": token, "url": url}

    @r.post("/activities/{aid}/checkin", status_code=201)
    async def checkin(
        request: Request, aid: str, body: TokenBody, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        return await check(request, user, aid, body.token, "checkin")

    @r.post("/activities/{aid}/checkout", status_code=201)
    async def checkout(
        request: Request, aid: str, body: TokenBody, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        return await check(request, user, aid, body.token, "checkout")

    @r.post("/activities/{aid}/sessions/{vid}/attest", status_code=201)
    async def attest_route(
        request: Request, aid: str, vid: str, user: Annotated[User, Depends(organiser)]
    ) -> dict[str, Any]:
        return await attest(request, user, aid, vid)

    @r.post("/activities/{aid}/sessions/{vid}/correct", status_code=201)
    async def correct(
        request: Request,
        aid: str,
        vid: str,
        body: CorrectBody,
        user: Annotated[User, Depends(organiser)],
    ) -> dict[str, Any]:
        payload = {"activity": aid, "volunteer": vid, **body.model_dump()}
        (receipt,) = await submit(request, user, [("session.correct", payload)])
        return _receipt(receipt)

    @r.post("/credentials/{digest}/revoke", status_code=201)
    async def revoke(
        request: Request, digest: str, body: ReasonBody, user: Annotated[User, Depends(organiser)]
    ) -> dict[str, Any]:
        payload = {"hash": digest, "reason": body.reason}
        (receipt,) = await submit(request, user, [("credential.revoke", payload)])
        return _receipt(receipt)

    @r.get("/credentials/{digest}")
    def credential(request: Request, digest: str, k: str = "") -> JSONResponse:
        """A credential kept on this node, by its hash: for its owner, the organisers of the
        group that issued it, or anyone with the share link's secret ``k``."""
        body = readable_credential(request, digest, k)
        if body is None:
            raise NotFound("No such credential here.", "この証明書は見つかりません。")
        return JSONResponse(
            body,
            headers={
                "Content-Disposition": f'attachment; filename="credential-{digest[:12]}.json"'
            },
        )

    @r.put("/skills/{skill}", status_code=201)
    async def set_skill(
        request: Request, skill: str, body: SkillBody, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        payload = {"skill": skill, "visibility": body.visibility}
        (receipt,) = await submit(request, user, [("skill.set", payload)])
        return _receipt(receipt)

    @r.delete("/skills/{skill}")
    async def remove_skill(
        request: Request, skill: str, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        (receipt,) = await submit(request, user, [("skill.remove", {"skill": skill})])
        return _receipt(receipt)

    @r.get("/search")
    def search(
        request: Request, skill: str, user: Annotated[User, Depends(current_user)]
    ) -> dict[str, Any]:
        """Who nearby can help with ``skill``: only skills whose visibility lets you see them."""
        if catalog.skill(skill) is None:
            raise InvalidInput(f"No skill {skill}.", f"技能 {skill} はありません。")
        st = views.State(services(request).node)
        found = views.search(st, store(request), skill, user.key_id, st.home(user.org))
        return {"skill": skill, "neighbours": found}

    @r.post("/help", status_code=201)
    async def ask(
        request: Request, body: HelpBody, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        if body.helper and body.helper.startswith("n-"):
            st = views.State(services(request).node)
            helper = views.helper_by_handle(st, store(request), body.helper)
            if helper is None:
                raise NotFound("No such neighbour.", "その方は見つかりません。")
            return await ask_help(request, user, body.skill, body.note, invite=helper)
        return await ask_help(request, user, body.skill, body.note, named=body.helper)

    @r.post("/help/{hid}/{action}", status_code=201)
    async def help_action(
        request: Request,
        hid: str,
        action: Literal["accept", "confirm"],
        user: Annotated[User, Depends(resident_role)],
        body: HelpActionBody | None = None,
    ) -> dict[str, Any]:
        """Accepting a request that invited someone needs its salt: this node adds it for the
        neighbour its resident invited; anyone else is refused (403 ``not_invited``)."""
        payload = help_payload(request, user, hid, action, body.salt if body else None)
        (receipt,) = await submit(request, user, [(f"help.{action}", payload)])
        return _receipt(receipt)

    @r.get("/dashboard")
    def dashboard(request: Request) -> dict[str, Any]:
        return views.dashboard(views.State(services(request).node))

    @r.get("/me")
    def me(request: Request, user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
        st = views.State(services(request).node)
        return views.resident(st, store(request), user.key_id)

    @r.put("/me/profile")
    def profile(
        request: Request, body: ProfileBody, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        store(request).put(user.key_id, "profile", "me", body.model_dump(exclude_none=True))
        return {"ok": True}

    @r.get("/me/export")
    def export(request: Request, user: Annotated[User, Depends(current_user)]) -> Response:
        return JSONResponse(
            export_of(request, user),
            headers={"Content-Disposition": 'attachment; filename="community-export.json"'},
        )

    @r.post("/me/erase")
    async def erase(
        request: Request, user: Annotated[User, Depends(resident_role)]
    ) -> dict[str, Any]:
        return await erase_resident(request, user)

    return r


def vars_of(term: catalog.Term) -> dict[str, str]:
    return {"id": term.id, "name_ja": term.name_ja, "name_en": term.name_en}


def volunteer_router() -> APIRouter:
    """The two routes the issue names outside the app's prefix."""
    r = APIRouter(prefix="/api/v1", tags=["community"])

    @r.get("/volunteer/credentials")
    def my_credentials(
        request: Request, user: Annotated[User, Depends(current_user)]
    ) -> dict[str, Any]:
        """The logged-in resident's credentials, each in full with its ledger status."""
        st = views.State(services(request).node)
        items = []
        for digest, body in store(request).all(user.key_id, "credential").items():
            anchored = st.get("credential", digest) or {}
            items.append(
                {
                    "hash": digest,
                    "kind": anchored.get("kind"),
                    "revoked": anchored.get("revoked", False),
                    "tx_id": anchored.get("tx_id"),
                    "share_url": share_url(request, digest),
                    "credential": body,
                }
            )
        return {"credentials": items}

    @r.post("/verify/credential")
    def verify_credential(
        request: Request, credential: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Check a credential: signature, issuer, ledger inclusion, revocation."""
        return issuing.verify(services(request).node, credential)

    return r
