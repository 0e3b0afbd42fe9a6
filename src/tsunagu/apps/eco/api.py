"""Eco-points API (``/api/v1/eco``): factors, devices, points, rewards, redemptions.

Routes check who the user is, validate the request, and build transactions; the contract
decides. Credits and reports are in :mod:`api_credits`.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.devices import PARTICIPANT_ROLES, STAFF_ROLES, device_id
from tsunagu.apps.eco.points import SHOP_ROLES
from tsunagu.apps.eco.rules import JST
from tsunagu.apps.eco.simulate import provisioning
from tsunagu.apps.eco.view import EcoView, make_voucher, qr_svg, read_voucher
from tsunagu.errors import Forbidden, InvalidInput, Rejected
from tsunagu.identity.private import User
from tsunagu.ledger.block import format_timestamp
from tsunagu.ledger.keys import SigningKey
from tsunagu.node.node import Receipt
from tsunagu.web.csvsafe import SafeWriter
from tsunagu.web.deps import current_user, require_roles, services
from tsunagu.web.writes import Refusals, precheck, submit_as

PREFIX = "/api/v1/eco"
REFUSALS = Refusals(
    forbidden={
        "forbidden_role",
        "not_programme_staff",
        "not_holder",
        "other_shop",
        "other_municipality",
    },
    unknown={"unknown_device", "unknown_report", "unknown_lot", "unknown_reward"},
    bad_input={
        "invalid_payload",
        "consent_required",
        "negative_reading",
        "personal_data",
        "bad_voucher",
        "bad_period",
        "bad_recipient",
        "export_above_generation",
    },
)
CREDIT_VIEW_ROLES = ("env_staff", "staff", "verifier")
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DeviceBody(In):
    kind: Literal["pv", "ev"]
    rated_w: Annotated[int, Field(gt=0, le=1_000_000, description="PV array or charger, W")]
    consent: bool = Field(description="hand the device's CO2 reductions to the programme")
    start_a: Annotated[int, Field(ge=0, le=10**15)] = Field(
        0, description="the meter now: PV generated Wh, or EV charged Wh"
    )
    start_b: Annotated[int, Field(ge=0, le=10**15)] = Field(
        0, description="the meter now: PV exported Wh, or EV odometer metres"
    )
    start_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = Field(
        None,
        description="the day (Japan) the meter showed start_a/start_b, at most a year ago; "
        "default: now",
    )


class RewardBody(In):
    id: Slug
    name_ja: Annotated[str, Field(min_length=1, max_length=80)]
    name_en: Annotated[str, Field(min_length=1, max_length=80)]
    kind: Literal["event", "facility", "product", "perk"]
    points: Annotated[int, Field(gt=0, le=1_000_000)]
    shop: Slug
    settlement_yen: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    active: bool = True


class VoucherBody(In):
    reward: Slug


class SuspendBody(In):
    reason: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="why (kept on the chain: no names or contact details)"
    )


class CodeBody(In):
    code: Annotated[str, Field(min_length=1, max_length=2000)]


participant_role = require_roles(*PARTICIPANT_ROLES)
staff_role = require_roles(*STAFF_ROLES)
shop_role = require_roles(*SHOP_ROLES)


def view(request: Request) -> EcoView:
    return EcoView(services(request).node)


def status_for(exc: Rejected) -> Rejected:
    exc.status = REFUSALS.status(exc.code)
    return exc


async def submit(
    request: Request, user: User, type_: str, payload: dict[str, Any], app: str = "eco"
) -> Receipt:
    """Sign as ``user`` (custodial key), wait for the block, and raise the contract's
    refusal with an HTTP status that fits it."""
    try:
        return await submit_as(request, user, app, type_, payload)
    except Rejected as exc:
        raise status_for(exc) from None


def written(tx: Receipt, **extra: Any) -> dict[str, Any]:
    return {"tx_id": tx.tx_id, "height": tx.height, "index": tx.index, **extra}


def baseline_at(start_date: str | None) -> str:
    """The baseline's time: midnight (Japan) of ``start_date``, or now."""
    now = datetime.now(UTC)
    if start_date is None:
        return format_timestamp(now)
    try:
        day = date.fromisoformat(start_date)
    except ValueError:
        day = None
    moment = None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC) - JST
    if moment is None or moment > now or moment < now - timedelta(days=366):
        raise InvalidInput(
            "The meter date must be a real day within the past year.",
            "メーター値の日付は、過去1年以内の日付にしてください。",
            code="bad_start_date",
        )
    return format_timestamp(moment)


async def register_device(request: Request, user: User, body: DeviceBody) -> dict[str, Any]:
    """Register a device with a fresh key; the answer holds its provisioning file, the only
    copy of its private key (the node keeps none)."""
    key = SigningKey.generate()
    baseline = {"at": baseline_at(body.start_date), "a": body.start_a, "b": body.start_b}
    payload = {
        "kind": body.kind,
        "rated_w": body.rated_w,
        "public_key": key.public_key.hex(),
        "consent": body.consent,
        "baseline": baseline,
    }
    receipt = await submit(request, user, "device.register", payload)
    svc = services(request)
    dev = device_id(key.public_key.hex())
    base = svc.base_url(str(request.base_url))
    prov = provisioning(
        dev, body.kind, body.rated_w, key.seed.hex(), svc.node.chain_id, base, baseline
    )
    return written(receipt, id=dev, provisioning=prov)


