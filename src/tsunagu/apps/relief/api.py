"""Relief supply matching API (``/api/v1/relief``).

Routes check who the user is and build transactions; the contract decides. Reads enrich the
ledger's state with names from the catalogue, the consortium's organisations and
:mod:`tsunagu.places`, so a page needs no second lookup. Every timeline event names the
transaction that recorded it (``/api/v1/tx/{tx_id}`` proves it).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.apps.relief import catalog, labels
from tsunagu.apps.relief.contract import (
    COORDINATOR_ROLES,
    MAX_ALLOCATIONS,
    NEED_ROLES,
    NOTE_LENGTH,
    SUPPORTER_ROLES,
    match_id,
    municipality_of,
    need_id,
    need_in,
    offer_id,
    offer_in,
    remaining,
)
from tsunagu.apps.relief.matching import propose
from tsunagu.apps.relief.service import Inbox, service_for
from tsunagu.errors import Forbidden, InvalidInput, NotFound, Rejected
from tsunagu.identity.private import User
from tsunagu.node.node import Receipt
from tsunagu.places import municipalities
from tsunagu.web.deps import current_user, require_roles, services
from tsunagu.web.writes import submit_as

PREFIX = "/api/v1/relief"
KEEPALIVE_SECONDS = 15.0
MAX_LABELS = 100
# A refusal's HTTP status by the contract's code (anything else is a 409 conflict).
FORBIDDEN = {
    "forbidden_role",
    "not_shelter_staff",
    "not_owner",
    "not_sender",
    "not_destination",
    "not_allowed",
    "other_municipality",
}
UNKNOWN = {"unknown_need", "unknown_offer", "unknown_match"}
BAD_INPUT = {
    "invalid_payload",
    "unknown_item",
    "wrong_unit",
    "unknown_allergen",
    "allergens_not_food",
    "size_required",
    "bad_size",
    "must_be_new",
    "expiry_required",
    "date_past",
    "unknown_place",
    "not_shelter",
    "personal_data",
    "nothing_to_change",
    "code_too_short",
    "bad_partial",
    "note_required",
    "quantity_mismatch",
    "more_than_shipped",
}
PRIORITY_ORDER = {"urgent": 0, "high": 1, "normal": 2}

IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-12-01"])]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Quantity = Annotated[int, Field(gt=0, le=10_000_000)]
Note = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NOTE_LENGTH,
        description="Kept on the ledger for good and shown to every member: never a person's "
        "name, address or phone number (phone numbers and e-mail addresses are refused).",
    ),
]


class _In(BaseModel):
    # Strict: "12" is not a quantity, and a client sending it has a bug worth hearing about.
    model_config = ConfigDict(extra="forbid", strict=True)


class NeedBody(_In):
    item: Slug
    quantity: Quantity
    unit: str | None = Field(None, description="defaults to the item's unit")
    allergen_free: Annotated[list[Slug], Field(max_length=40)] = []
    size: Annotated[str, Field(max_length=8)] | None = None
    condition: Literal["new", "any"] = "any"
    priority: Literal["urgent", "high", "normal"] = "normal"
    needed_by: IsoDate
    note: Note | None = None
    shelter: Slug | None = Field(None, description="a coordinator posting for a shelter")


class NeedPatch(_In):
    quantity: Quantity | None = None
    priority: Literal["urgent", "high", "normal"] | None = None
    needed_by: IsoDate | None = None


class ReasonBody(_In):
    reason: Note | None = None


class OfferBody(_In):
    item: Slug
    quantity: Quantity
    unit: str | None = None
    allergens: Annotated[list[Slug], Field(max_length=40)] | None = Field(
        None, description="allergens the goods contain; null: not declared"
    )
    size: Annotated[str, Field(max_length=8)] | None = None
    condition: Literal["new", "used"] = "new"
    expiry: IsoDate | None = None
    ship_from: Slug | None = Field(None, description="defaults to the user's municipality")
    ship_by: IsoDate
    note: Note | None = None


class AllocationBody(_In):
    need_id: Slug
    offer_id: Slug
    quantity: Quantity


class MatchesBody(_In):
    allocations: Annotated[list[AllocationBody], Field(min_length=1, max_length=MAX_ALLOCATIONS)]


class ShipmentBody(_In):
    carrier: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    tracking: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,40}$")] | None = None


class ReceiptBody(_In):
    outcome: Literal["full", "partial", "damaged"]
    quantity: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    note: Note | None = None
    client_ref: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] = Field(
        description="the device's idempotency key: a resent receipt gets the original answer"
    )


class SuggestBody(_In):
    counts: dict[str, Annotated[int, Field(ge=0, le=100_000)]]
    days: Annotated[int, Field(ge=1, le=catalog.MAX_DAYS)] = 3


needs_role = require_roles(*NEED_ROLES)
supporter_role = require_roles(*SUPPORTER_ROLES)
coordinator_role = require_roles(*COORDINATOR_ROLES)


# -- reading state ------------------------------------------------------------------------


class View:
    """State and names for one request."""

    def __init__(self, request: Request) -> None:
        self.state = services(request).node.store.state()
        self._orgs: dict[str, dict[str, Any]] = {}

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [v for _, v in self.state.scan(f"relief.{kind}")]

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.state.get(f"relief.{kind}", key)

    def org(self, org_id: str) -> dict[str, Any]:
        if org_id not in self._orgs:
            self._orgs[org_id] = self.state.get("identity.org", org_id) or {"id": org_id}
        return self._orgs[org_id]

    def org_name(self, org_id: str) -> dict[str, str]:
        org = self.org(org_id)
        return {"ja": org.get("name_ja", org_id), "en": org.get("name_en", org_id)}

    def municipality(self, user: User) -> str | None:
        return municipality_of(self.org(user.org))

    @staticmethod
    def place_name(place: str) -> dict[str, str]:
        m = municipalities().get(place)
        return {"ja": m.name_ja, "en": m.name_en} if m else {"ja": place, "en": place}

    @staticmethod
    def item_names(item_id: str) -> tuple[dict[str, str], dict[str, str]]:
        it = catalog.item(item_id)
        if it is None:
            return {"ja": item_id, "en": item_id}, {"ja": "", "en": ""}
        return {"ja": it.name_ja, "en": it.name_en}, {"ja": it.unit_ja, "en": it.unit_en}

    @staticmethod
    def allergen_names(ids: list[str] | None) -> list[dict[str, str]] | None:
        if ids is None:
            return None
        known = catalog.allergens()
        order = {a: i for i, a in enumerate(known)}  # the Agency's order: mandatory ones first
        return [
            known[a].to_json() if a in known else {"id": a, "ja": a, "en": a}
            for a in sorted(ids, key=lambda a: (order.get(a, len(order)), a))
        ]

    def need(self, need: dict[str, Any]) -> dict[str, Any]:
        item, unit = self.item_names(need["item"])
        return {
            **{k: v for k, v in need.items() if k != "posted_by"},
            "remaining": remaining(need),
            "item_name": item,
            "unit_name": unit,
            "shelter_name": self.org_name(need["shelter"]),
            "municipality_name": self.place_name(need["municipality"]),
            "allergen_free_names": self.allergen_names(need["allergen_free"]),
        }

    def offer(self, offer: dict[str, Any]) -> dict[str, Any]:
        item, unit = self.item_names(offer["item"])
        return {
            **{k: v for k, v in offer.items() if k != "posted_by"},
            "remaining": remaining(offer),
            "item_name": item,
            "unit_name": unit,
            "org_name": self.org_name(offer["org"]),
            "ship_from_name": self.place_name(offer["ship_from"]),
            "allergens_declared": offer["allergens"] is not None,
            "allergen_names": self.allergen_names(offer["allergens"]),
        }

    def contents(self, match: dict[str, Any]) -> dict[str, Any]:
        """What is in the package, as the need and the offer say."""
        need = self.get("need", match["need"]) or {}
        offer = self.get("offer", match["offer"]) or {}
        item = catalog.item(match["item"])
        declared = offer.get("allergens") is not None or (item is not None and item.kind != "food")
        return {
            "allergens_declared": declared,
            "allergens": self.allergen_names(offer.get("allergens") or [] if declared else None),
            "allergen_free": self.allergen_names(need.get("allergen_free", [])),
            "size": offer.get("size"),
            "condition": offer.get("condition"),
            "expiry": offer.get("expiry"),
            "priority": need.get("priority"),
            "needed_by": need.get("needed_by"),
        }

    def match(self, match: dict[str, Any]) -> dict[str, Any]:
        item, unit = self.item_names(match["item"])
        return {
            **match,
            "timeline": [
                {**e, "verify_url": f"/api/v1/tx/{e['tx_id']}"} for e in match["timeline"]
            ],
            "item_name": item,
            "unit_name": unit,
            "shelter_name": self.org_name(match["shelter"]),
            "municipality_name": self.place_name(match["municipality"]),
            "sender_name": self.org_name(match["sender"]),
            "ship_from_name": self.place_name(match["ship_from"]),
            "contents": self.contents(match),
            "page_url": f"/r/{match['code']}",
            "label_url": f"{PREFIX}/matches/{match['id']}/label.pdf",
        }

    def public(self, match: dict[str, Any]) -> dict[str, Any]:
        """What anyone holding the package's QR code may see: no notes, no tracking, no keys."""
        item, unit = self.item_names(match["item"])
        receipt = match["receipt"]
        return {
            "match_id": match["id"],
            "status": match["status"],
            "item": match["item"],
            "item_name": item,
            "quantity": match["quantity"],
            "unit": match["unit"],
            "unit_name": unit,
            "contents": self.contents(match),
            "sender": {"id": match["sender"], "name": self.org_name(match["sender"])},
            "destination": {
                "id": match["shelter"],
                "name": self.org_name(match["shelter"]),
                "municipality": match["municipality"],
                "municipality_name": self.place_name(match["municipality"]),
            },
            "ship_from": {"id": match["ship_from"], "name": self.place_name(match["ship_from"])},
            "receipt": None
            if receipt is None
            else {"outcome": receipt["outcome"], "quantity": receipt["quantity"]},
            "timeline": [
                {k: e[k] for k in ("action", "tx_id", "height", "at")}
                | {"verify_url": f"/api/v1/tx/{e['tx_id']}"}
                for e in match["timeline"]
            ],
        }

    def may_print(self, user: User, match: dict[str, Any]) -> bool:
        """Labels: the sender's users, the destination shelter's staff, the coordinator of the
        shelter's municipality, and administrators."""
        if "admin" in user.roles or user.org in (match["sender"], match["shelter"]):
            return True
        return "coordinator" in user.roles and self.municipality(user) == match["municipality"]

    def label(self, match: dict[str, Any], base_url: str) -> labels.LabelData:
        c = self.contents(match)
        item, _ = self.item_names(match["item"])
        declared = c["allergens_declared"]
        return labels.LabelData(
            match_id=match["id"],
            url=f"{base_url}/r/{match['code']}",
            item_ja=item["ja"],
            item_en=item["en"],
            quantity=match["quantity"],
            unit_ja=match["unit"],
            allergens_contained=tuple(a["ja"] for a in c["allergens"] or []),
            allergen_free=tuple(a["ja"] for a in c["allergen_free"]) if declared else (),
            allergens_declared=declared,
            size=c["size"],
            condition=c["condition"],
            expiry=c["expiry"],
            destination_ja=self.org_name(match["shelter"])["ja"],
            destination_municipality_ja=self.place_name(match["municipality"])["ja"],
            sender_ja=self.org_name(match["sender"])["ja"],
            ship_from_ja=self.place_name(match["ship_from"])["ja"],
            priority=c["priority"],
        )


