"""Resident pages: my record (timeline, hours, milestones, credentials, skills, export and
erasure), the "who nearby can help with…" search, and help between neighbours."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tsunagu.apps.community import api, catalog, privacy, views
from tsunagu.apps.community.contract import RESIDENT_ROLES
from tsunagu.apps.community.pages import common, form_user, invalid, outcome, page_user, state
from tsunagu.apps.community.web import submit
from tsunagu.web.deps import language, render
from tsunagu.web.filters import tokyo_time


def _open_help(request: Request) -> list[str]:
    return [h["id"] for h in state(request).all("help") if h["status"] == "open"]


def _handle_param(value: str) -> str:
    return value if re.fullmatch(views.HANDLE_PATTERN, value) else ""


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/community/me")
    def me(request: Request) -> Response:
        user = page_user(request)
        if isinstance(user, Response):
            return user
        st = state(request)
        lang = language(request)
        record = views.resident(st, api.store(request), user.key_id)
        orgs = {c["org"]: st.org_name(c["org"], lang) for c in record["credentials"] if c["org"]}
        return render(
            request,
            "community/me.html",
            r=record,
            orgs=orgs,
            profile=api.store(request).profile(user.key_id),
            is_resident=user.has_role(*RESIDENT_ROLES),
            **common(lang),
        )

    @r.post("/community/me/profile")
    async def profile(request: Request) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        nickname = str(form.get("nickname", "")).strip()
        if not 1 <= len(nickname) <= 40:
            return invalid(request, "/community/me")
        contact = str(form.get("contact", "")).strip()[:120]
        value = {"nickname": nickname, **({"contact": contact} if contact else {})}
        api.store(request).put(user.key_id, "profile", "me", value)
        return RedirectResponse("/community/me?saved=1", status_code=303)

    @r.post("/community/me/skills")
    async def set_skill(request: Request) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        payload = {"skill": form.get("skill", ""), "visibility": form.get("visibility", "")}
        if payload["visibility"] not in catalog.VISIBILITIES:
            return invalid(request, "/community/me")
        write = submit(request, user, [("skill.set", payload)])
        return await outcome(request, write, "/community/me?skill=1#skills", "/community/me")

    @r.post("/community/me/skills/{skill}/remove")
    async def remove_skill(request: Request, skill: str) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        write = submit(request, got[0], [("skill.remove", {"skill": skill})])
        return await outcome(request, write, "/community/me#skills", "/community/me")

    @r.get("/community/me/export")
    def export(request: Request) -> Response:
        user = page_user(request)
        if isinstance(user, Response):
            return user
        body = json.dumps(privacy.export_of(request, user), ensure_ascii=False, indent=2)
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="community-export.json"'},
        )

    @r.post("/community/me/erase")
    async def erase(request: Request) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        if form.get("confirm") != "erase":
            return invalid(request, "/community/me")
        write = privacy.erase_resident(request, user)
        return await outcome(request, write, "/community/me?erased=1", "/community/me")

    @r.get("/community/search")
    def search(request: Request, skill: str = "") -> Response:
        user = page_user(request)
        if isinstance(user, Response):
            return user
        st = state(request)
        found = None
        if catalog.skill(skill) is not None:
            found = views.search(st, api.store(request), skill, user.key_id, st.home(user.org))
        return render(
            request,
            "community/search.html",
            skill=skill,
            found=found,
            home=st.home(user.org),
            is_resident=user.has_role(*RESIDENT_ROLES),
            **common(language(request)),
        )

    @r.get("/community/help")
    def help_page(request: Request) -> Response:
        user = page_user(request)
        if isinstance(user, Response):
            return user
        st = state(request)
        me = user.key_id
        home = st.home(user.org)
        everything = sorted(st.all("help"), key=lambda h: h["requested_at"], reverse=True)
        mine = [h for h in everything if me in (h["requester"], h["helper"])]
        store = api.store(request)
        invited = {
            h["id"]
            for h in everything
            if h["status"] == "open"
            and h["helper"] is None
            and privacy.invitee(store, h["id"])[0] == me
        }
        # A request that invites someone (its commitment is on the chain) is shown only to
        # them: nobody else could accept it.
        nearby = [
            h
            for h in everything
            if h["status"] == "open"
            and h["requester"] != me
            and h["helper"] in (None, me)
            and (h.get("invite") is None or h["id"] in invited)
            and (h["municipality"] == home or h["helper"] == me or h["id"] in invited)
        ]
        notes = {
            h["id"]: store.get(h["requester"], "help-note", h["id"])
            for h in everything
            if h in mine or h["id"] in invited
        }
        # An open request is shown to people who are not party to it: no help id (it is the
        # prefix of the requester's transaction id, which names them in the public log) and no
        # exact time, only an opaque reference this node maps back and the day.
        nearby = [
            {
                "ref": store.handle(f"help/{h['id']}"),
                "note_id": h["id"] if h["id"] in invited else None,
                "skill": h["skill"],
                "municipality": h["municipality"],
                "requested_on": tokyo_time(h["requested_at"], "%Y-%m-%d"),
                "for_me": h["helper"] == me or h["id"] in invited,
            }
            for h in nearby
        ]
        return render(
            request,
            "community/help.html",
            mine=[views.help_for(st, store, h, me) for h in mine],
            nearby=nearby,
            me=me,
            notes=notes,
            is_resident=user.has_role(*RESIDENT_ROLES),
            helper=_handle_param(request.query_params.get("helper", "")),
            wanted=request.query_params.get("skill", ""),
            **common(language(request)),
        )

    @r.post("/community/help")
    async def ask(request: Request) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        handle = str(form.get("helper", ""))
        helper = None
        if handle:
            helper = views.helper_by_handle(state(request), api.store(request), handle)
            if helper is None:
                return invalid(request, "/community/help")
        note = str(form.get("note", "")).strip()[:400]
        write = privacy.ask_help(request, user, str(form.get("skill", "")), note, invite=helper)
        return await outcome(request, write, "/community/help?asked=1", "/community/help")

    @r.post("/community/help/{hid}/{action}")
    async def help_action(request: Request, hid: str, action: str) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        if action not in ("accept", "confirm"):
            return invalid(request, "/community/help")
        if hid.startswith("n-"):  # a request from the "near you" list, by its reference
            refs = {api.store(request).handle(f"help/{k}"): k for k in _open_help(request)}
            if hid not in refs:
                return invalid(request, "/community/help")
            hid = refs[hid]
        payload = privacy.help_payload(request, got[0], hid, action)
        write = submit(request, got[0], [(f"help.{action}", payload)])
        return await outcome(request, write, f"/community/help?{action}=1", "/community/help")

    return r
