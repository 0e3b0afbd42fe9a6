"""Monitoring reports and J-Credit lots: the programme's side.

State (namespace ``eco``):

- ``programme/main``  ``{"closed_through": "YYYY-MM" | None, "carry_g", "next_serial",
                        "reports", "pending": report id | None}``
- ``report/<r-NNNN>`` a monitoring report: its period, the grams of each consenting device in
                      it, its status (compiled, approved, rejected, issued) and the carry-over
- ``lot/<lot-…>``     whole t-CO2 credits with a serial range, a holder organisation and a
                      status (issued, transferred, retired)

How the invariants hold by construction:

- *No reading in two lots.* A report covers whole months right after the previous report's
  (``closed_through``); once compiled, readings stamped in those months are refused, so a
  device-month's grams are final and belong to exactly one report, which issues at most one
  lot. The grams below a whole tonne carry over as an amount, never as readings.
- *A retired serial never moves.* Every lot operation refuses a retired lot; selling or
  retiring part of a lot splits it, and the two parts' serial ranges partition the original.
- *Nobody sells more than they hold.* Buying, transferring or retiring ``n`` t-CO2 needs a
  lot of the signer's organisation with at least ``n``.
"""

from __future__ import annotations

from typing import Any

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.payloads import (
    CreditBuy,
    CreditList,
    CreditRetire,
    CreditTransfer,
    ReportCompile,
    ReportRef,
    ReportReject,
)
from tsunagu.contracts import TxContext

BUYER_ROLES = ("company",)


def _event(ctx: TxContext, action: str, **extra: Any) -> dict[str, Any]:
    return {"action": action, "tx_id": ctx.tx_id, "at": ctx.timestamp, "org": ctx.signer.org} | {
        k: v for k, v in extra.items() if v is not None
    }