def today_jst() -> str:
    return (datetime.now(UTC) + timedelta(hours=9)).date().isoformat()


def inbox(request: Request) -> Inbox:
    return service_for(services(request).node)


async def submit(request: Request, user: User, type_: str, payload: dict[str, Any]) -> Receipt:
    try:
        return await submit_as(request, user, "relief", type_, payload)
    except Rejected as exc:
        if exc.code in FORBIDDEN:
            exc.status = 403
        elif exc.code in UNKNOWN:
            exc.status = 404
        elif exc.code in BAD_INPUT:
            exc.status = 422
        raise


def written(tx: Receipt, **extra: Any) -> dict[str, Any]:
    """The answer to a write: where the transaction is on the chain, and what it made."""
    return {"tx_id": tx.tx_id, "height": tx.height, "index": tx.index, **extra}


def found(view: View, kind: str, key: str) -> dict[str, Any]:
    record = view.get(kind, key)
    if record is None:
        names = {
            "need": ("need", "要望"),
            "offer": ("offer", "提供"),
            "match": ("match", "マッチング"),
        }
        en, ja = names[kind]
        raise NotFound(f"No {en} {key}.", f"{ja} {key} はありません。", code=f"unknown_{kind}")
    return record


def _unit(item_id: str, unit: str | None) -> str:
    """The unit to write: the one given, else the catalogue item's."""
    if unit is not None:
        return unit
    it = catalog.item(item_id)
    if it is None:  # nothing to default from; the contract would refuse the item anyway
        raise InvalidInput(
            f"No catalogue item {item_id}.", f"品目 {item_id} はありません。", code="unknown_item"
        )
    return it.unit_ja


