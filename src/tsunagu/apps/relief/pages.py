"""Relief pages (①–⑧): needs, offers, the coordinator's review, the shelter's live inbox and
the overview; packages, their labels and the public QR page are in :mod:`.pages_packages`.

Pages read through :class:`tsunagu.apps.relief.view.View` and write through
:func:`tsunagu.apps.relief.api.submit`, with the API's own input models, so a page never
re-implements a rule: the contract decides, and its refusal is shown in the user's language.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from tsunagu.apps.relief import catalog, labels
from tsunagu.apps.relief.api import (
    PRIORITY_ORDER,
    MatchesBody,
    NeedBody,
    NeedPatch,
    OfferBody,
    inbox,
    submit,
    today_jst,
)
from tsunagu.apps.relief.api_matches import proposal_for
from tsunagu.apps.relief.contract import (
    COORDINATOR_ROLES,
    NEED_ROLES,
    SUPPORTER_ROLES,
    municipality_of,
)
from tsunagu.apps.relief.reports import overview_for
from tsunagu.apps.relief.view import RELIEF_ROLES, View, acts_for, in_relief
from tsunagu.errors import TsunaguError
from tsunagu.identity.private import User
from tsunagu.places import municipalities
from tsunagu.platform import NavLink
from tsunagu.validation_text import InputValueError
from tsunagu.web.deps import check_csrf, language, optional_user, render, services

PRIORITIES = tuple(PRIORITY_ORDER)
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
WHOLE = re.compile(r"[0-9]{1,8}")  # ASCII digits: "①".isdigit() is true, int("①") fails
FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
NAV = (
    NavLink("/relief", "Relief supplies"),
    NavLink("/relief/scan", "Scan a label"),
)
# Words the browser scripts show, translated on the page (data-* attributes).
SCRIPT_MESSAGES = {
    "saved_offline": "Saved on this device. It will be sent when you are online again.",
    "sent": "The receipt is recorded on the ledger.",
    "sending": "Sending…",
    "failed": "The receipt was refused:",
    "pending": "Receipts waiting on this device: {count}",
    "new_notification": "New notification:",
    "no_camera": "The camera cannot be used here. Enter the code instead.",
    "scanning": "Point the camera at the QR code on the label.",
}


def _(request: Request):
    return services(request).catalog.translator(language(request), "relief")


def _login(request: Request) -> Response:
    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)


def _who(request: Request, roles: tuple[str, ...]) -> User | Response:
    """The signed-in user holding one of ``roles`` (admin always), or the answer for others."""
    user = optional_user(request)
    if user is None:
        return _login(request)
    if not user.has_role(*roles):
        return render(request, "relief/not_allowed.html", status_code=403)
    return user


def _form(model: type[BaseModel], values: dict[str, Any]) -> tuple[dict | None, bool]:
    try:
        return model.model_validate(values).model_dump(exclude_none=True), True
    except ValidationError:
        return None, False


def _int(value: str | None) -> int | None:
    """A whole number typed in a form: ASCII or full-width digits (３０ is 30), at most 8 of
    them; anything else (①, ², ٣, -1, 1.5) is None, which the form answers with a 422. Only the
    full-width digits are folded, as NFKC would: NFKC would also turn ① into 1."""
    value = (value or "").strip().translate(FULL_WIDTH_DIGITS)
    return int(value) if WHOLE.fullmatch(value) else None


def _items_by_category(kinds: tuple[str, ...] = ()) -> list[tuple[str, list[catalog.Item]]]:
    groups: dict[str, list[catalog.Item]] = {}
    for it in catalog.items().values():
        if not kinds or it.kind in kinds:
            groups.setdefault(it.category, []).append(it)
    return list(groups.items())


def _mine(view: View, kind: str, key: str, org: str) -> list[dict[str, Any]]:
    return [r for r in view.all(kind) if r[key] == org]


def _error(request: Request, exc: TsunaguError) -> str:
    return exc.message(language(request))


def _common() -> dict[str, Any]:
    return {
        "categories": catalog.categories(),
        "allergens": list(catalog.allergens().values()),
        "priorities": PRIORITIES,
        "today": today_jst(),
    }


def _shelters(view: View, municipality: str | None = None) -> list[dict[str, Any]]:
    """The consortium's shelters (of ``municipality`` if given), by municipality and id."""
    shelters = [
        org
        for _, org in view.state.scan("identity.org")
        if org.get("type") == "shelter"
        and (municipality is None or municipality_of(org) == municipality)
    ]
    return sorted(shelters, key=lambda o: (municipality_of(o) or "", o["id"]))


