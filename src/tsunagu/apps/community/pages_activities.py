"""Activity pages: the hub, publishing, an activity with its rotating check-in QR code and
the organiser's attendance list (attest, correct), and the volunteer's check-in page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tsunagu.apps.community import api, issuing, views
from tsunagu.apps.community.contract import ORGANISER_ROLES, RESIDENT_ROLES, format_time
from tsunagu.apps.community.pages import (
    common,
    form_user,
    invalid,
    outcome,
    page_user,
    parse,
    state,
)
from tsunagu.apps.community.service import QR_SECONDS
from tsunagu.apps.community.web import submit
from tsunagu.places import members
from tsunagu.web.deps import language, optional_user, render, services
from tsunagu.web.filters import TOKYO


def local_to_chain(value: str) -> str | None:
    """A ``datetime-local`` field (Japan time) as a chain time, or None."""
    try:
        moment = datetime.fromisoformat(value.strip()).replace(tzinfo=TOKYO)
    except ValueError:
        return None
    return format_time(moment)


def qr_svg(url: str) -> str:
    return segno.make(url, error="m", micro=False).svg_inline(scale=6, title=None)


def _activity_page(request: Request, aid: str) -> Response:
    st = state(request)
    activity = st.get("activity", aid)
    if activity is None:
        return render(request, "community/message.html", status_code=404, kind="not_found")
    user = optional_user(request)
    lang = language(request)
    runs = user is not None and user.has_role(*ORGANISER_ROLES) and user.org == activity["org"]
    ctx: dict[str, Any] = {
        "a": activity,
        "runs": runs,
        "org_name": st.org_name(activity["org"], lang),
    }
    if runs:
        sessions = views.sessions_of_activity(st, aid)
        store = api.store(request)
        for s in sessions:
            s["nickname"] = store.profile(s["volunteer"]).get("nickname")
            s["erased"] = st.volunteer(s["volunteer"])["erased"]
        ctx["sessions"] = sessions
        ctx["qr"] = _qr_context(request, aid)
    if user is not None:
        key = f"{aid}/{user.key_id}"
        ctx["signed_up"] = st.get("signup", key) is not None
        ctx["my_session"] = st.get("session", key)
        if not runs and user.has_role(*RESIDENT_ROLES):
            # The other way round: the organiser scans the volunteer's own code.
            base = services(request).base_url(str(request.base_url))
            ctx["my_qr"] = qr_svg(f"{base}/community/activities/{aid}/volunteer/{user.key_id}")
    return render(request, "community/activity.html", **ctx, **common(lang))


def _qr_context(request: Request, aid: str) -> dict[str, Any]:
    _, url = api.qr_url(request, aid)
    return {"url": url, "svg": qr_svg(url), "seconds": QR_SECONDS}


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/community")
    def hub(request: Request) -> Response:
        st = state(request)
        lang = language(request)
        user = optional_user(request)
        found = views.activities(st)
        now = format_time(datetime.now(TOKYO) - timedelta(hours=3))
        upcoming = sorted((a for a in found if a["ends_at"] >= now), key=lambda a: a["starts_at"])
        mine = []
        if user is not None and user.has_role(*ORGANISER_ROLES):
            mine = [a for a in found if a["org"] == user.org][:10]
        orgs = {a["org"]: st.org_name(a["org"], lang) for a in found}
        return render(
            request,
            "community/hub.html",
            upcoming=upcoming[:30],
            mine=mine,
            orgs=orgs,
            board=views.dashboard(st),
            **common(lang),
        )

    @r.get("/community/activities/new")
    def new_activity(request: Request) -> Response:
        user = page_user(request, ORGANISER_ROLES)
        if isinstance(user, Response):
            return user
        st = state(request)
        start = (datetime.now(TOKYO) + timedelta(minutes=5)).replace(second=0, microsecond=0)
        return render(
            request,
            "community/activity_new.html",
            places=members(),
            home=st.home(user.org),
            start=start.strftime("%Y-%m-%dT%H:%M"),
            end=(start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            **common(language(request)),
        )

    @r.post("/community/activities")
    async def publish(request: Request) -> Response:
        got = await form_user(request, ORGANISER_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        values = {
            "category": form.get("category", ""),
            "title": str(form.get("title", "")).strip(),
            "municipality": form.get("municipality", ""),
            "place": str(form.get("place", "")).strip(),
            "starts_at": local_to_chain(str(form.get("starts_at", ""))),
            "ends_at": local_to_chain(str(form.get("ends_at", ""))),
            "capacity": int(c) if (c := str(form.get("capacity", ""))).isdigit() else 0,
        }
        body = parse(api.ActivityBody, values)
        if body is None:
            return invalid(request, "/community/activities/new")
        write = submit(request, user, [("activity.publish", body)])
        return await outcome(
            request,
            write,
            lambda receipts: f"/community/activities/a-{receipts[0].tx_id[:16]}",
            "/community/activities/new",
        )

    @r.get("/community/activities/{aid}")
    def activity(request: Request, aid: str) -> Response:
        return _activity_page(request, aid)

    @r.get("/community/activities/{aid}/qr")
    def qr_fragment(request: Request, aid: str) -> Response:
        """The rotating code alone, refreshed by the organiser's page every 30 seconds."""
        user = optional_user(request)
        activity = state(request).get("activity", aid)
        if user is None or activity is None or user.org != activity["org"]:
            return HTMLResponse("", status_code=403)
        return render(request, "community/_qr.html", qr=_qr_context(request, aid), a=activity)

    @r.post("/community/activities/{aid}/signup")
    async def signup(request: Request, aid: str) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        user, _ = got
        here = f"/community/activities/{aid}"
        write = submit(request, user, [("activity.signup", {"activity": aid})])
        return await outcome(request, write, here + "?signed_up=1", here)

    @r.post("/community/activities/{aid}/sessions/{vid}/attest")
    async def attest(request: Request, aid: str, vid: str) -> Response:
        got = await form_user(request, ORGANISER_ROLES)
        if isinstance(got, Response):
            return got
        here = f"/community/activities/{aid}"
        return await outcome(
            request, api.attest(request, got[0], aid, vid), here + "?attested=1", here
        )

    @r.post("/community/activities/{aid}/sessions/{vid}/correct")
    async def correct(request: Request, aid: str, vid: str) -> Response:
        got = await form_user(request, ORGANISER_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        here = f"/community/activities/{aid}"
        values = {
            "check_in": local_to_chain(str(form.get("check_in", ""))),
            "check_out": local_to_chain(str(form.get("check_out", ""))),
            "reason": str(form.get("reason", "")).strip(),
        }
        body = parse(api.CorrectBody, values)
        if body is None:
            return invalid(request, here)
        write = submit(
            request, user, [("session.correct", {"activity": aid, "volunteer": vid, **body})]
        )
        return await outcome(request, write, here + "?corrected=1", here)

    @r.get("/community/checkin/{aid}")
    def checkin_page(request: Request, aid: str, t: str = "") -> Response:
        user = page_user(request)
        if isinstance(user, Response):
            return user
        st = state(request)
        activity = st.get("activity", aid)
        if activity is None:
            return render(request, "community/message.html", status_code=404, kind="not_found")
        session = st.get("session", f"{aid}/{user.key_id}")
        return render(
            request,
            "community/checkin.html",
            a=activity,
            token=t,
            session=session,
            org_name=st.org_name(activity["org"], language(request)),
            done=request.query_params.get("done"),
            **common(language(request)),
        )

    @r.post("/community/checkin/{aid}")
    async def checkin(request: Request, aid: str) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        action = "checkout" if form.get("action") == "checkout" else "checkin"
        token = str(form.get("t", ""))[:64]
        here = f"/community/checkin/{aid}?t={token}"
        write = api.check(request, user, aid, token, action)
        return await outcome(request, write, f"/community/checkin/{aid}?done={action}", here)

    @r.get("/community/activities/{aid}/volunteer/{vid}")
    def volunteer_page(request: Request, aid: str, vid: str) -> Response:
        """What the organiser sees after scanning a volunteer's code: record them in or out."""
        user = page_user(request, ORGANISER_ROLES)
        if isinstance(user, Response):
            return user
        st = state(request)
        activity = st.get("activity", aid)
        if activity is None or not re.fullmatch(r"[0-9a-f]{64}", vid):
            return render(request, "community/message.html", status_code=404, kind="not_found")
        if user.org != activity["org"] and "admin" not in user.roles:
            return render(request, "community/message.html", status_code=403, kind="forbidden")
        return render(
            request,
            "community/record.html",
            a=activity,
            vid=vid,
            nickname=api.store(request).profile(vid).get("nickname"),
            session=st.get("session", f"{aid}/{vid}"),
            **common(language(request)),
        )

    @r.post("/community/activities/{aid}/volunteer/{vid}")
    async def record(request: Request, aid: str, vid: str) -> Response:
        got = await form_user(request, ORGANISER_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        action = "checkout" if form.get("action") == "checkout" else "checkin"
        here = f"/community/activities/{aid}/volunteer/{vid}"
        payload = {"activity": aid, "at": issuing.now_time(), "volunteer": vid}
        write = submit(request, user, [(f"session.{action}", payload)])
        return await outcome(request, write, f"/community/activities/{aid}", here)

    @r.post("/community/credentials/{digest}/revoke")
    async def revoke(request: Request, digest: str) -> Response:
        got = await form_user(request, ORGANISER_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        here = f"/community/credentials/{digest}"
        reason = str(form.get("reason", "")).strip()[:200]
        if not reason:
            return invalid(request, here)
        write = submit(request, user, [("credential.revoke", {"hash": digest, "reason": reason})])
        return await outcome(request, write, here, here)

    return r