def router() -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["relief"])
    _catalog_routes(r)
    _need_routes(r)
    _offer_routes(r)
    _match_routes(r)
    _notification_routes(r)
    _report_routes(r)
    return r


def _catalog_routes(r: APIRouter) -> None:
    @r.get("/catalog")
    def catalogue() -> dict[str, Any]:
        """Every item that can be needed or offered, with units, sizes and per-person
        quantities; the allergen list; attribution of the stockpile data (public)."""
        return {
            "items": [it.to_json() for it in catalog.items().values()],
            "categories": catalog.categories(),
            "population_groups": catalog.population_groups(),
            "group_keys": list(catalog.GROUP_KEYS),
            "allergens": [a.to_json() for a in catalog.allergens().values()],
            "allergen_source": catalog.allergen_source(),
            "stockpile_source": catalog.stockpile_source(),
        }

    @r.get("/allergens")
    def allergen_list() -> dict[str, Any]:
        """The 特定原材料 (mandatory) and 特定原材料に準ずるもの (recommended) allergens."""
        return {
            "allergens": [a.to_json() for a in catalog.allergens().values()],
            **catalog.allergen_source(),
        }


def _need_routes(r: APIRouter) -> None:
    @r.post("/needs/suggest")
    def suggest(body: SuggestBody) -> dict[str, Any]:
        """Suggested needs from a shelter's evacuees by age group and sex and a number of
        days (per-person-per-day quantities of the stockpile list, rounded up). Nothing is
        posted: staff adjust the list, then post the needs they want."""
        try:
            suggestions = catalog.suggest_needs(body.counts, body.days)
        except ValueError as exc:
            raise InvalidInput(str(exc), f"入力内容が正しくありません: {exc}") from None
        rows = []
        for item_id, quantity in suggestions:
            it = catalog.items()[item_id]
            rows.append(
                {
                    "item": item_id,
                    "quantity": quantity,
                    "unit": it.unit_ja,
                    "item_name": {"ja": it.name_ja, "en": it.name_en},
                    "unit_name": {"ja": it.unit_ja, "en": it.unit_en},
                    "category": it.category,
                    "basis": it.suggest,
                }
            )
        return {"days": body.days, "counts": body.counts, "suggestions": rows}

    @r.get("/needs")
    def list_needs(
        request: Request,
        status: Annotated[str | None, Query(pattern="^(open|fulfilled|cancelled)$")] = None,
        shelter: Slug | None = None,
        municipality: Slug | None = None,
        item: Slug | None = None,
        priority: Annotated[str | None, Query(pattern="^(urgent|high|normal)$")] = None,
    ) -> dict[str, Any]:
        """Needs, most pressing first (priority, then needed-by date) (public)."""
        view = View(request)
        needs = [
            n
            for n in view.all("need")
            if (status is None or n["status"] == status)
            and (shelter is None or n["shelter"] == shelter)
            and (municipality is None or n["municipality"] == municipality)
            and (item is None or n["item"] == item)
            and (priority is None or n["priority"] == priority)
        ]
        needs.sort(key=lambda n: (PRIORITY_ORDER[n["priority"]], n["needed_by"], n["id"]))
        return {"needs": [view.need(n) for n in needs]}

    @r.get("/needs/{need}")
    def get_need(request: Request, need: Slug) -> dict[str, Any]:
        view = View(request)
        record = found(view, "need", need)
        matches = [m for m in view.all("match") if m["need"] == need]
        return {"need": view.need(record), "matches": [view.match(m) for m in matches]}

    @r.post("/needs", status_code=201)
    async def post_need(
        request: Request, body: NeedBody, user: Annotated[User, Depends(needs_role)]
    ) -> dict[str, Any]:
        """Post a need for a shelter (its staff, or the coordinator of its municipality)."""
        payload = body.model_dump(exclude_none=True)
        payload["unit"] = _unit(body.item, body.unit)
        receipt = await submit(request, user, "need.post", payload)
        return written(receipt, id=need_id(receipt.tx_id))

    @r.patch("/needs/{need}")
    async def update_need(
        request: Request,
        need: Slug,
        body: NeedPatch,
        user: Annotated[User, Depends(needs_role)],
    ) -> dict[str, Any]:
        """Change a need's quantity (never below what is matched), priority or date."""
        payload = {"need": need, **body.model_dump(exclude_none=True)}
        return written(await submit(request, user, "need.update", payload), id=need)

    @r.post("/needs/{need}/cancel")
    async def cancel_need(
        request: Request,
        need: Slug,
        body: ReasonBody,
        user: Annotated[User, Depends(needs_role)],
    ) -> dict[str, Any]:
        payload = {"need": need, **body.model_dump(exclude_none=True)}
        return written(await submit(request, user, "need.cancel", payload), id=need)


