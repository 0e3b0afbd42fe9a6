"""Relief API: the overview by shelter, municipality and item, and the HXL-tagged CSV exports."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from tsunagu.apps.relief.api import PRIORITY_ORDER, Slug
from tsunagu.apps.relief.contract import remaining
from tsunagu.apps.relief.view import View
from tsunagu.identity.private import User
from tsunagu.places import municipalities
from tsunagu.web.deps import current_user


def _scope(
    view: View, user: User, shelter: str | None, municipality: str | None
) -> tuple[str | None, str | None]:
    """Whose figures: what the query asks, else the user's shelter or municipality."""
    if shelter or municipality or "admin" in user.roles:
        return shelter, municipality
    if view.org(user.org).get("type") == "shelter":
        return user.org, None
    if "coordinator" in user.roles:
        return None, view.municipality(user)
    return None, None


def _in_scope(record: dict[str, Any], shelter: str | None, municipality: str | None) -> bool:
    return (shelter is None or record["shelter"] == shelter) and (
        municipality is None or record["municipality"] == municipality
    )


def overview_for(
    request: Request, user: User, shelter: str | None = None, municipality: str | None = None
) -> dict[str, Any]:
    """Needs against matched, shipped and received goods per shelter and item; unmet needs
    by priority; packages by stage. ``GET /overview`` and the overview page both answer
    with this."""
    view = View(request)
    shelter, municipality = _scope(view, user, shelter, municipality)
    needs = [n for n in view.all("need") if _in_scope(n, shelter, municipality)]
    matches = [m for m in view.all("match") if _in_scope(m, shelter, municipality)]
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(shelter_id: str, item_id: str, place: str) -> dict[str, Any]:
        key = (shelter_id, item_id)
        if key not in rows:
            item, unit = view.item_names(item_id)
            rows[key] = {
                "shelter": shelter_id,
                "shelter_name": view.org_name(shelter_id),
                "municipality": place,
                "municipality_name": view.place_name(place),
                "item": item_id,
                "item_name": item,
                "unit_name": unit,
                **dict.fromkeys(("requested", "matched", "shipped", "received", "unmet"), 0),
            }
        return rows[key]

    for n in needs:
        totals = row(n["shelter"], n["item"], n["municipality"])
        if n["status"] != "cancelled":
            totals["requested"] += n["quantity"]
        totals["received"] += n["received"]
        totals["unmet"] += remaining(n)
    for m in matches:
        totals = row(m["shelter"], m["item"], m["municipality"])
        if m["status"] != "cancelled":
            totals["matched"] += m["quantity"]
        if m["status"] in ("shipped", "received"):
            totals["shipped"] += m["quantity"]
    unmet = []
    for priority in PRIORITY_ORDER:
        open_needs = [n for n in needs if n["priority"] == priority and remaining(n) > 0]
        unmet.append(
            {
                "priority": priority,
                "needs": len(open_needs),
                "by_item": [
                    {
                        "item": n["item"],
                        "item_name": view.item_names(n["item"])[0],
                        "unit_name": view.item_names(n["item"])[1],
                        "shelter": n["shelter"],
                        "unit": n["unit"],
                        "quantity": remaining(n),
                    }
                    for n in open_needs
                ],
            }
        )
    stages = ("confirmed", "shipped", "received", "cancelled")
    packages = {s: sum(m["status"] == s for m in matches) for s in stages}
    matches.sort(key=lambda m: (-m["timeline"][-1]["height"], m["id"]))
    return {
        "scope": {"shelter": shelter, "municipality": municipality},
        "shelters": sorted(rows.values(), key=lambda t: (t["shelter"], t["item"])),
        "unmet_by_priority": unmet,
        "packages": packages,
        "in_transit": [view.match(m) for m in matches if m["status"] == "shipped"],
        "received": [view.match(m) for m in matches if m["status"] == "received"][:50],
    }


