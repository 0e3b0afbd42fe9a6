"""J-Credit API: monitoring reports, lots, their trace, sale, retirement and certificates,
and the municipality's dashboard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import Field

from tsunagu.apps.eco.api import CREDIT_VIEW_ROLES, In, Slug, submit, view, written
from tsunagu.apps.eco.certificate import certificate_pdf
from tsunagu.apps.eco.view import EcoView
from tsunagu.errors import InvalidInput, NotFound
from tsunagu.identity.private import User
from tsunagu.web.deps import current_user, require_roles, services

Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Tonnes = Annotated[int, Field(gt=0, le=10**9)]


class ReportBody(In):
    period_from: Month
    period_to: Month


class ReasonBody(In):
    reason: Text


class ListBody(In):
    price_yen_per_t: Annotated[int, Field(gt=0, le=10**7)]


class BuyBody(In):
    tco2: Tonnes


class TransferBody(In):
    tco2: Tonnes
    to: Slug


class RetireBody(In):
    tco2: Tonnes
    purpose: Text


env_role = require_roles("env_staff")
verifier_role = require_roles("verifier")
company_role = require_roles("company")
credit_viewer = require_roles(*CREDIT_VIEW_ROLES)
dashboard_role = require_roles("env_staff", "staff", "verifier")


def check_report_body(body: ReportBody) -> None:
    if body.period_to < body.period_from:
        raise InvalidInput(
            "The period ends before it starts.",
            "対象期間の終わりが始まりより前です。",
            code="bad_period",
        )


def public_lot(v: EcoView, lot: dict[str, Any]) -> dict[str, Any]:
    """What anyone may check about a lot (the certificate's QR leads here): no prices."""
    out = v.lot(lot)
    out.pop("listing")
    out["history"] = [
        {k: e[k] for k in ("action", "tx_id", "at") if k in e} | {"tco2": e.get("tco2")}
        for e in lot["history"]
    ]
    report = v.get("report", lot["report"]) or {}
    out["report_period"] = [report.get("period_from"), report.get("period_to")]
    return out


def credit_routes(r: APIRouter) -> None:
    _report_routes(r)
    _lot_routes(r)

    @r.get("/dashboard")
    def dashboard(
        request: Request, _user: Annotated[User, Depends(dashboard_role)]
    ) -> dict[str, Any]:
        """Reductions by month, kind and municipality; points issued, redeemed, expired;
        credits issued, sold, retired."""
        return view(request).dashboard()


def _report_routes(r: APIRouter) -> None:
    @r.get("/reports")
    def reports(request: Request, _user: Annotated[User, Depends(credit_viewer)]) -> dict[str, Any]:
        v = view(request)
        return {
            "reports": [
                {k: x[k] for k in x if k != "devices"} | {"devices": len(x["devices"])}
                for x in v.all("report")
            ],
            "programme": v.programme(),
        }

    @r.post("/reports", status_code=201)
    async def compile_report(
        request: Request, body: ReportBody, user: Annotated[User, Depends(env_role)]
    ) -> dict[str, Any]:
        """Compile a monitoring report over whole past months from consenting devices."""
        check_report_body(body)
        receipt = await submit(request, user, "report.compile", body.model_dump())
        return written(receipt, id=view(request).programme()["pending"])

    @r.post("/reports/{report}/approve")
    async def approve(
        request: Request, report: Slug, user: Annotated[User, Depends(verifier_role)]
    ) -> dict[str, Any]:
        return written(await submit(request, user, "report.approve", {"report": report}))

    @r.post("/reports/{report}/reject")
    async def reject(
        request: Request,
        report: Slug,
        body: ReasonBody,
        user: Annotated[User, Depends(verifier_role)],
    ) -> dict[str, Any]:
        payload = {"report": report, "reason": body.reason}
        return written(await submit(request, user, "report.reject", payload))

    @r.post("/reports/{report}/issue")
    async def issue(
        request: Request, report: Slug, user: Annotated[User, Depends(env_role)]
    ) -> dict[str, Any]:
        """Issue the whole t-CO2 of an approved report as one lot; the rest carries over."""
        receipt = await submit(request, user, "credit.issue", {"report": report})
        return written(receipt, report=view(request).get("report", report))


def _lot_routes(r: APIRouter) -> None:
    @r.get("/credits/lots")
    def lots(request: Request, _user: Annotated[User, Depends(credit_viewer)]) -> list[dict]:
        """Every lot: ``id``, ``serial_start``, ``serial_end``, ``tco2``, ``status``,
        ``holder`` (environment and municipal staff, verifiers, the consortium admin)."""
        v = view(request)
        return [v.lot(x) for x in v.all("lot")]

    @r.get("/credits/lots/{lot}/trace")
    def trace(
        request: Request, lot: Slug, _user: Annotated[User, Depends(credit_viewer)]
    ) -> dict[str, Any]:
        """Exactly the signed readings behind the lot's serials: ``readings``, each with
        ``tx_id``, ``grams`` (the part inside this lot and ``serial``), ``report`` (whose
        readings hold it), ``carried`` (carried in from an earlier report, listed first),
        ``reading_grams``, ``proof_url`` (its inclusion proof) and ``tx_url``; the grams add
        up to ``tco2`` × 1,000,000 (docs/eco.md, Trace)."""
        v = view(request)
        return v.trace(v.found("lot", lot, "lot", "ロット"))

    @r.get("/credits/market")
    def market(request: Request, _user: Annotated[User, Depends(current_user)]) -> list[dict]:
        """Lots offered for sale, with their price per t-CO2."""
        v = view(request)
        return [v.lot(x) for x in v.all("lot") if x["listing"] and x["status"] != "retired"]

    @r.get("/credits/holdings")
    def holdings(request: Request, user: Annotated[User, Depends(current_user)]) -> list[dict]:
        """The lots the user's organisation holds or has retired."""
        v = view(request)
        return [v.lot(x) for x in v.all("lot") if x["holder"] == user.org]

    @r.get("/credits/public/{lot}")
    def public(request: Request, lot: Slug) -> dict[str, Any]:
        """A lot's serials, holder, status and retirement, for anyone to verify (public)."""
        v = view(request)
        return public_lot(v, v.found("lot", lot, "lot", "ロット"))

    @r.post("/credits/lots/{lot}/list")
    async def list_lot(
        request: Request, lot: Slug, body: ListBody, user: Annotated[User, Depends(current_user)]
    ) -> dict[str, Any]:
        payload = {"lot": lot, **body.model_dump()}
        return written(await submit(request, user, "credit.list", payload))

    @r.post("/credits/lots/{lot}/buy")
    async def buy(
        request: Request, lot: Slug, body: BuyBody, user: Annotated[User, Depends(company_role)]
    ) -> dict[str, Any]:
        receipt = await submit(request, user, "credit.buy", {"lot": lot, **body.model_dump()})
        return written(receipt, lot=_part(request, lot, receipt.tx_id))

    @r.post("/credits/lots/{lot}/transfer")
    async def transfer(
        request: Request,
        lot: Slug,
        body: TransferBody,
        user: Annotated[User, Depends(current_user)],
    ) -> dict[str, Any]:
        receipt = await submit(request, user, "credit.transfer", {"lot": lot, **body.model_dump()})
        return written(receipt, lot=_part(request, lot, receipt.tx_id))

    @r.post("/credits/lots/{lot}/retire")
    async def retire(
        request: Request,
        lot: Slug,
        body: RetireBody,
        user: Annotated[User, Depends(current_user)],
    ) -> dict[str, Any]:
        """Retire (無効化) credits for good, with a purpose; returns the retired lot."""
        receipt = await submit(request, user, "credit.retire", {"lot": lot, **body.model_dump()})
        return written(receipt, lot=_part(request, lot, receipt.tx_id))

    @r.get("/credits/lots/{lot}/certificate.pdf")
    def certificate(request: Request, lot: Slug) -> Response:
        """The retirement certificate (Japanese PDF) with a QR to the public page (public)."""
        v = view(request)
        record = v.found("lot", lot, "lot", "ロット")
        if record["status"] != "retired":
            raise NotFound(
                "Only retired credits have a certificate.",
                "無効化されたクレジットにのみ証明書があります。",
                code="not_retired",
            )
        base = services(request).base_url(str(request.base_url))
        pdf = certificate_pdf(v.lot(record), f"{base}/eco/credits/{lot}")
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{lot}.pdf"'},
        )


def _part(request: Request, lot: str, tx_id: str) -> str:
    """The lot a buy, transfer or retirement produced: the lot itself, or the part split off."""
    v = view(request)
    for record in v.all("lot"):
        mine = record["id"] == lot or record["id"].startswith(lot + "-")
        if mine and any(e["tx_id"] == tx_id and e["action"] != "split" for e in record["history"]):
            return record["id"]
    raise NotFound()
