"""Relief API: the overview by shelter, municipality and item, and the HXL-tagged CSV exports."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from tsunagu.apps.relief.api import PRIORITY_ORDER, Slug
from tsunagu.apps.relief.contract import remaining
from tsunagu.apps.relief.view import View
from tsunagu.identity.private import User
from tsunagu.places import municipalities
from tsunagu.web.csvsafe import SafeWriter
from tsunagu.web.deps import current_user, services
from tsunagu.web.filters import tokyo_time

# The figures of an overview row (see :func:`overview_for`).
FIGURES = ("requested", "matched", "shipped", "received", "short", "unmet")


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
    by priority; packages by stage (the packages listed: those the user may see). ``GET
    /overview`` and the overview page both answer with this.

    The figures of a row, so that needed = matched + unmet and matched >= shipped >= received:

    - ``requested`` (needed): the quantity of the needs; a cancelled need counts only what was
      matched to it before it was cancelled;
    - ``matched``: goods still on their way (awaiting shipment or in transit) or received; what
      a partial or damaged receipt fell short by is not counted (the need takes it back, it is
      proposed again and counted in ``unmet``), nor are cancelled matches;
    - ``shipped``: goods in transit or received;
    - ``received``: goods received in usable condition;
    - ``short``: shipped but not received (missing or damaged), already counted in ``unmet``
      or in a new match;
    - ``unmet``: what the needs still lack, for new matches."""
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
                **dict.fromkeys(FIGURES, 0),
            }
        return rows[key]

    for n in needs:
        totals = row(n["shelter"], n["item"], n["municipality"])
        totals["requested"] += n["matched"] if n["status"] == "cancelled" else n["quantity"]
        totals["unmet"] += remaining(n)
    for m in matches:
        totals = row(m["shelter"], m["item"], m["municipality"])
        sent = 0 if m["status"] == "cancelled" else m["quantity"]
        got = m["receipt"]["quantity"] if m["status"] == "received" else sent
        totals["matched"] += got
        if m["status"] in ("shipped", "received"):
            totals["shipped"] += got
            totals["short"] += sent - got
        if m["status"] == "received":
            totals["received"] += got
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
    listed = sorted(
        (m for m in matches if view.may_see(user, m)),
        key=lambda m: (-m["timeline"][-1]["height"], m["id"]),
    )
    return {
        "scope": {"shelter": shelter, "municipality": municipality},
        "shelters": sorted(rows.values(), key=lambda t: (t["shelter"], t["item"])),
        "unmet_by_priority": unmet,
        "packages": packages,
        "in_transit": [view.match(m) for m in listed if m["status"] == "shipped"],
        "received": [view.match(m) for m in listed if m["status"] == "received"][:50],
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
        staff) or municipality (coordinators), else everything.

        Per row, needed (``requested``) = ``matched`` + ``unmet``: ``matched`` counts goods
        awaiting shipment, in transit or received, never what a partial or damaged receipt
        fell short by (``short``: the need takes it back and it is proposed again);
        ``shipped`` counts goods in transit or received."""
        return overview_for(request, user, shelter, municipality)

    @r.get("/export/{kind}.csv", response_class=Response)
    def export(
        request: Request,
        kind: Literal["needs", "offers", "shipments"],
        user: Annotated[User, Depends(current_user)],
    ) -> Response:
        """CSV for spreadsheets and humanitarian tools: a bilingual header row (「状態 Status」),
        then HXL 1.1 hashtags (https://hxlstandard.org/standard/1-1final/dictionary/), then the
        data. States, priorities, conditions and receipt outcomes read 「受付中 (open)」; dates
        are dates in Japan (Asia/Tokyo). Locations are the municipality's published
        coordinates, never a street address. Text cells that a spreadsheet would run as a
        formula (= + - @ tab CR) start with '."""
        view = View(request)
        catalog = services(request).catalog

        def named(kind_: str) -> Callable[[str | None], str | None]:
            def name(value: str | None) -> str | None:
                if value is None:
                    return None
                ja = catalog.gettext("ja", f"relief-{kind_}:{value}", "relief")
                return value if ja.startswith("relief-") else f"{ja} ({value})"

            return name

        columns, records = EXPORTS[kind](view, named)
        out = io.StringIO()
        writer = SafeWriter(out, lineterminator="\r\n")
        writer.writerow([header for header, _, _ in columns])
        writer.writerow([tag for _, tag, _ in columns])
        for record in records:
            writer.writerow([get(record) for _, _, get in columns])
        headers = {"Content-Disposition": f'attachment; filename="relief-{kind}.csv"'}
        # A byte order mark so that spreadsheet programs read the Japanese as UTF-8.
        return Response(
            "\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers
        )


Column = tuple[str, str, Callable[[dict[str, Any]], Any]]
Namer = Callable[[str], Callable[[str | None], str | None]]


def jst_date(at: str | None) -> str | None:
    """The date in Japan (Asia/Tokyo) of a UTC timestamp: 23:30 UTC is the next day's 08:30."""
    return tokyo_time(at, "%Y-%m-%d") or None


def _place_columns(key: str, attribute: str = "", label: str = "") -> list[Column]:
    """Municipality code, names and published coordinates of ``record[key]``."""
    places = municipalities()
    ja, en = {"": ("", ""), "dest": ("（届け先）", " (destination)")}.get(
        label, ("（発送元）", " (origin)")
    )

    def field(get):
        return lambda r: get(places[r[key]]) if r[key] in places else None

    return [
        (f"自治体コード{ja} Municipality code{en}", f"#adm2+code{attribute}", lambda r: r[key]),
        (
            f"自治体名{ja} Municipality (ja){en}",
            f"#adm2+name+i_ja{attribute}",
            field(lambda p: p.name_ja),
        ),
        (
            f"自治体名（英語）{ja} Municipality (en){en}",
            f"#adm2+name+i_en{attribute}",
            field(lambda p: p.name_en),
        ),
        (f"緯度{ja} Latitude{en}", f"#geo+lat{attribute}", field(lambda p: p.lat)),
        (f"経度{ja} Longitude{en}", f"#geo+lon{attribute}", field(lambda p: p.lon)),
    ]


def _item_columns(view: View) -> list[Column]:
    return [
        ("品目コード Item code", "#item+code", lambda r: r["item"]),
        ("品目 Item (ja)", "#item+name+i_ja", lambda r: view.item_names(r["item"])[0]["ja"]),
        (
            "品目（英語） Item (en)",
            "#item+name+i_en",
            lambda r: view.item_names(r["item"])[0]["en"],
        ),
        ("単位 Unit", "#item+unit", lambda r: r["unit"]),
    ]


def _org_columns(view: View, key: str, attribute: str = "") -> list[Column]:
    return [
        ("組織ID Organisation ID", f"#org+code{attribute}", lambda r: r[key]),
        (
            "組織名 Organisation (ja)",
            f"#org+name+i_ja{attribute}",
            lambda r: view.org_name(r[key])["ja"],
        ),
        (
            "組織名（英語） Organisation (en)",
            f"#org+name+i_en{attribute}",
            lambda r: view.org_name(r[key])["en"],
        ),
    ]


def _names(ids: list[str] | None) -> str | None:
    names = View.allergen_names(ids)
    return None if names is None else "・".join(a["ja"] for a in names)


def _posted(r: dict[str, Any]) -> str | None:
    return jst_date(r["history"][0]["at"])


def _needs_export(view: View, named: Namer):
    status, priority, condition = named("status"), named("priority"), named("condition")
    columns: list[Column] = [
        ("要望ID Need ID", "#meta+id", lambda r: r["id"]),
        ("状態 Status", "#status", lambda r: status(r["status"])),
        ("優先度 Priority", "#severity", lambda r: priority(r["priority"])),
        *_item_columns(view),
        ("必要数 Quantity needed", "#indicator+num+needed", lambda r: r["quantity"]),
        ("マッチング済み Matched", "#indicator+num+matched", lambda r: r["matched"]),
        ("受領数 Received", "#indicator+num+received", lambda r: r["received"]),
        ("残り Remaining", "#indicator+num+remaining", remaining),
        (
            "除去アレルゲン Allergen-free",
            "#item+allergen_free",
            lambda r: _names(r["allergen_free"]),
        ),
        ("サイズ Size", "#item+size", lambda r: r["size"]),
        ("状態（新品/中古） Condition", "#item+condition", lambda r: condition(r["condition"])),
        ("必要期限 Needed by", "#date+needed", lambda r: r["needed_by"]),
        ("登録日（日本時間） Posted (JST)", "#date+reported", _posted),
        *_org_columns(view, "shelter"),
        ("避難所 Shelter (ja)", "#loc+name+i_ja", lambda r: view.org_name(r["shelter"])["ja"]),
        (
            "避難所（英語） Shelter (en)",
            "#loc+name+i_en",
            lambda r: view.org_name(r["shelter"])["en"],
        ),
        *_place_columns("municipality"),
    ]
    records = sorted(view.all("need"), key=lambda r: (r["history"][0]["height"], r["id"]))
    return columns, records


def _offers_export(view: View, named: Namer):
    status, condition = named("status"), named("condition")
    columns: list[Column] = [
        ("提供ID Offer ID", "#meta+id", lambda r: r["id"]),
        ("状態 Status", "#status", lambda r: status(r["status"])),
        *_item_columns(view),
        ("提供数 Quantity offered", "#indicator+num+offered", lambda r: r["quantity"]),
        ("マッチング済み Matched", "#indicator+num+matched", lambda r: r["matched"]),
        ("残り Remaining", "#indicator+num+remaining", remaining),
        ("含むアレルゲン Allergens contained", "#item+allergens", lambda r: _names(r["allergens"])),
        ("サイズ Size", "#item+size", lambda r: r["size"]),
        ("状態（新品/中古） Condition", "#item+condition", lambda r: condition(r["condition"])),
        ("賞味期限 Expiry", "#date+expiry", lambda r: r["expiry"]),
        ("発送可能期限 Ship by", "#date+ship_by", lambda r: r["ship_by"]),
        ("登録日（日本時間） Posted (JST)", "#date+reported", _posted),
        *_org_columns(view, "org"),
        *_place_columns("ship_from"),
    ]
    records = sorted(view.all("offer"), key=lambda r: (r["history"][0]["height"], r["id"]))
    return columns, records


def _event_at(record: dict[str, Any], action: str) -> str | None:
    return next((jst_date(e["at"]) for e in record["timeline"] if e["action"] == action), None)


def _shipments_export(view: View, named: Namer):
    status, outcome = named("status"), named("outcome")
    receipt = lambda key: lambda r: (r["receipt"] or {}).get(key)  # noqa: E731
    columns: list[Column] = [
        ("マッチングID Match ID", "#meta+id", lambda r: r["id"]),
        ("要望ID Need ID", "#meta+need", lambda r: r["need"]),
        ("提供ID Offer ID", "#meta+offer", lambda r: r["offer"]),
        ("状態 Status", "#status", lambda r: status(r["status"])),
        *_item_columns(view),
        ("数量 Quantity", "#indicator+num+shipped", lambda r: r["quantity"]),
        ("受領数 Received quantity", "#indicator+num+received", receipt("quantity")),
        ("受領結果 Receipt", "#status+receipt", lambda r: outcome(receipt("outcome")(r))),
        (
            "マッチング日（日本時間） Matched on (JST)",
            "#date+matched",
            lambda r: _event_at(r, "matched"),
        ),
        ("発送日（日本時間） Shipped on (JST)", "#date+shipped", lambda r: _event_at(r, "shipped")),
        (
            "受領日（日本時間） Received on (JST)",
            "#date+received",
            lambda r: _event_at(r, "received"),
        ),
        ("運送会社 Carrier", "#org+name+carrier", lambda r: (r["shipment"] or {}).get("carrier")),
        ("送り主ID Sender ID", "#org+code+sender", lambda r: r["sender"]),
        ("送り主 Sender (ja)", "#org+name+i_ja+sender", lambda r: view.org_name(r["sender"])["ja"]),
        ("届け先避難所ID Destination shelter ID", "#loc+code+dest", lambda r: r["shelter"]),
        (
            "届け先 Destination (ja)",
            "#loc+name+i_ja+dest",
            lambda r: view.org_name(r["shelter"])["ja"],
        ),
        (
            "届け先（英語） Destination (en)",
            "#loc+name+i_en+dest",
            lambda r: view.org_name(r["shelter"])["en"],
        ),
        *_place_columns("municipality", "+dest", "dest"),
        *_place_columns("ship_from", "+origin", "origin"),
    ]
    records = sorted(view.all("match"), key=lambda r: (r["timeline"][0]["height"], r["id"]))
    return columns, records


EXPORTS = {"needs": _needs_export, "offers": _offers_export, "shipments": _shipments_export}
