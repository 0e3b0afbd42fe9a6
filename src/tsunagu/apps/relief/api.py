"""Relief supply matching API (``/api/v1/relief``).

Routes check who the user is and build transactions; the contract decides. Reads enrich the
ledger's state with names from the catalogue, the consortium's organisations and
:mod:`tsunagu.places` (:mod:`.view`), so a page needs no second lookup. Every timeline event
names the transaction that recorded it (``/api/v1/tx/{tx_id}`` proves it).

This module holds the request models, the catalogue, needs and offers; matches, labels,
shipments and receipts are in :mod:`.api_matches`, notifications in
:mod:`.api_notifications`, the overview and CSV exports in :mod:`.reports`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.apps.relief import catalog
from tsunagu.apps.relief.contract import (
    COORDINATOR_ROLES,
    MAX_ALLOCATIONS,
    NEED_ROLES,
    NOTE_LENGTH,
    SUPPORTER_ROLES,
    need_id,
    offer_id,
)
from tsunagu.apps.relief.service import Inbox, service_for
from tsunagu.apps.relief.view import PREFIX, View
from tsunagu.errors import InvalidInput, NotFound, Rejected
from tsunagu.identity.private import User
from tsunagu.node.node import Receipt
from tsunagu.validation_text import InputValueError
from tsunagu.web.deps import require_roles, services
from tsunagu.web.writes import Refusals, submit_as

# A refusal's HTTP status by the contract's code.
REFUSALS = Refusals(
    forbidden={
        "forbidden_role",
        "not_shelter_staff",
        "not_owner",
        "not_sender",
        "not_destination",
        "not_allowed",
        "other_municipality",
    },
    unknown={"unknown_need", "unknown_offer", "unknown_match"},
    bad_input={
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
    },
)
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


def today_jst() -> str:
    return (datetime.now(UTC) + timedelta(hours=9)).date().isoformat()


def inbox(request: Request) -> Inbox:
    return service_for(services(request).node)


async def submit(request: Request, user: User, type_: str, payload: dict[str, Any]) -> Receipt:
    try:
        return await submit_as(request, user, "relief", type_, payload)
    except Rejected as exc:
        exc.status = REFUSALS.status(exc.code)
        raise


def written(tx: Receipt, **extra: Any) -> dict[str, Any]:
    """The answer to a write: where the transaction is on the chain, and what it made."""
    return {"tx_id": tx.tx_id, "height": tx.height, "index": tx.index, **extra}


def missing(kind: str, key: str) -> NotFound:
    """The answer for a record that does not exist (or that the user may not know of)."""
    en, ja = {
        "need": ("need", "要望"),
        "offer": ("offer", "提供"),
        "match": ("match", "マッチング"),
    }[kind]
    return NotFound(f"No {en} {key}.", f"{ja} {key} はありません。", code=f"unknown_{kind}")


def found(view: View, kind: str, key: str) -> dict[str, Any]:
    record = view.get(kind, key)
    if record is None:
        raise missing(kind, key)
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
    from tsunagu.apps.relief.api_matches import match_routes
    from tsunagu.apps.relief.api_notifications import notification_routes
    from tsunagu.apps.relief.reports import report_routes

    r = APIRouter(prefix=PREFIX, tags=["relief"])
    _catalog_routes(r)
    _need_routes(r)
    _offer_routes(r)
    match_routes(r)
    notification_routes(r)
    report_routes(r)
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
        except InputValueError as exc:
            raise InvalidInput(exc.en, exc.ja) from None
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