def _posts_for_shelters(view: View, user: User) -> list[dict[str, Any]] | None:
    """The shelters a coordinator (those of its municipality) or an administrator (all) may
    choose to post a need for; None for a shelter's staff, who post for their own."""
    if "admin" in user.roles:
        return _shelters(view)
    if "coordinator" in user.roles and view.org(user.org).get("type") != "shelter":
        home = view.municipality(user)
        return _shelters(view, home) if home else []
    return None


def _may_see_need(view: View, user: User, need: dict[str, Any]) -> bool:
    if "admin" in user.roles or need["shelter"] == user.org:
        return True
    return "coordinator" in user.roles and view.municipality(user) == need["municipality"]


def _needs_page(request, user, status_code=200, values=None, error=None, **extra) -> Response:
    view = View(request)
    needs = [n for n in view.all("need") if _may_see_need(view, user, n)]
    needs.sort(key=lambda n: (n["status"] != "open", PRIORITY_ORDER[n["priority"]], n["id"]))
    return render(
        request,
        "relief/needs.html",
        status_code=status_code,
        needs=[view.need(n) for n in needs],
        groups=_items_by_category(),
        values=values or {},
        error=error,
        shelters=_posts_for_shelters(view, user),
        group_keys=catalog.GROUP_KEYS,
        population=catalog.population_groups(),
        **_common(),
        **extra,
    )


def _offers_page(request, user, status_code=200, values=None, error=None) -> Response:
    view = View(request)
    offers = _mine(view, "offer", "org", user.org)
    offers.sort(key=lambda o: (o["status"] != "open", -o["history"][0]["height"]))
    places = sorted(municipalities().values(), key=lambda m: m.id)
    return render(
        request,
        "relief/offers.html",
        status_code=status_code,
        offers=[view.offer(o) for o in offers],
        groups=_items_by_category(),
        places=places,
        home=view.municipality(user),
        values=values or {},
        error=error,
        **_common(),
    )


def _review_page(request, user, status_code=200, error=None, result=None) -> Response:
    try:
        proposal = proposal_for(request, user)
    except TsunaguError as exc:
        proposal, error = {"allocations": [], "unmet": []}, _error(request, exc)
    return render(
        request,
        "relief/review.html",
        status_code=status_code,
        proposal=proposal,
        error=error,
        result=result,
    )