def report_routes(r: APIRouter) -> None:
    @r.get("/overview")
    def overview(
        request: Request,
        user: Annotated[User, Depends(current_user)],
        shelter: Slug | None = None,
        municipality: Slug | None = None,
    ) -> dict[str, Any]:
        """Needs against matched, shipped and received goods per shelter and item; unmet
        needs by priority; packages by stage. Scope: the query, else the user's shelter (shelter
        staff) or municipality (coordinators), else everything."""
        return overview_for(request, user, shelter, municipality)

    @r.get("/export/{kind}.csv", response_class=Response)
    def export(
        request: Request,
        kind: Literal["needs", "offers", "shipments"],
        user: Annotated[User, Depends(current_user)],
    ) -> Response:
        """CSV for spreadsheets and humanitarian tools: a header row, then HXL 1.1 hashtags
        (https://hxlstandard.org/standard/1-1final/dictionary/), then the data. Locations are
        the municipality's published coordinates, never a street address."""
        view = View(request)
        columns, records = EXPORTS[kind](view)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([header for header, _, _ in columns])
        writer.writerow([tag for _, tag, _ in columns])
        for record in records:
            writer.writerow(["" if (v := get(record)) is None else v for _, _, get in columns])
        headers = {"Content-Disposition": f'attachment; filename="relief-{kind}.csv"'}
        # A byte order mark so that spreadsheet programs read the Japanese as UTF-8.
        return Response(
            "\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers
        )


def _place_columns(key: str, attribute: str = "", label: str = "") -> list[tuple[str, str, Any]]:
    """Municipality code, names and published coordinates of ``record[key]``."""
    places = municipalities()

    def field(get):
        return lambda r: get(places[r[key]]) if r[key] in places else None

    return [
        (f"Municipality code{label}", f"#adm2+code{attribute}", lambda r: r[key]),
        (f"Municipality (ja){label}", f"#adm2+name+i_ja{attribute}", field(lambda p: p.name_ja)),
        (f"Municipality (en){label}", f"#adm2+name+i_en{attribute}", field(lambda p: p.name_en)),
        (f"Latitude{label}", f"#geo+lat{attribute}", field(lambda p: p.lat)),
        (f"Longitude{label}", f"#geo+lon{attribute}", field(lambda p: p.lon)),
    ]


def _item_columns(view: View) -> list[tuple[str, str, Any]]:
    return [
        ("Item code", "#item+code", lambda r: r["item"]),
        ("Item (ja)", "#item+name+i_ja", lambda r: view.item_names(r["item"])[0]["ja"]),
        ("Item (en)", "#item+name+i_en", lambda r: view.item_names(r["item"])[0]["en"]),
        ("Unit", "#item+unit", lambda r: r["unit"]),
    ]


def _org_columns(view: View, key: str, attribute: str = "") -> list[tuple[str, str, Any]]:
    return [
        ("Organisation ID", f"#org+code{attribute}", lambda r: r[key]),
        ("Organisation (ja)", f"#org+name+i_ja{attribute}", lambda r: view.org_name(r[key])["ja"]),
        ("Organisation (en)", f"#org+name+i_en{attribute}", lambda r: view.org_name(r[key])["en"]),
    ]


def _names(ids: list[str] | None) -> str | None:
    names = View.allergen_names(ids)
    return None if names is None else "・".join(a["ja"] for a in names)