async def approve_device(request: Request, user: User, device: str) -> dict[str, Any]:
    """Approve a device and add its key to the chain's members (kind ``device``)."""
    record = view(request).found("device", device, "device", "機器")
    receipt = await submit(request, user, "device.approve", {"device": device})
    await submit(
        request,
        user,
        "device.add",
        {"public_key": record["public_key"], "org": record["org"]},
        app="identity",
    )
    return written(receipt, id=device)


async def suspend_device(request: Request, user: User, device: str, reason: str) -> dict[str, Any]:
    """Suspend a device (a fault, a move, a withdrawn consent): from the next block on its
    readings are refused; what it reported before stays counted."""
    view(request).found("device", device, "device", "機器")
    receipt = await submit(request, user, "device.suspend", {"device": device, "reason": reason})
    return written(receipt, id=device)


async def reinstate_device(
    request: Request, user: User, device: str, reason: str
) -> dict[str, Any]:
    """Take a suspended device back: its next reading is its new starting point (what its
    meter counted while suspended earns nothing), and the readings after it count."""
    view(request).found("device", device, "device", "機器")
    receipt = await submit(request, user, "device.reinstate", {"device": device, "reason": reason})
    return written(receipt, id=device)


async def redeem(request: Request, user: User, code: str) -> dict[str, Any]:
    payload = read_voucher(code)
    receipt = await submit(request, user, "points.redeem", payload)
    record = view(request).get("voucher", payload["voucher"]["nonce"]) or {}
    return written(receipt, redemption=record)


def voucher_preview(request: Request, user: User, code: str) -> dict[str, Any]:
    """What a shop sees before confirming: the reward and the points (not yet burnt), and
    ``refused``: the refusal redeeming it now would meet, or None. The check is the
    contract's own (:func:`~tsunagu.web.writes.precheck` on the committed state, as ``user``
    would redeem it): signature, used or expired code, the reward's shop, the points left."""
    payload = read_voucher(code)
    voucher = payload["voucher"]
    v = view(request)
    reward = v.get("reward", str(voucher.get("reward")))
    refused: Rejected | None = None
    try:
        precheck(services(request).node, user.key_id, "eco", "points.redeem", payload)
    except Rejected as exc:
        refused = status_for(exc)
    used = v.get("voucher", str(voucher.get("nonce"))) is not None
    return {
        "voucher": voucher,
        "reward": reward,
        "used": used,
        "code": code.strip(),
        "refused": refused,
    }


def check_month(month: str | None) -> None:
    """A settlement month must be a real ``YYYY-MM`` month (not 2026-13)."""
    if month is not None and MONTH.fullmatch(month) is None:
        raise InvalidInput(
            f"{month} is not a month: use YYYY-MM, e.g. 2026-04.",
            f"{month} は月の指定として正しくありません。YYYY-MM（例: 2026-04）で指定してください。",
            code="bad_month",
        )


def settlement_rows(v: EcoView, shop: str, month: str | None) -> list[dict[str, Any]]:
    rows = [
        r
        for r in v.all("voucher")
        if r["shop"] == shop and (month is None or rules.month_of(r["at"]) == month)
    ]
    return sorted(rows, key=lambda r: r["at"])


def settlement_csv(v: EcoView, shop: str, month: str | None) -> str:
    out = io.StringIO()
    writer = SafeWriter(out)  # reward names are free text: no spreadsheet formulas
    writer.writerow(
        ["redeemed_at_jst", "reward", "reward_name", "points", "settlement_yen", "tx_id"]
    )
    total = 0
    for r in settlement_rows(v, shop, month):
        reward = v.get("reward", r["reward"]) or {}
        at = (rules.jst(r["at"])).strftime("%Y-%m-%d %H:%M")
        writer.writerow(
            [
                at,
                r["reward"],
                reward.get("name_ja", ""),
                r["points"],
                r["settlement_yen"],
                r["tx_id"],
            ]
        )
        total += r["settlement_yen"]
    writer.writerow(["total", "", "", "", total, ""])
    return out.getvalue()


def may_settle(user: User, shop: str) -> bool:
    return user.has_role(*STAFF_ROLES) or (user.org == shop and user.has_role(*SHOP_ROLES))


def router() -> APIRouter:
    from tsunagu.apps.eco.api_credits import credit_routes

    r = APIRouter(prefix=PREFIX, tags=["eco"])
    _public_routes(r)
    _participant_routes(r)
    _shop_routes(r)
    credit_routes(r)
    return r