def _offer_routes(r: APIRouter) -> None:
    @r.get("/offers")
    def list_offers(
        request: Request,
        status: Annotated[str | None, Query(pattern="^(open|exhausted|withdrawn)$")] = None,
        org: Slug | None = None,
        item: Slug | None = None,
    ) -> dict[str, Any]:
        """Offers, newest first (public)."""
        view = View(request)
        offers = [
            o
            for o in view.all("offer")
            if (status is None or o["status"] == status)
            and (org is None or o["org"] == org)
            and (item is None or o["item"] == item)
        ]
        offers.sort(key=lambda o: (-o["history"][0]["height"], o["id"]))
        return {"offers": [view.offer(o) for o in offers]}

    @r.get("/offers/{offer}")
    def get_offer(request: Request, offer: Slug) -> dict[str, Any]:
        view = View(request)
        record = found(view, "offer", offer)
        matches = [m for m in view.all("match") if m["offer"] == offer]
        return {"offer": view.offer(record), "matches": [view.match(m) for m in matches]}

    @r.post("/offers", status_code=201)
    async def post_offer(
        request: Request, body: OfferBody, user: Annotated[User, Depends(supporter_role)]
    ) -> dict[str, Any]:
        """Offer goods (supporters, and municipal staff supporting another municipality)."""
        payload = body.model_dump(exclude_none=True)
        payload["allergens"] = body.allergens  # null is meaningful: not declared
        payload["unit"] = _unit(body.item, body.unit)
        if body.ship_from is None:
            home = View(request).municipality(user)
            if home is None:
                raise InvalidInput(
                    "Give ship_from: the municipality the goods leave from.",
                    "発送元の自治体（ship_from）を指定してください。",
                )
            payload["ship_from"] = home
        receipt = await submit(request, user, "offer.post", payload)
        return written(receipt, id=offer_id(receipt.tx_id))

    @r.post("/offers/{offer}/withdraw")
    async def withdraw_offer(
        request: Request,
        offer: Slug,
        body: ReasonBody,
        user: Annotated[User, Depends(supporter_role)],
    ) -> dict[str, Any]:
        payload = {"offer": offer, **body.model_dump(exclude_none=True)}
        return written(await submit(request, user, "offer.withdraw", payload), id=offer)


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