def router() -> APIRouter:
    from tsunagu.apps.relief.pages_packages import package_routes

    r = APIRouter(include_in_schema=False)

    @r.get("/relief")
    def hub(request: Request) -> Response:
        user = optional_user(request)
        view = View(request)
        ctx: dict[str, Any] = {}
        if user is not None and in_relief(user):  # a resident: none of the town's records
            org = user.org
            ctx["needs"] = [view.need(n) for n in _mine(view, "need", "shelter", org)]
            ctx["offers"] = [view.offer(o) for o in _mine(view, "offer", "org", org)]
            ctx["to_ship"] = [
                view.match(m)
                for m in view.all("match")
                if acts_for(user, m["sender"], SUPPORTER_ROLES) and m["status"] == "confirmed"
            ]
            ctx["incoming"] = [
                view.match(m)
                for m in view.all("match")
                if acts_for(user, m["shelter"]) and m["status"] == "shipped"
            ]
            box = inbox(request)
            box.sync(2.0)
            ctx["unread"] = box.unread(org)
        return render(
            request,
            "relief/hub.html",
            is_shelter=user is not None and user.has_role(*NEED_ROLES[:1]),
            is_supporter=user is not None and user.has_role(*SUPPORTER_ROLES),
            is_coordinator=user is not None and user.has_role(*COORDINATOR_ROLES),
            **ctx,
        )

    # ① needs ---------------------------------------------------------------------------

    @r.get("/relief/needs")
    def needs(request: Request) -> Response:
        user = _who(request, NEED_ROLES)
        return user if isinstance(user, Response) else _needs_page(request, user)

    @r.post("/relief/needs")
    async def post_need(request: Request) -> Response:
        user = _who(request, NEED_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        values = {k: str(v) for k, v in form.items() if k != "csrf"}
        item = catalog.item(values.get("item", ""))
        body: dict[str, Any] = {
            "item": values.get("item", ""),
            "quantity": _int(values.get("quantity")),
            "allergen_free": [str(a) for a in form.getlist("allergen_free")],
            "condition": values.get("condition") or "any",
            "priority": values.get("priority") or "normal",
            "needed_by": values.get("needed_by", ""),
        }
        if item is not None and item.sizes and values.get("size"):
            body["size"] = values["size"]
        if values.get("note", "").strip():
            body["note"] = values["note"].strip()
        if values.get("shelter"):
            body["shelter"] = values["shelter"]
        payload, ok = _form(NeedBody, body)
        t = _(request)
        if not ok or item is None:
            error = t("Check the item, a whole-number quantity and the needed-by date.")
            return _needs_page(request, user, 422, values, error)
        if "shelter" not in payload and _posts_for_shelters(View(request), user) is not None:
            return _needs_page(request, user, 422, values, t("Choose a shelter."))
        payload["unit"] = item.unit_ja
        try:
            await submit(request, user, "need.post", payload)
        except TsunaguError as exc:
            return _needs_page(request, user, exc.status, values, _error(request, exc))
        return RedirectResponse("/relief/needs?posted=1", status_code=303)

    @r.post("/relief/needs/suggest")
    async def suggest(request: Request) -> Response:
        user = _who(request, NEED_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        counts = {k: _int(str(form.get(k, "0")) or "0") for k in catalog.GROUP_KEYS}
        days = _int(str(form.get("days", "")))
        t = _(request)
        if any(v is None for v in counts.values()) or days is None:
            return _needs_page(request, user, 422, error=t("Enter whole numbers."))
        try:
            rows = catalog.suggest_needs({k: v for k, v in counts.items() if v}, days)
        except InputValueError as exc:  # e.g. days outside 1–30: the catalogue's own words
            error = exc.ja if language(request) == "ja" else exc.en
            return _needs_page(request, user, 422, error=error)
        if not any(counts.values()):
            error = t("Enter the number of evacuees in at least one group.")
            return _needs_page(request, user, 422, error=error, counts=counts, days=days)
        suggestions = [(catalog.items()[i], q) for i, q in rows]
        return _needs_page(request, user, suggestions=suggestions, counts=counts, days=days)

    @r.post("/relief/needs/suggested")
    async def post_suggested(request: Request) -> Response:
        user = _who(request, NEED_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        chosen = [str(i) for i in form.getlist("pick")]
        needed_by = str(form.get("needed_by", ""))
        payloads = []
        for item_id in chosen:
            item = catalog.item(item_id)
            body = {
                "item": item_id,
                "quantity": _int(str(form.get(f"q-{item_id}", ""))),
                "needed_by": needed_by,
                "priority": str(form.get("priority", "normal")),
            }
            if form.get("shelter"):
                body["shelter"] = str(form["shelter"])
            payload, ok = _form(NeedBody, body)
            if not ok or item is None:
                error = _(request)("Check the quantities and the needed-by date.")
                return _needs_page(request, user, 422, error=error)
            payloads.append(payload | {"unit": item.unit_ja})
        try:
            for payload in payloads:
                await submit(request, user, "need.post", payload)
        except TsunaguError as exc:
            return _needs_page(request, user, exc.status, error=_error(request, exc))
        return RedirectResponse("/relief/needs?posted=" + str(len(payloads)), status_code=303)

    @r.post("/relief/needs/{need}/update")
    async def update_need(request: Request, need: str) -> Response:
        user = _who(request, NEED_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        current = View(request).get("need", need) or {}
        quantity = _int(str(form.get("quantity", "")))
        if form.get("quantity") and quantity is None:
            return _needs_page(request, user, 422, error=_(request)("Enter whole numbers."))
        body = {
            "quantity": quantity,
            "priority": str(form.get("priority", "")) or None,
            "needed_by": str(form.get("needed_by", "")) or None,
        }
        changes, ok = _form(NeedPatch, body)
        if not ok:
            error = _(request)("Check the quantity, the priority and the needed-by date.")
            return _needs_page(request, user, 422, error=error)
        # Send what the form changes: the need's history records what really changed.
        changed = {k: v for k, v in (changes or {}).items() if current.get(k) != v}
        payload: dict[str, Any] = {"need": need, **changed}
        try:
            await submit(request, user, "need.update", payload)
        except TsunaguError as exc:
            return _needs_page(request, user, exc.status, error=_error(request, exc))
        return RedirectResponse("/relief/needs", status_code=303)

    @r.post("/relief/needs/{need}/cancel")
    async def cancel_need(request: Request, need: str) -> Response:
        user = _who(request, NEED_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        try:
            await submit(request, user, "need.cancel", {"need": need})
        except TsunaguError as exc:
            return _needs_page(request, user, exc.status, error=_error(request, exc))
        return RedirectResponse("/relief/needs", status_code=303)

    # ② offers --------------------------------------------------------------------------

    @r.get("/relief/offers")
    def offers(request: Request) -> Response:
        user = _who(request, SUPPORTER_ROLES)
        return user if isinstance(user, Response) else _offers_page(request, user)

    @r.post("/relief/offers")
    async def post_offer(request: Request) -> Response:
        user = _who(request, SUPPORTER_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        values = {k: str(v) for k, v in form.items() if k != "csrf"}
        item = catalog.item(values.get("item", ""))
        body: dict[str, Any] = {
            "item": values.get("item", ""),
            "quantity": _int(values.get("quantity")),
            "condition": values.get("condition") or "new",
            "ship_from": values.get("ship_from") or None,
            "ship_by": values.get("ship_by", ""),
        }
        declared = values.get("declared") == "yes"
        body["allergens"] = [str(a) for a in form.getlist("allergens")] if declared else None
        for key in ("size", "expiry"):
            if values.get(key):
                body[key] = values[key]
        payload, ok = _form(OfferBody, body)
        if not ok or item is None:
            error = _(request)("Check the item, a whole-number quantity and the dates.")
            return _offers_page(request, user, 422, values, error)
        payload["allergens"] = body["allergens"]
        payload["unit"] = item.unit_ja
        payload.setdefault("ship_from", View(request).municipality(user) or "")
        try:
            await submit(request, user, "offer.post", payload)
        except TsunaguError as exc:
            return _offers_page(request, user, exc.status, values, _error(request, exc))
        return RedirectResponse("/relief/offers?posted=1", status_code=303)

    @r.post("/relief/offers/{offer}/withdraw")
    async def withdraw(request: Request, offer: str) -> Response:
        user = _who(request, SUPPORTER_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        try:
            await submit(request, user, "offer.withdraw", {"offer": offer})
        except TsunaguError as exc:
            return _offers_page(request, user, exc.status, error=_error(request, exc))
        return RedirectResponse("/relief/offers", status_code=303)

    # ③ review --------------------------------------------------------------------------

    @r.get("/relief/review")
    def review(request: Request) -> Response:
        user = _who(request, COORDINATOR_ROLES)
        return user if isinstance(user, Response) else _review_page(request, user)

    @r.post("/relief/review")
    async def confirm(request: Request) -> Response:
        user = _who(request, COORDINATOR_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        allocations = []
        for key in form.getlist("pick"):
            need, _sep, offer = str(key).partition("|")
            quantity = _int(str(form.get(f"q-{key}", "")))
            allocations.append({"need_id": need, "offer_id": offer, "quantity": quantity})
        body, ok = _form(MatchesBody, {"allocations": allocations})
        if not ok:
            error = _(request)("Choose at least one row, each with a whole-number quantity.")
            return _review_page(request, user, 422, error=error)
        chosen = [
            {
                "need": a["need_id"],
                "offer": a["offer_id"],
                "quantity": a["quantity"],
                "code": labels.new_code(),
            }
            for a in body["allocations"]
        ]
        try:
            receipt = await submit(request, user, "match.confirm", {"allocations": chosen})
        except TsunaguError as exc:
            return _review_page(request, user, exc.status, error=_error(request, exc))
        return _review_page(request, user, result=receipt)

    package_routes(r)  # ④ ⑤ ⑦ ⑧ packages, their pages and the scanner

    # ⑥ inbox -----------------------------------------------------------------------------

    def _inbox_page(request: Request, user: User, status_code=200, error=None) -> Response:
        box = inbox(request)
        box.sync(2.0)
        notes = box.notifications(user.org, limit=100)
        t = _(request)
        return render(
            request,
            "relief/inbox.html",
            status_code=status_code,
            notes=notes,
            unread=box.unread(user.org),
            error=error,
            messages={k: t(v) for k, v in SCRIPT_MESSAGES.items()},
        )

    @r.get("/relief/inbox")
    def inbox_page(request: Request) -> Response:
        user = _who(request, RELIEF_ROLES)  # the organisation's relief staff, not its residents
        return user if isinstance(user, Response) else _inbox_page(request, user)

    @r.post("/relief/inbox/read")
    async def mark_read(request: Request) -> Response:
        user = _who(request, RELIEF_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        given = str(form.get("id", "")).strip()
        ident = _int(given)
        if given and ident is None:  # a bad id marks nothing, rather than everything
            return _inbox_page(request, user, 422, _(request)("Enter whole numbers."))
        box = inbox(request)
        if ident is None:
            box.mark_read(user.org)
        elif box.exists(user.org, ident):
            box.mark_read(user.org, ident)
        return RedirectResponse("/relief/inbox", status_code=303)

    # overview ------------------------------------------------------------------------------

    @r.get("/relief/overview")
    def overview(request: Request) -> Response:
        user = optional_user(request)
        if user is None:
            return _login(request)
        view = View(request)
        filters = user.has_role(*COORDINATOR_ROLES)  # admin too
        wanted = {
            k: v if filters and SLUG.match(v := request.query_params.get(k, "")) else None
            for k in ("shelter", "municipality")
        }
        data = overview_for(request, user, wanted["shelter"], wanted["municipality"])
        shelters = _shelters(view) if filters else []
        places = sorted({municipality_of(o) or "" for o in shelters} - {""})
        return render(
            request,
            "relief/overview.html",
            o=data,
            priorities=PRIORITIES,
            filters=filters,
            shelters=[
                {"id": o["id"], "name": view.org_name(o["id"]), "municipality": municipality_of(o)}
                for o in shelters
            ],
            places=[{"id": p, "name": view.place_name(p)} for p in places],
        )

    return r


__all__ = ["NAV", "router"]
