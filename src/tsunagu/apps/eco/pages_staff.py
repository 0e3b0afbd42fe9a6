"""The programme's pages: environment staff (devices, rewards, reports, lots), the verifier,
companies (buy, hold, retire) and the municipality's dashboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.api import (
    RewardBody,
    SuspendBody,
    approve_device,
    reinstate_device,
    submit,
    suspend_device,
    view,
)
from tsunagu.apps.eco.api_credits import ReportBody, check_report_body
from tsunagu.apps.eco.devices import municipality_of
from tsunagu.apps.eco.pages import act, chart, int_field, this_month, who
from tsunagu.identity.private import User
from tsunagu.web.deps import render

ENV = ("env_staff",)
VERIFIER = ("verifier",)
COMPANY = ("company",)
DASHBOARD = ("env_staff", "staff", "verifier")


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def _lots(v: Any, keep) -> list[dict[str, Any]]:
    return [v.lot(x) for x in v.all("lot") if keep(x)]


def _managed(v: Any, user: User) -> list[dict[str, Any]]:
    """The devices ``user`` may act on: those of their own municipality (the contract refuses
    the others), every one for an administrator."""
    everywhere = "admin" in user.roles
    mine = municipality_of(v.state.get("identity.org", user.org))
    return [v.device(d) for d in v.all("device") if everywhere or d["municipality"] == mine]


def staff_page(request: Request, user: User, error: str | None = None, status: int = 200):
    v = view(request)
    devices = _managed(v, user)
    prog = v.programme()
    closed = prog["closed_through"]
    # The next report starts after the last closed month (or, for the first, last month).
    suggested_from = rules.next_month(closed) if closed else previous_month(this_month())
    return render(
        request,
        "eco/staff.html",
        status_code=status,
        error=error,
        done=request.query_params.get("done"),
        pending=[d for d in devices if d["status"] == "pending"],
        approved=[d for d in devices if d["status"] == "approved"],
        suspended=[d for d in devices if d["status"] == "suspended"],
        rewards=v.all("reward"),
        reports=v.all("report"),
        programme=prog,
        suggested_from=suggested_from,
        lots=_lots(v, lambda x: x["status"] != "retired" and x["holder"] == user.org),
    )


async def _staff_write(request: Request, user: User, form: Any) -> str:
    action = form.get("action")
    if action == "approve":
        await approve_device(request, user, str(form.get("device") or ""))
        return "approved"
    if action == "reinstate":
        body = SuspendBody(reason=str(form.get("reason") or "").strip())
        await reinstate_device(request, user, str(form.get("device") or ""), body.reason)
        return "reinstated"
    if action == "suspend":
        body = SuspendBody(reason=str(form.get("reason") or "").strip())
        await suspend_device(request, user, str(form.get("device") or ""), body.reason)
        return "suspended"
    if action == "reward":
        body = RewardBody(
            id=str(form.get("id") or ""),
            name_ja=str(form.get("name_ja") or ""),
            name_en=str(form.get("name_en") or ""),
            kind=str(form.get("kind")),  # type: ignore[arg-type]
            points=int_field(form, "points"),
            shop=str(form.get("shop") or ""),
            settlement_yen=int_field(form, "settlement_yen"),
        )
        await submit(request, user, "reward.put", body.model_dump())
        return "reward"
    if action == "compile":
        body = ReportBody(
            period_from=str(form.get("period_from") or ""),
            period_to=str(form.get("period_to") or ""),
        )
        check_report_body(body)
        await submit(request, user, "report.compile", body.model_dump())
        return "compiled"
    if action == "issue":
        await submit(request, user, "credit.issue", {"report": str(form.get("report") or "")})
        return "issued"
    if action == "list":
        payload = {"lot": str(form.get("lot") or ""), "price_yen_per_t": int_field(form, "price")}
        await submit(request, user, "credit.list", payload)
        return "listed"
    return "nothing"


def verifier_page(request: Request, user: User, error: str | None = None, status: int = 200):
    v = view(request)
    return render(
        request,
        "eco/verifier.html",
        status_code=status,
        error=error,
        done=request.query_params.get("done"),
        reports=v.all("report"),
    )


async def _verifier_write(request: Request, user: User, form: Any) -> str:
    report = str(form.get("report") or "")
    if form.get("action") == "reject":
        reason = str(form.get("reason") or "").strip() or "-"
        await submit(request, user, "report.reject", {"report": report, "reason": reason[:200]})
        return "rejected"
    await submit(request, user, "report.approve", {"report": report})
    return "approved"


def company_page(request: Request, user: User, error: str | None = None, status: int = 200):
    v = view(request)
    mine = _lots(v, lambda x: x["holder"] == user.org)
    return render(
        request,
        "eco/company.html",
        status_code=status,
        error=error,
        done=request.query_params.get("done"),
        market=_lots(
            v, lambda x: x["listing"] and x["status"] != "retired" and x["holder"] != user.org
        ),
        held=[x for x in mine if x["status"] != "retired"],
        retired=[x for x in mine if x["status"] == "retired"],
    )


async def _company_write(request: Request, user: User, form: Any) -> str:
    lot = str(form.get("lot") or "")
    tco2 = int_field(form, "tco2")
    if form.get("action") == "retire":
        purpose = str(form.get("purpose") or "").strip()
        await submit(request, user, "credit.retire", {"lot": lot, "tco2": tco2, "purpose": purpose})
        return "retired"
    await submit(request, user, "credit.buy", {"lot": lot, "tco2": tco2})
    return "bought"


def staff_routes(r: APIRouter) -> None:
    @r.get("/staff")
    def staff(request: Request) -> Response:
        user = who(request, ENV)
        return user if isinstance(user, Response) else staff_page(request, user)

    @r.post("/staff")
    async def post_staff(request: Request) -> Response:
        return await act(request, ENV, staff_page, lambda u, f: _staff_write(request, u, f))

    @r.get("/verifier")
    def verifier(request: Request) -> Response:
        user = who(request, VERIFIER)
        return user if isinstance(user, Response) else verifier_page(request, user)

    @r.post("/verifier")
    async def post_verifier(request: Request) -> Response:
        return await act(
            request, VERIFIER, verifier_page, lambda u, f: _verifier_write(request, u, f)
        )

    @r.get("/company")
    def company(request: Request) -> Response:
        user = who(request, COMPANY)
        return user if isinstance(user, Response) else company_page(request, user)

    @r.post("/company")
    async def post_company(request: Request) -> Response:
        return await act(request, COMPANY, company_page, lambda u, f: _company_write(request, u, f))

    @r.get("/dashboard")
    def dashboard(request: Request) -> Response:
        user = who(request, DASHBOARD)
        if isinstance(user, Response):
            return user
        data = view(request).dashboard()
        return render(request, "eco/dashboard.html", data=data, chart=chart(data["by_month"]))