def _match_routes(r: APIRouter) -> None:
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
        """Matches, newest first (any logged-in member). ``mine``: sent or received by the
        user's organisation."""
        view = View(request)
        matches = [
            m
            for m in view.all("match")
            if (status is None or m["status"] == status)
            and (shelter is None or m["shelter"] == shelter)
            and (sender is None or m["sender"] == sender)
            and (municipality is None or m["municipality"] == municipality)
            and (not mine or user.org in (m["shelter"], m["sender"]))
        ]
        matches.sort(key=lambda m: (-m["timeline"][0]["height"], m["id"]))
        return {"matches": [view.match(m) for m in matches]}

    @r.get("/matches/{match}")
    def get_match(
        request: Request, match: Slug, user: Annotated[User, Depends(current_user)]
    ) -> dict[str, Any]:
        view = View(request)
        return {"match": view.match(found(view, "match", match))}

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


def _notification_routes(r: APIRouter) -> None:
    @r.get("/notifications")
    def notifications(
        request: Request,
        user: Annotated[User, Depends(current_user)],
        unread: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """⑥ ⑧ The inbox of the user's organisation, newest first."""
        box = inbox(request)
        box.sync()  # include the blocks committed before this request
        return {
            "notifications": box.notifications(user.org, unread_only=unread, limit=limit),
            "unread": box.unread(user.org),
        }

    @r.post("/notifications/read-all")
    def read_all(request: Request, user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
        return {"marked": inbox(request).mark_read(user.org)}

    @r.post("/notifications/{ident}/read")
    def read_one(
        request: Request, ident: int, user: Annotated[User, Depends(current_user)]
    ) -> dict[str, Any]:
        box = inbox(request)
        if not box.exists(user.org, ident):
            raise NotFound("No such notification.", "その通知はありません。")
        box.mark_read(user.org, ident)
        return {"id": ident, "read": True}

    @r.get("/notifications/stream", response_class=StreamingResponse)
    async def stream(
        request: Request,
        user: Annotated[User, Depends(current_user)],
        last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    ) -> StreamingResponse:
        """Live notifications as server-sent events (``event: notification``, the id is the
        notification's). A reconnecting client sends ``Last-Event-ID`` and gets what it
        missed first."""
        box = inbox(request)
        queue = box.subscribe(user.org)
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
        missed = box.notifications(user.org, after_id=after, limit=500) if after else []

        async def events():
            sent = after
            try:
                yield "retry: 5000\n\n"
                for note in missed:
                    sent = note["id"]
                    yield _sse(note)
                while True:
                    try:
                        note = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if note["id"] > sent:
                        sent = note["id"]
                        yield _sse(note)
            finally:
                box.unsubscribe(user.org, queue)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _sse(note: dict[str, Any]) -> str:
    data = json.dumps(note, ensure_ascii=False, separators=(",", ":"))
    return f"id: {note['id']}\nevent: notification\ndata: {data}\n\n"


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


def _report_routes(r: APIRouter) -> None:
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
