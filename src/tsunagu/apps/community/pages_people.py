"""Resident pages: my record (timeline, hours, milestones, credentials, skills, export and
erasure), the "who nearby can help with…" search, and help between neighbours."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tsunagu.apps.community import api, catalog, views
from tsunagu.apps.community.contract import RESIDENT_ROLES
from tsunagu.apps.community.pages import common, form_user, invalid, outcome, page_user, state
from tsunagu.apps.community.web import submit
from tsunagu.web.deps import language, render


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
        body = json.dumps(api.export_of(request, user), ensure_ascii=False, indent=2)
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
        write = api.erase_resident(request, user)
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
        nearby = [
            h
            for h in everything
            if h["status"] == "open"
            and h["requester"] != me
            and h["helper"] in (None, me)
            and (h["municipality"] == home or h["helper"] == me)
        ]
        store = api.store(request)
        notes = {h["id"]: store.get(h["requester"], "help-note", h["id"]) for h in mine}
        return render(
            request,
            "community/help.html",
            mine=mine,
            nearby=nearby,
            me=me,
            notes=notes,
            is_resident=user.has_role(*RESIDENT_ROLES),
            helper=request.query_params.get("helper", ""),
            wanted=request.query_params.get("skill", ""),
            **common(language(request)),
        )

    @r.post("/community/help")
    async def ask(request: Request) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        user, form = got
        payload = {"skill": str(form.get("skill", ""))}
        helper = str(form.get("helper", ""))
        if helper:
            payload["helper"] = helper
        note = str(form.get("note", "")).strip()[:400]

        async def write() -> None:
            (receipt,) = await submit(request, user, [("help.request", payload)])
            if note:
                api.store(request).put(user.key_id, "help-note", f"h-{receipt.tx_id[:16]}", note)

        return await outcome(request, write(), "/community/help?asked=1", "/community/help")

    @r.post("/community/help/{hid}/{action}")
    async def help_action(request: Request, hid: str, action: str) -> Response:
        got = await form_user(request, RESIDENT_ROLES)
        if isinstance(got, Response):
            return got
        if action not in ("accept", "confirm"):
            return invalid(request, "/community/help")
        write = submit(request, got[0], [(f"help.{action}", {"help": hid})])
        return await outcome(request, write, f"/community/help?{action}=1", "/community/help")

    return r
