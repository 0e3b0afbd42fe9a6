"""Relief API: the coordinator's proposal, matches, labels, shipments and receipts."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from tsunagu.apps.relief import catalog, labels
from tsunagu.apps.relief.api import (
    MatchesBody,
    ReasonBody,
    ReceiptBody,
    ShipmentBody,
    Slug,
    coordinator_role,
    found,
    missing,
    submit,
    supporter_role,
    today_jst,
    written,
)
from tsunagu.apps.relief.contract import match_id, need_in, offer_in, remaining
from tsunagu.apps.relief.matching import propose
from tsunagu.apps.relief.view import View, involved
from tsunagu.errors import Conflict, Forbidden, InvalidInput, NotFound, Rejected
from tsunagu.identity.private import User
from tsunagu.places import municipalities
from tsunagu.web.deps import current_user, services

MAX_LABELS = 100  # labels in one PDF


def cancelled_label(ids: list[str]) -> Conflict:
    """The refusal to print the label of a cancelled match: the package must not be sent."""
    return Conflict(
        f"The match is cancelled; its label cannot be printed: {', '.join(ids)}.",
        f"取り消されたマッチングのラベルは印刷できません: {', '.join(ids)}",
        code="match_cancelled",
    )


def proposal_for(request: Request, user: User) -> dict[str, Any]:
    """The optimiser's proposal for the open needs of the coordinator's municipality
    (an administrator's: all) from all open offers; nothing is written. The API's
    ``GET /proposal`` and the review page both answer with this."""
    view = View(request)
    scope = None if "admin" in user.roles else view.municipality(user)
    if scope is None and "admin" not in user.roles:
        raise Forbidden()
    places = municipalities()
    today = today_jst()
    needs = {
        n["id"]: n
        for n in view.all("need")
        if remaining(n) > 0 and (scope is None or n["municipality"] == scope)
    }
    offers = {
        o["id"]: o
        for o in view.all("offer")
        if remaining(o) > 0 and (o["expiry"] is None or o["expiry"] >= today)
    }

    def located(record: dict[str, Any], place: str, build):
        where = places.get(place)
        lat, lon = (where.lat, where.lon) if where else (0.0, 0.0)
        return dataclasses.replace(build(record), lat=lat, lon=lon)

    need_ins = [located(n, n["municipality"], need_in) for n in needs.values()]
    offer_ins = [located(o, o["ship_from"], offer_in) for o in offers.values()]
    allocations = propose(need_ins, offer_ins)
    rows = []
    for a in allocations:
        need, offer = needs[a.need_id], offers[a.offer_id]
        item, unit = view.item_names(need["item"])
        kind = getattr(catalog.item(need["item"]), "kind", None)
        rows.append(
            {
                "need_id": a.need_id,
                "offer_id": a.offer_id,
                "quantity": a.quantity,
                "distance_m": a.distance_m,
                "item": need["item"],
                "item_name": item,
                "unit": need["unit"],
                "unit_name": unit,
                "priority": need["priority"],
                "needed_by": need["needed_by"],
                "shelter": need["shelter"],
                "shelter_name": view.org_name(need["shelter"]),
                "municipality_name": view.place_name(need["municipality"]),
                "sender": offer["org"],
                "sender_name": view.org_name(offer["org"]),
                "ship_from": offer["ship_from"],
                "ship_from_name": view.place_name(offer["ship_from"]),
                "need_remaining": remaining(need),
                "offer_remaining": remaining(offer),
                # What the coordinator checks before confirming: the need's allergen-free
                # requirement against the offer's declaration, the expiry and the size.
                "food": kind in (None, "food"),
                "allergen_free_names": view.allergen_names(need["allergen_free"]),
                "allergens_declared": offer["allergens"] is not None,
                "allergen_names": view.allergen_names(offer["allergens"]),
                "expiry": offer["expiry"],
                "need_size": need.get("size"),
                "offer_size": offer.get("size"),
                "offer_condition": offer.get("condition"),
            }
        )
    filled: dict[str, int] = {}
    for a in allocations:
        filled[a.need_id] = filled.get(a.need_id, 0) + a.quantity
    unmet = [
        view.need(n) | {"unallocated": remaining(n) - filled.get(n["id"], 0)}
        for n in needs.values()
        if remaining(n) > filled.get(n["id"], 0)
    ]
    return {
        "municipality": scope,
        "allocations": rows,
        "unmet": unmet,
        "needs_considered": len(needs),
        "offers_considered": len(offers),
    }


def match_routes(r: APIRouter) -> None:
    @r.get("/proposal")
    def proposal(
        request: Request, user: Annotated[User, Depends(coordinator_role)]
    ) -> dict[str, Any]:
        """The optimiser's proposal for the open needs of the coordinator's municipality
        (an administrator's: all) from all open offers. Nothing is written: review, adjust,
        then confirm with ``POST /matches``."""
        return proposal_for(request, user)

    @r.post("/matches", status_code=201)
    async def confirm(
        request: Request, body: MatchesBody, user: Annotated[User, Depends(coordinator_role)]
    ) -> dict[str, Any]:
        """Confirm allocations as matches in ONE transaction; the contract re-checks each.
        Every match gets a fresh label code (130 random bits)."""
        allocations = [
            {
                "need": a.need_id,
                "offer": a.offer_id,
                "quantity": a.quantity,
                "code": labels.new_code(),
            }
            for a in body.allocations
        ]
        receipt = await submit(request, user, "match.confirm", {"allocations": allocations})
        return written(
            receipt,
            matches=[
                {
                    "id": match_id(receipt.tx_id, i),
                    "code": a["code"],
                    "need_id": a["need"],
                    "offer_id": a["offer"],
                    "quantity": a["quantity"],
                }
                for i, a in enumerate(allocations)
            ],
        )

    @r.get("/matches")
    def list_matches(
        request: Request,
        user: Annotated[User, Depends(current_user)],
        status: Annotated[
            str | None, Query(pattern="^(confirmed|shipped|received|cancelled)$")
        ] = None,
        shelter: Slug | None = None,
        sender: Slug | None = None,
        municipality: Slug | None = None,
        mine: bool = False,
    ) -> dict[str, Any]:
        """Matches, newest first: those the user may see (the sender's and the destination
        shelter's relief staff, the relief staff and coordinators of the shelter's municipality,
        administrators). ``mine``: sent or received by the user's organisation, for those who
        act for it in relief (a resident has none)."""
        view = View(request)
        matches = [
            m
            for m in view.all("match")
            if view.may_see(user, m)
            and (status is None or m["status"] == status)
            and (shelter is None or m["shelter"] == shelter)
            and (sender is None or m["sender"] == sender)
            and (municipality is None or m["municipality"] == municipality)
            and (not mine or involved(user, m))
        ]
        matches.sort(key=lambda m: (-m["timeline"][0]["height"], m["id"]))
        return {"matches": [view.match(m) for m in matches]}

    @r.get("/matches/{match}")
    def get_match(
        request: Request, match: Slug, user: Annotated[User, Depends(current_user)]
    ) -> dict[str, Any]:
        """One match, for those who may see it (see ``GET /matches``); for anyone else it does
        not exist (404 ``unknown_match``), so that its existence is not revealed."""
        view = View(request)
        record = view.get("match", match)
        if record is None or not view.may_see(user, record):
            raise missing("match", match)
        return {"match": view.match(record)}

    @r.post("/matches/{match}/cancel")
    async def cancel_match(
        request: Request,
        match: Slug,
        body: ReasonBody,
        user: Annotated[User, Depends(current_user)],
    ) -> dict[str, Any]:
        """Cancel a confirmed match before shipment (coordinator, sender or admin)."""
        payload = {"match": match, **body.model_dump(exclude_none=True)}
        return written(await submit(request, user, "match.cancel", payload), id=match)

    def pdf(request: Request, user: User, ids: list[str], sheet: str) -> Response:
        view = View(request)
        matches = [found(view, "match", i) for i in ids]
        if not all(view.may_print(user, m) for m in matches):
            raise Forbidden(
                "Only the sender, the destination shelter and its coordinator may print labels.",
                "ラベルを印刷できるのは、送り主・届け先の避難所・その災害対策本部だけです。",
            )
        if cancelled := [m["id"] for m in matches if m["status"] == "cancelled"]:
            raise cancelled_label(cancelled)
        base = services(request).base_url(str(request.base_url))
        body = labels.label_pdf([view.label(m, base) for m in matches], sheet)  # type: ignore[arg-type]
        name = f"relief-{ids[0]}.pdf" if len(ids) == 1 else "relief-labels.pdf"
        headers = {"Content-Disposition": f'inline; filename="{name}"'}
        return Response(body, media_type="application/pdf", headers=headers)

    @r.get("/matches/{match}/label.pdf", response_class=Response)
    def label(
        request: Request,
        match: Slug,
        user: Annotated[User, Depends(current_user)],
        sheet: Literal["a6", "a4"] = "a6",
    ) -> Response:
        """The package's label: contents, allergens, destination and the QR code."""
        return pdf(request, user, [match], sheet)

    @r.get("/labels.pdf", response_class=Response)
    def label_sheet(
        request: Request,
        user: Annotated[User, Depends(current_user)],
        ids: Annotated[str, Query(min_length=1, max_length=MAX_LABELS * 40)],
        sheet: Literal["a6", "a4"] = "a4",
    ) -> Response:
        """Several labels: ``ids`` comma-separated, four A6 labels to an A4 page."""
        wanted = list(dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()))
        if not wanted or len(wanted) > MAX_LABELS:
            raise InvalidInput(
                f"Give 1 to {MAX_LABELS} match ids.",
                f"マッチングIDを1〜{MAX_LABELS}件指定してください。",
            )
        return pdf(request, user, wanted, sheet)

    @r.post("/matches/{match}/shipment")
    async def ship(
        request: Request,
        match: Slug,
        body: ShipmentBody,
        user: Annotated[User, Depends(supporter_role)],
    ) -> dict[str, Any]:
        """⑤ The sender reports the package shipped (carrier and tracking number optional)."""
        payload = {"match": match, **body.model_dump(exclude_none=True)}
        return written(await submit(request, user, "shipment.report", payload), id=match)

    @r.post("/matches/{match}/receipt", status_code=201)
    async def receive(
        request: Request,
        match: Slug,
        body: ReceiptBody,
        user: Annotated[User, Depends(current_user)],
    ) -> Response:
        """⑦ The destination shelter records the receipt: full, partial (counted quantity) or
        damaged (note). A device resending the same ``client_ref`` gets the original receipt
        back (200) instead of an error: sent when back online, recorded exactly once."""
        view = View(request)
        record = found(view, "match", match)
        if replay := _same_receipt(record, user, body.client_ref):
            return JSONResponse(replay)
        payload = {"match": match, **body.model_dump(exclude_none=True)}
        try:
            receipt = await submit(request, user, "receipt.report", payload)
        except Rejected as exc:
            # Two sends of one receipt may race; the second one lost to the first, not to
            # another receipt, so it gets the first one's answer.
            if exc.code == "already_received":
                again = View(request).get("match", match) or record
                if replay := _same_receipt(again, user, body.client_ref):
                    return JSONResponse(replay)
            raise
        now = View(request).get("match", match) or record
        return JSONResponse(
            written(receipt, id=match, receipt=now["receipt"], replayed=False), status_code=201
        )

    @r.get("/r/{code}")
    def by_code(request: Request, code: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
        """⑦ What a package's QR code shows, without opening the box (public, no personal
        data): contents, allergens, sender, destination, status and timeline."""
        view = View(request)
        entry = view.get("code", code) if code.isascii() else None
        match = view.get("match", entry["match"]) if entry else None
        if match is None:
            raise NotFound(
                "No package has this code.", "このコードの荷物はありません。", code="unknown_code"
            )
        return view.public(match)


def _same_receipt(match: dict[str, Any], user: User, client_ref: str) -> dict[str, Any] | None:
    receipt = match.get("receipt")
    if not receipt or receipt["client_ref"] != client_ref or receipt["org"] != user.org:
        return None
    event = next(e for e in match["timeline"] if e["action"] == "received")
    return {
        "tx_id": event["tx_id"],
        "height": event["height"],
        "id": match["id"],
        "receipt": receipt,
        "replayed": True,
    }
