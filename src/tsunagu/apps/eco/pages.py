"""Eco pages for participants, shops and the public; the programme's pages are in
:mod:`pages_staff`. Every write goes through :func:`act` (login, role, CSRF, the write, and
the refusal shown on the page in the user's language) and the API's own functions."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.api import (
    DeviceBody,
    redeem,
    register_device,
    settlement_rows,
    view,
    voucher_preview,
)
from tsunagu.apps.eco.api_credits import public_lot
from tsunagu.apps.eco.devices import PARTICIPANT_ROLES
from tsunagu.apps.eco.points import SHOP_ROLES
from tsunagu.apps.eco.view import make_voucher, qr_svg
from tsunagu.errors import InvalidInput, TsunaguError
from tsunagu.identity.private import User
from tsunagu.ledger.block import format_timestamp
from tsunagu.web.deps import check_csrf, language, optional_user, render, services

Page = Callable[..., Response]
SCRIPT_MESSAGES = {
    "no_camera": "The camera cannot be used here. Enter the code instead.",
    "scanning": "Point the camera at the participant's QR code.",
}


def who(request: Request, roles: tuple[str, ...]) -> User | Response:
    """The signed-in user holding one of ``roles`` (admin always), or the answer for others."""
    user = optional_user(request)
    if user is None:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), 303)
    if not user.has_role(*roles):
        return render(request, "eco/not_allowed.html", status_code=403)
    return user


async def act(
    request: Request,
    roles: tuple[str, ...],
    page: Page,
    write: Callable[[User, Any], Awaitable[str | Response]],
) -> Response:
    """One page write: the user and role, the CSRF token, the write; on success a redirect
    to the page with ``?done=<what>``, on a refusal the page again with the reason."""
    user = who(request, roles)
    if isinstance(user, Response):
        return user
    form = await request.form()
    try:
        check_csrf(request, form.get("csrf"))  # type: ignore[arg-type]
        result = await write(user, form)
    except ValidationError:
        error = InvalidInput()
        return page(request, user, error=error.message(language(request)), status=422)
    except TsunaguError as exc:
        return page(request, user, error=exc.message(language(request)), status=exc.status)
    if isinstance(result, Response):
        return result
    return RedirectResponse(f"{request.url.path}?done={result}", status_code=303)


def int_field(form: Any, name: str) -> int:
    value = str(form.get(name) or "").strip().replace(",", "")
    if not value.isdigit() or len(value) > 12:
        raise InvalidInput(
            f"{name}: enter a whole number.", "整数を入力してください。", code="invalid_number"
        )
    return int(value)


def chart(months: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar geometry for the CO2-by-month chart (inline SVG, PV and EV stacked, kg)."""
    top = max([m["pv"] + m["ev"] for m in months] + [1])
    height, bar, gap = 160, 36, 14
    bars = []
    for i, m in enumerate(months):
        pv_h = m["pv"] * height // top
        ev_h = m["ev"] * height // top
        bars.append(
            {
                "x": 40 + i * (bar + gap),
                "w": bar,
                "pv_y": 10 + height - pv_h,
                "pv_h": pv_h,
                "ev_y": 10 + height - pv_h - ev_h,
                "ev_h": ev_h,
                "label": m["month"][2:],
                "kg": (m["pv"] + m["ev"]) // 1000,
            }
        )
    return {
        "bars": bars,
        "width": 60 + len(months) * (bar + gap),
        "height": height + 40,
        "top_kg": top // 1000,
    }


# -- participant ---------------------------------------------------------------------------


def me_page(request: Request, user: User, error: str | None = None, status: int = 200, **extra):
    v = view(request)
    account = v.account(user.key_id)
    rewards = [r | {"shop_name": v.org_name(r["shop"])} for r in v.all("reward") if r["active"]]
    return render(
        request,
        "eco/me.html",
        status_code=status,
        account=account,
        rewards=rewards,
        chart=chart(account["months"]),
        error=error,
        done=request.query_params.get("done"),
        **extra,
    )