def _needs_export(view: View):
    columns = [
        ("Need ID", "#meta+id", lambda r: r["id"]),
        ("Status", "#status", lambda r: r["status"]),
        ("Priority", "#severity", lambda r: r["priority"]),
        *_item_columns(view),
        ("Quantity needed", "#indicator+num+needed", lambda r: r["quantity"]),
        ("Matched", "#indicator+num+matched", lambda r: r["matched"]),
        ("Received", "#indicator+num+received", lambda r: r["received"]),
        ("Remaining", "#indicator+num+remaining", remaining),
        ("Allergen-free", "#item+allergen_free", lambda r: _names(r["allergen_free"])),
        ("Size", "#item+size", lambda r: r["size"]),
        ("Condition", "#item+condition", lambda r: r["condition"]),
        ("Needed by", "#date+needed", lambda r: r["needed_by"]),
        ("Posted", "#date+reported", lambda r: r["history"][0]["at"][:10]),
        *_org_columns(view, "shelter"),
        ("Shelter (ja)", "#loc+name+i_ja", lambda r: view.org_name(r["shelter"])["ja"]),
        ("Shelter (en)", "#loc+name+i_en", lambda r: view.org_name(r["shelter"])["en"]),
        *_place_columns("municipality"),
    ]
    records = sorted(view.all("need"), key=lambda r: (r["history"][0]["height"], r["id"]))
    return columns, records


def _offers_export(view: View):
    columns = [
        ("Offer ID", "#meta+id", lambda r: r["id"]),
        ("Status", "#status", lambda r: r["status"]),
        *_item_columns(view),
        ("Quantity offered", "#indicator+num+offered", lambda r: r["quantity"]),
        ("Matched", "#indicator+num+matched", lambda r: r["matched"]),
        ("Remaining", "#indicator+num+remaining", remaining),
        ("Allergens contained", "#item+allergens", lambda r: _names(r["allergens"])),
        ("Size", "#item+size", lambda r: r["size"]),
        ("Condition", "#item+condition", lambda r: r["condition"]),
        ("Expiry", "#date+expiry", lambda r: r["expiry"]),
        ("Ship by", "#date+ship_by", lambda r: r["ship_by"]),
        ("Posted", "#date+reported", lambda r: r["history"][0]["at"][:10]),
        *_org_columns(view, "org"),
        *_place_columns("ship_from"),
    ]
    records = sorted(view.all("offer"), key=lambda r: (r["history"][0]["height"], r["id"]))
    return columns, records


def _event_at(record: dict[str, Any], action: str) -> str | None:
    return next((e["at"][:10] for e in record["timeline"] if e["action"] == action), None)


def _shipments_export(view: View):
    receipt = lambda key: lambda r: (r["receipt"] or {}).get(key)  # noqa: E731
    columns = [
        ("Match ID", "#meta+id", lambda r: r["id"]),
        ("Need ID", "#meta+need", lambda r: r["need"]),
        ("Offer ID", "#meta+offer", lambda r: r["offer"]),
        ("Status", "#status", lambda r: r["status"]),
        *_item_columns(view),
        ("Quantity", "#indicator+num+shipped", lambda r: r["quantity"]),
        ("Received quantity", "#indicator+num+received", receipt("quantity")),
        ("Receipt", "#status+receipt", receipt("outcome")),
        ("Matched on", "#date+matched", lambda r: _event_at(r, "matched")),
        ("Shipped on", "#date+shipped", lambda r: _event_at(r, "shipped")),
        ("Received on", "#date+received", lambda r: _event_at(r, "received")),
        ("Carrier", "#org+name+carrier", lambda r: (r["shipment"] or {}).get("carrier")),
        ("Sender ID", "#org+code+sender", lambda r: r["sender"]),
        ("Sender (ja)", "#org+name+i_ja+sender", lambda r: view.org_name(r["sender"])["ja"]),
        ("Destination shelter ID", "#loc+code+dest", lambda r: r["shelter"]),
        ("Destination (ja)", "#loc+name+i_ja+dest", lambda r: view.org_name(r["shelter"])["ja"]),
        ("Destination (en)", "#loc+name+i_en+dest", lambda r: view.org_name(r["shelter"])["en"]),
        *_place_columns("municipality", "+dest", " (destination)"),
        *_place_columns("ship_from", "+origin", " (origin)"),
    ]
    records = sorted(view.all("match"), key=lambda r: (r["timeline"][0]["height"], r["id"]))
    return columns, records


EXPORTS = {"needs": _needs_export, "offers": _offers_export, "shipments": _shipments_export}
