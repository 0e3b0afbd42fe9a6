"""Relief pages for packages (④ ⑤ ⑦ ⑧): the packages list, a match's own page with its label
and the ship form, the package's public QR page with the (offline-capable) receipt form, and
the scanner.

A match's own page is for those who may see it (:meth:`View.may_see`: the sender, the
destination shelter, the relief staff and coordinators of the shelter's municipality,
administrators); anyone else gets the page's usual "not found", which tells nothing of the
match. The QR label encodes the public package page ``/r/{code}``, which stays open to whoever
holds the label: that is where the shelter records the receipt.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tsunagu.apps.relief import labels
from tsunagu.apps.relief.api import ShipmentBody, submit
from tsunagu.apps.relief.contract import NEED_ROLES, SUPPORTER_ROLES
from tsunagu.apps.relief.pages import SCRIPT_MESSAGES, _, _error, _form, _login, _who
from tsunagu.apps.relief.view import View, acts_for
from tsunagu.errors import TsunaguError
from tsunagu.web.deps import check_csrf, optional_user, render, services


def _not_found(request: Request) -> Response:
    return render(request, "relief/not_found.html", status_code=404)


def _match_page(request: Request, match_id: str, status_code=200, error=None) -> Response:
    """The match's own page, or "not found" for a match the user may not see (or none)."""
    view = View(request)
    match = view.get("match", match_id)
    user = optional_user(request)
    if match is None or not view.may_see(user, match):
        return _not_found(request)
    base = services(request).base_url(str(request.base_url))
    return render(
        request,
        "relief/match.html",
        status_code=status_code,
        m=view.match(match),
        qr=labels.qr_svg(f"{base}/r/{match['code']}"),
        may_ship=acts_for(user, match["sender"], SUPPORTER_ROLES)
        and match["status"] == "confirmed",
        may_print=user is not None
        and view.may_print(user, match)
        and match["status"] != "cancelled",
        error=error,
    )


def package_routes(r: APIRouter) -> None:
    # ④ ⑤ ⑧ matches -----------------------------------------------------------------------

    @r.get("/relief/matches")
    def matches(request: Request) -> Response:
        user = optional_user(request)
        if user is None:
            return _login(request)
        view = View(request)
        # The packages whose labels the user may print (a municipality's relief staff open
        # the packages for its shelters from the overview instead).
        mine = [m for m in view.all("match") if view.may_print(user, m)]
        mine.sort(key=lambda m: (-m["timeline"][-1]["height"], m["id"]))
        return render(request, "relief/matches.html", matches=[view.match(m) for m in mine])

    @r.get("/relief/matches/{match}")
    def match_detail(request: Request, match: str) -> Response:
        if optional_user(request) is None:
            return _login(request)
        return _match_page(request, match)

    @r.post("/relief/matches/{match}/shipment")
    async def ship(request: Request, match: str) -> Response:
        user = _who(request, SUPPORTER_ROLES)
        if isinstance(user, Response):
            return user
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        body = {k: str(form.get(k, "")).strip() or None for k in ("carrier", "tracking")}
        payload, ok = _form(ShipmentBody, body)
        if not ok:
            error = _(request)("The tracking number may hold only letters, digits and hyphens.")
            return _match_page(request, match, 422, error=error)
        try:
            await submit(request, user, "shipment.report", {"match": match, **payload})
        except TsunaguError as exc:
            return _match_page(request, match, exc.status, error=_error(request, exc))
        return RedirectResponse(f"/relief/matches/{match}?shipped=1", status_code=303)

    # ⑦ the package's own page, and the scanner -------------------------------------------

    @r.get("/r/{code}")
    def package(request: Request, code: str) -> Response:
        view = View(request)
        entry = view.get("code", code) if code.isascii() and len(code) <= 64 else None
        match = view.get("match", entry["match"]) if entry else None
        if match is None:
            return _not_found(request)
        user = optional_user(request)
        t = _(request)
        return render(
            request,
            "relief/package.html",
            p=view.public(match),
            code=code,
            may_receive=acts_for(user, match["shelter"], NEED_ROLES[:1])
            and match["status"] == "shipped",
            messages={k: t(v) for k, v in SCRIPT_MESSAGES.items()},
        )

    @r.get("/relief/scan")
    def scan(request: Request) -> Response:
        t = _(request)
        return render(
            request, "relief/scan.html", messages={k: t(v) for k, v in SCRIPT_MESSAGES.items()}
        )

    @r.get("/relief/scan/go")
    def scan_go(request: Request, code: str = "") -> Response:
        code = code.strip().rsplit("/r/", 1)[-1].strip("/ ")
        if not code or not code.isascii() or len(code) > 64:
            return RedirectResponse("/relief/scan", status_code=303)
        return RedirectResponse(f"/r/{code}", status_code=303)