class CreditRules:
    """Handlers for reports and credits (mixed into :class:`EcoContract`)."""

    @staticmethod
    def _programme(ctx: TxContext) -> dict[str, Any]:
        return ctx.get("programme", "main") or {
            "closed_through": None,
            "carry_g": 0,
            "next_serial": 1,
            "reports": 0,
            "lots": 0,
            "pending": None,
        }

    @staticmethod
    def _report(ctx: TxContext, key: str) -> dict[str, Any]:
        report = ctx.get("report", key)
        if report is None:
            ctx.reject("unknown_report", f"No report {key}.", f"報告 {key} はありません。")
        return report  # type: ignore[return-value]

    # -- reports -----------------------------------------------------------------------

    def on_report_compile(self, ctx: TxContext, p: ReportCompile) -> None:
        ctx.require_role("env_staff")
        prog = self._programme(ctx)
        if prog["pending"] is not None:
            ctx.reject(
                "report_pending",
                f"Report {prog['pending']} is still waiting for its verification or issuance.",
                f"報告 {prog['pending']} の検証・発行がまだ終わっていません。",
            )
        closed = prog["closed_through"]
        if closed is not None and p.period_from != rules.next_month(closed):
            ctx.reject(
                "period_gap",
                f"The next report starts in {rules.next_month(closed)}.",
                f"次の報告の対象期間は {rules.next_month(closed)} から始まります。",
            )
        if p.period_to < p.period_from:
            ctx.reject(
                "bad_period",
                "The period ends before it starts.",
                "対象期間の終わりが始まりより前です。",
            )
        if p.period_to >= rules.month_of(ctx.timestamp):
            ctx.reject(
                "period_not_over",
                "A report covers whole months that are over.",
                "報告の対象は、終了した月だけです。",
            )
        devices: dict[str, int] = {}
        kinds = {"pv": 0, "ev": 0}
        readings = 0
        for key, device in ctx.scan("device"):
            if device["status"] == "pending" or not device.get("consent"):
                continue
            grams = n = 0
            for month, row in device["months"].items():
                if p.period_from <= month <= p.period_to:
                    grams += row["g"]
                    n += row["n"]
            if grams:
                devices[key] = grams
                kinds[device["kind"]] += grams
                readings += n
        prog["reports"] += 1
        key = f"r-{prog['reports']:04d}"
        ctx.put(
            "report",
            key,
            {
                "id": key,
                "period_from": p.period_from,
                "period_to": p.period_to,
                "previous_closed": closed,
                "devices": devices,
                "grams": sum(devices.values()),
                "by_kind": kinds,
                "readings": readings,
                "status": "compiled",
                "org": ctx.signer.org,
                "lot": None,
                "history": [_event(ctx, "compiled")],
            },
        )
        prog["closed_through"] = p.period_to
        prog["pending"] = key
        ctx.put("programme", "main", prog)

    def on_report_approve(self, ctx: TxContext, p: ReportRef) -> None:
        ctx.require_role("verifier")
        report = self._report(ctx, p.report)
        if report["status"] != "compiled":
            ctx.reject(
                "not_compiled",
                f"The report is {report['status']}, not waiting for verification.",
                "この報告は検証待ちではありません。",
            )
        report["status"] = "approved"
        report["history"].append(_event(ctx, "approved"))
        ctx.put("report", report["id"], report)

    def on_report_reject(self, ctx: TxContext, p: ReportReject) -> None:
        ctx.require_role("verifier")
        report = self._report(ctx, p.report)
        if report["status"] != "compiled":
            ctx.reject(
                "not_compiled",
                "The report is not waiting for verification.",
                "この報告は検証待ちではありません。",
            )
        self._text(ctx, p.reason)  # type: ignore[attr-defined]
        report["status"] = "rejected"
        report["history"].append(_event(ctx, "rejected", reason=p.reason))
        ctx.put("report", report["id"], report)
        prog = self._programme(ctx)
        prog["closed_through"] = report["previous_closed"]  # its months open again
        prog["pending"] = None
        ctx.put("programme", "main", prog)

    def on_credit_issue(self, ctx: TxContext, p: ReportRef) -> None:
        ctx.require_role("env_staff")
        report = self._report(ctx, p.report)
        if report["status"] != "approved":
            ctx.reject(
                "not_approved",
                "Credits are issued only from a report a verifier has approved.",
                "クレジットは、検証機関が承認した報告からのみ発行できます。",
            )
        prog = self._programme(ctx)
        carry_in = prog["carry_g"]
        tco2, carry_out = rules.tonnes_and_carry(report["grams"] + carry_in)
        report.update(status="issued", carry_in_g=carry_in, carry_out_g=carry_out, tco2=tco2)
        prog["carry_g"] = carry_out
        prog["pending"] = None
        if tco2:
            prog["lots"] += 1
            lot = f"lot-{prog['lots']:04d}"
            start = prog["next_serial"]
            prog["next_serial"] = start + tco2
            report["lot"] = lot
            ctx.put(
                "lot",
                lot,
                {
                    "id": lot,
                    "root": lot,
                    "report": report["id"],
                    "serial_start": start,
                    "serial_end": start + tco2 - 1,
                    "tco2": tco2,
                    "status": "issued",
                    "holder": report["org"],
                    "issuer": report["org"],
                    "listing": None,
                    "parts": 0,
                    "retirement": None,
                    "history": [_event(ctx, "issued", tco2=tco2)],
                },
            )
        report["history"].append(_event(ctx, "issued", tco2=tco2))
        ctx.put("report", report["id"], report)
        ctx.put("programme", "main", prog)

    # -- lots --------------------------------------------------------------------------

    @staticmethod
    def _lot(ctx: TxContext, key: str, tco2: int | None = None) -> dict[str, Any]:
        lot = ctx.get("lot", key)
        if lot is None:
            ctx.reject("unknown_lot", f"No lot {key}.", f"ロット {key} はありません。")
        if lot["status"] == "retired":  # type: ignore[index]
            ctx.reject(
                "lot_retired",
                "These credits are retired: a retired credit never moves again.",
                "このクレジットは無効化済みです。無効化したクレジットは移転できません。",
            )
        if tco2 is not None and tco2 > lot["tco2"]:  # type: ignore[index]
            ctx.reject(
                "exceeds_lot",
                f"The lot holds {lot['tco2']} t-CO2, less than {tco2}.",  # type: ignore[index]
                f"このロットの保有量は {lot['tco2']} t-CO2 で、{tco2} t-CO2 に足りません。",  # type: ignore[index]
            )
        return lot  # type: ignore[return-value]

    @staticmethod
    def _holds(ctx: TxContext, lot: dict[str, Any]) -> None:
        if lot["holder"] != ctx.signer.org and "admin" not in ctx.signer.roles:
            ctx.reject(
                "not_holder",
                "Only the organisation holding these credits may do this.",
                "この操作ができるのは、クレジットを保有する組織だけです。",
            )
        if not ({"env_staff", "company", "admin"} & set(ctx.signer.roles)):
            ctx.require_role("env_staff", "company")

    @staticmethod
    def _take(ctx: TxContext, lot: dict[str, Any], tco2: int, **changes: Any) -> dict[str, Any]:
        """The part of ``lot`` with its first ``tco2`` serials, changed: the lot itself when
        it is all of it, else a new lot split off (the rest keeps the later serials)."""
        if tco2 == lot["tco2"]:
            part = lot
        else:
            lot["parts"] += 1
            part = {
                **lot,
                "id": f"{lot['id']}-{lot['parts']}",
                "parent": lot["id"],
                "serial_end": lot["serial_start"] + tco2 - 1,
                "tco2": tco2,
                "parts": 0,
                "history": [_event(ctx, "split", parent=lot["id"], tco2=tco2)],
            }
            lot["serial_start"] += tco2
            lot["tco2"] -= tco2
            lot["history"].append(_event(ctx, "split", part=part["id"], tco2=tco2))
            ctx.put("lot", lot["id"], lot)
        part.update(changes)
        return part

    def on_credit_list(self, ctx: TxContext, p: CreditList) -> None:
        lot = self._lot(ctx, p.lot)
        self._holds(ctx, lot)
        lot["listing"] = {"price_yen_per_t": p.price_yen_per_t, "at": ctx.timestamp}
        lot["history"].append(_event(ctx, "listed", price_yen_per_t=p.price_yen_per_t))
        ctx.put("lot", lot["id"], lot)

    def on_credit_buy(self, ctx: TxContext, p: CreditBuy) -> None:
        ctx.require_role(*BUYER_ROLES)
        lot = self._lot(ctx, p.lot, p.tco2)
        if lot["listing"] is None:
            ctx.reject(
                "not_listed",
                "These credits are not for sale.",
                "このクレジットは販売されていません。",
            )
        if lot["holder"] == ctx.signer.org:
            ctx.reject(
                "own_lot", "You hold these credits already.", "既に保有しているクレジットです。"
            )
        price = lot["listing"]["price_yen_per_t"]
        seller = lot["holder"]
        part = self._take(ctx, lot, p.tco2, holder=ctx.signer.org, status="transferred")
        part["listing"] = None
        part["history"].append(
            _event(
                ctx,
                "sold",
                seller=seller,
                buyer=ctx.signer.org,
                tco2=p.tco2,
                price_yen=price * p.tco2,
            )
        )
        ctx.put("lot", part["id"], part)

    def on_credit_transfer(self, ctx: TxContext, p: CreditTransfer) -> None:
        lot = self._lot(ctx, p.lot, p.tco2)
        self._holds(ctx, lot)
        target = ctx.org(p.to)
        if target is None or target.get("type") not in ("company", "municipality"):
            ctx.reject(
                "bad_recipient",
                f"{p.to} is not a company or municipality.",
                f"{p.to} は企業・自治体ではありません。",
            )
        if p.to == lot["holder"]:
            ctx.reject(
                "own_lot",
                "The recipient holds these credits already.",
                "移転先が既に保有しています。",
            )
        sender = lot["holder"]
        part = self._take(ctx, lot, p.tco2, holder=p.to, status="transferred", listing=None)
        part["history"].append(_event(ctx, "transferred", sender=sender, to=p.to, tco2=p.tco2))
        ctx.put("lot", part["id"], part)

    def on_credit_retire(self, ctx: TxContext, p: CreditRetire) -> None:
        lot = self._lot(ctx, p.lot, p.tco2)
        self._holds(ctx, lot)
        self._text(ctx, p.purpose)  # type: ignore[attr-defined]
        retirement = {
            "purpose": p.purpose,
            "at": ctx.timestamp,
            "tx_id": ctx.tx_id,
            "org": lot["holder"],
            "tco2": p.tco2,
        }
        part = self._take(ctx, lot, p.tco2, status="retired", listing=None, retirement=retirement)
        part["history"].append(_event(ctx, "retired", tco2=p.tco2, purpose=p.purpose))
        ctx.put("lot", part["id"], part)