def _public_routes(r: APIRouter) -> None:
    @r.get("/factors")
    def factors(request: Request) -> dict[str, Any]:
        """Emission factors by fiscal year, with their sources (public)."""
        v = view(request)
        return {"grid": v.get("factor", "grid"), "car": v.get("factor", "car")}

    @r.get("/rewards")
    def rewards(request: Request) -> dict[str, Any]:
        """The rewards catalogue (public)."""
        v = view(request)
        return {"rewards": [x | {"shop_name": v.org_name(x["shop"])} for x in v.all("reward")]}

    @r.get("/devices/{device}/last")
    def last_reading(request: Request, device: Slug) -> dict[str, Any]:
        """A device's last accepted counters (for the device to resume from) (public)."""
        d = view(request).found("device", device, "device", "機器")
        return {**d["last"], "status": d["status"], "kind": d["kind"]}


def _participant_routes(r: APIRouter) -> None:
    @r.get("/me")
    def me(request: Request, user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
        """The signed-in participant's points, CO2 reduced by month, and devices."""
        return view(request).account(user.key_id)

    @r.post("/devices", status_code=201)
    async def post_device(
        request: Request, body: DeviceBody, user: Annotated[User, Depends(participant_role)]
    ) -> dict[str, Any]:
        return await register_device(request, user, body)

    @r.get("/devices")
    def devices(
        request: Request,
        user: Annotated[User, Depends(current_user)],
        status: Annotated[str | None, Query(pattern="^(pending|approved|suspended)$")] = None,
    ) -> dict[str, Any]:
        """Environment staff see every device; others their own."""
        v = view(request)
        everything = user.has_role(*STAFF_ROLES)
        return {
            "devices": [
                v.device(d)
                for d in v.all("device")
                if (everything or d["owner"] == user.key_id)
                and (status is None or d["status"] == status)
            ]
        }

    @r.post("/devices/{device}/approve")
    async def approve(
        request: Request, device: Slug, user: Annotated[User, Depends(staff_role)]
    ) -> dict[str, Any]:
        return await approve_device(request, user, device)

    @r.post("/devices/{device}/suspend")
    async def suspend(
        request: Request,
        device: Slug,
        body: SuspendBody,
        user: Annotated[User, Depends(staff_role)],
    ) -> dict[str, Any]:
        """Suspend a device: its readings are refused from now on (environment staff of its
        municipality)."""
        return await suspend_device(request, user, device, body.reason)

    @r.post("/devices/{device}/reinstate")
    async def reinstate(
        request: Request,
        device: Slug,
        body: SuspendBody,
        user: Annotated[User, Depends(staff_role)],
    ) -> dict[str, Any]:
        """Take a suspended device back (environment staff of its municipality): its next
        reading becomes its new starting point and earns nothing; the readings after it
        count as before."""
        return await reinstate_device(request, user, device, body.reason)

    @r.post("/rewards", status_code=201)
    async def put_reward(
        request: Request, body: RewardBody, user: Annotated[User, Depends(staff_role)]
    ) -> dict[str, Any]:
        return written(await submit(request, user, "reward.put", body.model_dump()), id=body.id)

    @r.post("/vouchers", status_code=201)
    def voucher(
        request: Request, body: VoucherBody, user: Annotated[User, Depends(participant_role)]
    ) -> dict[str, Any]:
        """A one-time QR code for a reward, valid five minutes (nothing is written yet)."""
        v = view(request)
        v.found("reward", body.reward, "reward", "特典")
        key = services(request).private.signing_key(user)
        code, expires = make_voucher(key, body.reward)
        url = f"{services(request).base_url(str(request.base_url))}/eco/shop?code={code}"
        return {"code": code, "url": url, "expires": expires, "qr_svg": qr_svg(url, "QR")}


def _shop_routes(r: APIRouter) -> None:
    @r.post("/redemptions/preview")
    def preview(
        request: Request, body: CodeBody, _user: Annotated[User, Depends(shop_role)]
    ) -> dict[str, Any]:
        """Check a scanned code without burning anything: the same checks as the redemption
        (the contract's, on the committed state). A code that would be refused is answered
        with that refusal (problem+json, in the user's language); else the reward."""
        found = voucher_preview(request, _user, body.code)
        if found["refused"] is not None:
            raise found["refused"]
        return {k: v for k, v in found.items() if k != "refused"}

    @r.post("/redemptions", status_code=201)
    async def post_redemption(
        request: Request, body: CodeBody, user: Annotated[User, Depends(shop_role)]
    ) -> dict[str, Any]:
        """Burn the points of a scanned voucher (once: a used code is refused)."""
        return await redeem(request, user, body.code)

    @r.get("/shops/{shop}/settlement.csv")
    def settlement(
        request: Request,
        shop: Slug,
        user: Annotated[User, Depends(current_user)],
        month: Annotated[str | None, Query(max_length=40)] = None,
    ) -> Response:
        """A shop's redemptions in a month (``YYYY-MM``, Japan time; every month if left
        out), with what the programme owes it (CSV)."""
        if not may_settle(user, shop):
            raise Forbidden()
        check_month(month)
        body = settlement_csv(view(request), shop, month)
        name = f"eco-settlement-{shop}-{month or 'all'}.csv"
        return Response(
            "\ufeff" + body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
