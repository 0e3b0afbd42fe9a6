"""A lot's trace: exactly the signed readings, and the parts of readings, behind its serials.

An issued report's reductions are laid out in one fixed order, its *contributions*: first the
grams carried in from the previous issued report, which are the last grams of that report's
own order (so they resolve to its readings, and further back when it issued nothing), then
the report's own readings with grams, in log order. Serial ``first + i`` of the report's
lot is the slice ``[i × 1,000,000, (i + 1) × 1,000,000)`` g of that order; what lies after
the last whole tonne is carried out to the next report (never rounded up).

A lot, or a part split off it by a sale, transfer or retirement (a sub-range of the serials),
lists the pieces of contributions inside its slices: a reading across a serial boundary is
listed once per serial it falls in, with the grams inside that serial. So a lot's trace adds
up to its t-CO2 × 1,000,000 g exactly, and the traces of a lot's parts partition the trace
of the lot they were split from. Nothing here decides a rule: it reads the committed state
and the reading index (:mod:`index`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.index import index_for

TONNE_G = 1_000_000
PROOF = "/api/v1/log/proof/inclusion"


@dataclass(frozen=True)
class Piece:
    """A run of one reading's grams in a report's order: ``grams`` from ``start`` on."""

    report: str  # the report whose readings hold it
    reading: dict[str, Any]
    start: int
    grams: int


def _number(report_id: str) -> int:
    return int(report_id.rsplit("-", 1)[-1])


class Tracer:
    """Traces over one committed state (an :class:`~tsunagu.apps.eco.view.EcoView`)."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.index = index_for(view.node)
        self.issued = sorted(
            (r for r in view.all("report") if r["status"] == "issued"),
            key=lambda r: _number(r["id"]),
        )
        self._own: dict[str, list[dict[str, Any]]] = {}

    def own(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        """The report's readings that count grams, in log order."""
        if report["id"] not in self._own:
            found = self.index.readings(
                list(report["devices"]), report["period_from"], report["period_to"]
            )
            self._own[report["id"]] = sorted(
                (r for r in found if r["grams"] > 0), key=lambda r: r["log_index"]
            )
        return self._own[report["id"]]

    def previous(self, report: dict[str, Any]) -> dict[str, Any] | None:
        """The issued report before ``report``: the one its carried-in grams came from."""
        before = [r for r in self.issued if _number(r["id"]) < _number(report["id"])]
        return before[-1] if before else None

    def tail(self, report: dict[str, Any] | None, amount: int) -> list[Piece]:
        """The last ``amount`` grams of ``report``'s contributions (what it carried out)."""
        out: list[Piece] = []
        if report is None:
            return out
        for reading in reversed(self.own(report)):
            if amount == 0:
                break
            take = min(reading["grams"], amount)
            out.append(Piece(report["id"], reading, reading["grams"] - take, take))
            amount -= take
        out.reverse()
        if amount:  # more than its own readings: part of what it carried in, carried on
            out = self.tail(self.previous(report), amount) + out
        return out

    def contributions(self, report: dict[str, Any]) -> list[Piece]:
        """The report's grams in order: carried in first, then its own readings."""
        pieces = self.tail(self.previous(report), report.get("carry_in_g", 0))
        return pieces + [Piece(report["id"], r, 0, r["grams"]) for r in self.own(report)]

    def first_serial(self, report: dict[str, Any]) -> int:
        """The first serial the report issued (its lot's parts partition its range)."""
        return min(x["serial_start"] for x in self.view.all("lot") if x["report"] == report["id"])

    def entries(
        self, lot: dict[str, Any], report: dict[str, Any], size: int
    ) -> list[dict[str, Any]]:
        """The pieces of the report's contributions inside ``lot``'s serials, one per
        reading and serial (proofs against the log of ``size`` leaves)."""
        first = self.first_serial(report)
        low = (lot["serial_start"] - first) * TONNE_G
        high = (lot["serial_end"] - first + 1) * TONNE_G
        out: list[dict[str, Any]] = []
        offset = 0
        for piece in self.contributions(report):
            begin, end = max(offset, low), min(offset + piece.grams, high)
            offset += piece.grams
            while begin < end:
                serial_end = (begin // TONNE_G + 1) * TONNE_G
                grams = min(end, serial_end) - begin
                out.append(self._entry(piece, first + begin // TONNE_G, grams, report, size))
                begin += grams
            if offset >= high:
                break
        return out

    @staticmethod
    def _entry(
        piece: Piece, serial: int, grams: int, report: dict[str, Any], size: int
    ) -> dict[str, Any]:
        r = piece.reading
        return {
            "tx_id": r["tx_id"],
            "grams": grams,
            "serial": serial,
            "serial_id": rules.format_serial(serial),
            "report": piece.report,
            "carried": piece.report != report["id"],
            "reading_grams": r["grams"],
            "device": r["device"],
            "at": r["at"],
            "log_index": r["log_index"],
            "height": r["height"],
            "proof_url": f"{PROOF}?index={r['log_index']}&tree_size={size}",
            "tx_url": f"/api/v1/tx/{r['tx_id']}",
        }

    def trace(self, lot: dict[str, Any]) -> dict[str, Any]:
        report = self.view.found("report", lot["report"], "report", "報告")
        self.index.sync()
        size = self.view.node.head.tree_size
        readings = self.entries(lot, report, size)
        carried_from: list[str] = []
        for r in readings:
            if r["carried"] and r["report"] not in carried_from:
                carried_from.append(r["report"])
        return {
            "lot": lot["id"],
            "serial_start": lot["serial_start"],
            "serial_end": lot["serial_end"],
            "tco2": lot["tco2"],
            "grams": sum(r["grams"] for r in readings),
            "report": report["id"],
            "tree_size": size,
            "period_from": report["period_from"],
            "period_to": report["period_to"],
            "report_grams": report["grams"],
            "carry_in_g": report.get("carry_in_g", 0),
            "carry_out_g": report.get("carry_out_g", 0),
            "carried_from": carried_from,
            "readings": readings,
        }