async def _register(request: Request, user: User, form: Any) -> Response:
    body = DeviceBody(
        kind=str(form.get("kind")),  # type: ignore[arg-type]
        rated_w=int_field(form, "rated_w"),
        consent=form.get("consent") == "yes",
        start_a=int_field(form, "start_a") if form.get("start_a") else 0,
        start_b=int_field(form, "start_b") if form.get("start_b") else 0,
        start_date=str(form.get("start_date") or "").strip() or None,
    )
    result = await register_device(request, user, body)
    text = json.dumps(result["provisioning"], indent=2, ensure_ascii=False)
    return render(
        request,
        "eco/device_new.html",
        device=result["id"],
        provisioning=text,
        tx_id=result["tx_id"],
    )


async def _voucher(request: Request, user: User, form: Any) -> Response:
    v = view(request)
    reward = v.found("reward", str(form.get("reward") or ""), "reward", "特典")
    key = services(request).private.signing_key(user)
    code, expires = make_voucher(key, reward["id"])
    url = f"{services(request).base_url(str(request.base_url))}/eco/shop?code={code}"
    return render(
        request,
        "eco/voucher.html",
        reward=reward,
        code=code,
        url=url,
        expires=expires,
        qr=qr_svg(url, reward["name_ja"]),
        balance=v.account(user.key_id)["points"],
    )


# -- shop ----------------------------------------------------------------------------------


def shop_page(request: Request, user: User, error: str | None = None, status: int = 200, **extra):
    v = view(request)
    code = extra.pop("code", None) or request.query_params.get("code")
    preview = None
    if code and error is None:
        try:
            preview = voucher_preview(request, user, code)
        except TsunaguError as exc:
            error = exc.message(language(request))
        if preview is not None and preview["refused"] is not None:
            refused = preview["refused"]
            message = refused.message(language(request))
            preview["refusal"] = {"code": refused.code, "message": message}
    month = this_month()
    rows = settlement_rows(v, user.org, month)
    return render(
        request,
        "eco/shop.html",
        status_code=status,
        preview=preview,
        error=error,
        code=code,
        done=request.query_params.get("done"),
        rows=rows,
        month=month,
        total=sum(r["settlement_yen"] for r in rows),
        messages=SCRIPT_MESSAGES,
        shop_name=v.org_name(user.org),
        rewards={r["id"]: r for r in v.all("reward")},
        **extra,
    )


def this_month() -> str:
    """The current month in Japan (``YYYY-MM``)."""
    return rules.month_of(format_timestamp(datetime.now(UTC)))


async def _redeem(request: Request, user: User, form: Any) -> str:
    await redeem(request, user, str(form.get("code") or ""))
    return "redeemed"


def router() -> APIRouter:
    from tsunagu.apps.eco.pages_staff import staff_routes

    r = APIRouter(prefix="/eco", include_in_schema=False)

    @r.get("")
    def hub(request: Request) -> Response:
        v = view(request)
        return render(
            request,
            "eco/hub.html",
            dashboard=v.dashboard(),
            factors=v.get("factor", "grid"),
            rewards=v.all("reward"),
        )

    @r.get("/me")
    def me(request: Request) -> Response:
        user = who(request, PARTICIPANT_ROLES)
        return user if isinstance(user, Response) else me_page(request, user)

    @r.post("/devices")
    async def post_device(request: Request) -> Response:
        return await act(request, PARTICIPANT_ROLES, me_page, lambda u, f: _register(request, u, f))

    @r.post("/voucher")
    async def post_voucher(request: Request) -> Response:
        return await act(request, PARTICIPANT_ROLES, me_page, lambda u, f: _voucher(request, u, f))

    @r.get("/shop")
    def shop(request: Request) -> Response:
        user = who(request, SHOP_ROLES)
        return user if isinstance(user, Response) else shop_page(request, user)

    @r.post("/shop")
    async def post_shop(request: Request) -> Response:
        return await act(request, SHOP_ROLES, shop_page, lambda u, f: _redeem(request, u, f))

    @r.get("/credits/{lot}")
    def credit(request: Request, lot: str) -> Response:
        v = view(request)
        record = v.get("lot", lot)
        if record is None:
            return render(request, "eco/not_found.html", status_code=404)
        return render(
            request, "eco/credit.html", lot=public_lot(v, record), serial=rules.format_serial
        )

    staff_routes(r)
    return r
