"""Relief supply matching (災害時支援物資マッチング): the rules, decided on the chain.

A shelter posts a need, a supporter posts an offer, the coordinator of the shelter's
municipality confirms matches (each with a code for the package's QR label), the supporter
reports the shipment and the shelter records the receipt. State (namespace ``relief``):

- ``need/<n-…>``   a shelter's need, with ``matched`` and ``received`` tallies
- ``offer/<o-…>``  a supporter's offer, with its ``matched`` tally
- ``match/<m-…>``  one allocation from an offer to a need, with its timeline
- ``code/<code>``  ``{"match": <id>}``: the QR code's index

Only organisation ids, pseudonymous key ids and free-text notes (≤ 200 characters, checked
for phone numbers and e-mail addresses) are written; never a person's name or address.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from tsunagu.apps.relief import catalog
from tsunagu.apps.relief.matching import NeedIn, OfferIn, compatible
from tsunagu.contracts import Contract, Payload, TxContext
from tsunagu.ledger.block import parse_timestamp
from tsunagu.places import municipalities

MIN_CODE_LENGTH = 26
MAX_ALLOCATIONS = 100
MAX_QUANTITY = 10_000_000
NOTE_LENGTH = 200
NEED_ROLES = ("shelter_staff", "coordinator")
SUPPORTER_ROLES = ("supporter", "staff")
COORDINATOR_ROLES = ("coordinator",)
PRIORITIES = ("urgent", "high", "normal")
JST_OFFSET = timedelta(hours=9)  # "today" is the date in Japan at the block's time


def _real_date(value: str) -> str:
    date.fromisoformat(value)
    return value


IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), AfterValidator(_real_date)]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
Count = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]
AllergenIds = Annotated[list[Id], Field(max_length=40)]
Size = Annotated[str, Field(min_length=1, max_length=8)]
Unit = Annotated[str, Field(min_length=1, max_length=40)]
Note = Annotated[str, Field(min_length=1, max_length=NOTE_LENGTH)]
Code = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Priority = Literal["urgent", "high", "normal"]


def need_id(tx_id: str) -> str:
    return f"n-{tx_id[:16]}"


def offer_id(tx_id: str) -> str:
    return f"o-{tx_id[:16]}"


def match_id(tx_id: str, index: int) -> str:
    return f"m-{tx_id[:16]}-{index}"


class NeedPost(Payload):
    item: Id
    quantity: Quantity
    unit: Unit
    allergen_free: AllergenIds = Field(default_factory=list)
    size: Size | None = None
    condition: Literal["new", "any"] = "any"
    priority: Priority = "normal"
    needed_by: IsoDate
    note: Note | None = None
    shelter: Id | None = None  # for a coordinator posting on a shelter's behalf


class NeedUpdate(Payload):
    need: Id
    quantity: Quantity | None = None
    priority: Priority | None = None
    needed_by: IsoDate | None = None


class NeedCancel(Payload):
    need: Id
    reason: Note | None = None


class OfferPost(Payload):
    item: Id
    quantity: Quantity
    unit: Unit
    allergens: AllergenIds | None = None  # None: not declared
    size: Size | None = None
    condition: Literal["new", "used"] = "new"
    expiry: IsoDate | None = None
    ship_from: Id
    ship_by: IsoDate
    note: Note | None = None


class OfferWithdraw(Payload):
    offer: Id
    reason: Note | None = None


class AllocationIn(Payload):
    need: Id
    offer: Id
    quantity: Quantity
    code: Code


class MatchConfirm(Payload):
    allocations: Annotated[list[AllocationIn], Field(min_length=1, max_length=MAX_ALLOCATIONS)]


class MatchCancel(Payload):
    match: Id
    reason: Note | None = None


class ShipmentReport(Payload):
    match: Id
    carrier: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    tracking: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,40}$")] | None = None


class ReceiptReport(Payload):
    match: Id
    outcome: Literal["full", "partial", "damaged"]
    quantity: Count | None = None
    note: Note | None = None
    client_ref: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


# Full-width digits, letters, dashes, dots and at signs count as their ASCII selves when
# looking for phone numbers (090.1234.5678, ０９０．１２３４．５６７８) and e-mail addresses
# (x＠y．jp). A fixed table rather than NFKC: the same on every node, whatever its Unicode data.
_WIDE = str.maketrans(
    "０１２３４５６７８９－−‐‑–—―ーｰ（）＋　＠﹫．。｡＿"
    + "".join(chr(c) for c in range(0xFF21, 0xFF3B))
    + "".join(chr(c) for c in range(0xFF41, 0xFF5B)),
    "0123456789---------()+ @@..._"
    + "".join(chr(c) for c in range(0x41, 0x5B))
    + "".join(chr(c) for c in range(0x61, 0x7B)),
)
_PHONE = re.compile(r"\+?\d[\d ().\-]{8,}\d", re.ASCII)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+", re.ASCII)


def looks_personal(text: str) -> bool:
    """Whether free text holds something like a phone number or an e-mail address."""
    plain = text.translate(_WIDE)
    if _EMAIL.search(plain):
        return True
    return any(sum(c.isdigit() for c in m) >= 10 for m in _PHONE.findall(plain))


def municipality_of(org: dict[str, Any] | None) -> str | None:
    """The municipality an organisation belongs to (a municipality belongs to itself)."""
    if org is None:
        return None
    if org.get("municipality"):
        return org["municipality"]
    return org["id"] if org.get("type") == "municipality" else None


def today(ctx: TxContext) -> str:
    return (parse_timestamp(ctx.timestamp) + JST_OFFSET).date().isoformat()


def need_in(need: dict[str, Any]) -> NeedIn:
    """A need as :mod:`matching` sees it (no location: the contract never decides by distance)."""
    return NeedIn(
        id=need["id"],
        item_id=need["item"],
        remaining=remaining(need),
        priority=need["priority"],
        needed_by=need["needed_by"],
        allergen_free=frozenset(need["allergen_free"]),
        size=need["size"],
        condition=need["condition"],
        lat=0.0,
        lon=0.0,
    )


def offer_in(offer: dict[str, Any]) -> OfferIn:
    allergens = offer["allergens"]
    return OfferIn(
        id=offer["id"],
        item_id=offer["item"],
        remaining=remaining(offer),
        allergens=None if allergens is None else frozenset(allergens),
        size=offer["size"],
        condition=offer["condition"],
        expiry=offer["expiry"],
        lat=0.0,
        lon=0.0,
    )


def remaining(record: dict[str, Any]) -> int:
    """What a need still lacks, or what an offer still has, for new matches."""
    if record["status"] in ("cancelled", "withdrawn"):
        return 0
    return max(record["quantity"] - record["matched"], 0)


def _event(ctx: TxContext, action: str, **extra: Any) -> dict[str, Any]:
    event = {
        "action": action,
        "tx_id": ctx.tx_id,
        "height": ctx.height,
        "at": ctx.timestamp,
        "org": ctx.signer.org,
    }
    event.update({k: v for k, v in extra.items() if v is not None})
    return event


def _settle(record: dict[str, Any], full: str) -> None:
    if record["status"] in ("open", full):
        record["status"] = full if record["matched"] >= record["quantity"] else "open"


class ReliefContract(Contract):
    app = "relief"
    types: ClassVar[dict[str, type[Payload]]] = {
        "need.post": NeedPost,
        "need.update": NeedUpdate,
        "need.cancel": NeedCancel,
        "offer.post": OfferPost,
        "offer.withdraw": OfferWithdraw,
        "match.confirm": MatchConfirm,
        "match.cancel": MatchCancel,
        "shipment.report": ShipmentReport,
        "receipt.report": ReceiptReport,
    }

    # -- shared checks ---------------------------------------------------------------

    @staticmethod
    def _is_admin(ctx: TxContext) -> bool:
        return "admin" in ctx.signer.roles

    def _coordinates(self, ctx: TxContext, municipality: str) -> bool:
        """Whether the signer coordinates relief for ``municipality``."""
        return "coordinator" in ctx.signer.roles and (
            municipality_of(ctx.org(ctx.signer.org)) == municipality
        )

    def _may_manage_need(self, ctx: TxContext, shelter: str, municipality: str) -> None:
        if self._is_admin(ctx) or self._coordinates(ctx, municipality):
            return
        if "shelter_staff" in ctx.signer.roles and ctx.signer.org == shelter:
            return
        ctx.reject(
            "not_shelter_staff",
            "Only the shelter's staff or the coordinator of its municipality may do this.",
            "この操作ができるのは、その避難所の職員か、その自治体の災害対策本部だけです。",
        )

    @staticmethod
    def _item(ctx: TxContext, item_id: str, unit: str) -> catalog.Item:
        item = catalog.item(item_id)
        if item is None:
            ctx.reject(
                "unknown_item", f"No catalogue item {item_id}.", f"品目 {item_id} はありません。"
            )
        assert item is not None  # ctx.reject raised
        if unit != item.unit_ja:
            ctx.reject(
                "wrong_unit",
                f"{item.name_en} is counted in {item.unit_ja} ({item.unit_en}).",
                f"{item.name_ja}の単位は「{item.unit_ja}」です。",
            )
        return item

    @staticmethod
    def _allergens(ctx: TxContext, ids: list[str] | None, item: catalog.Item) -> list | None:
        if ids is None:
            return None
        known = catalog.allergens()
        for allergen in ids:
            if allergen not in known:
                ctx.reject(
                    "unknown_allergen",
                    f"Unknown allergen {allergen}.",
                    f"不明なアレルゲンです: {allergen}",
                )
        if ids and item.kind != "food":
            ctx.reject(
                "allergens_not_food",
                "Allergens apply to food only.",
                "アレルゲンを指定できるのは食品だけです。",
            )
        return sorted(set(ids))

    @staticmethod
    def _size(ctx: TxContext, size: str | None, item: catalog.Item, required: bool) -> None:
        if size is None:
            if required and item.sizes:
                ctx.reject(
                    "size_required",
                    f"Give the size of the {item.name_en}.",
                    f"{item.name_ja}のサイズを指定してください。",
                )
            return
        if size not in item.sizes:
            sizes = ", ".join(item.sizes) or "-"
            ctx.reject(
                "bad_size",
                f"{item.name_en} has no size {size} (sizes: {sizes}).",
                f"{item.name_ja}にサイズ {size} はありません（サイズ: {sizes}）。",
            )

    @staticmethod
    def _not_past(ctx: TxContext, value: str, what_en: str, what_ja: str) -> None:
        if value < today(ctx):
            ctx.reject(
                "date_past",
                f"The {what_en} {value} is in the past.",
                f"{what_ja}（{value}）が過去の日付です。",
            )

    @staticmethod
    def _free_text(ctx: TxContext, *texts: str | None) -> None:
        for text in texts:
            if text and looks_personal(text):
                ctx.reject(
                    "personal_data",
                    "Notes must not hold phone numbers or e-mail addresses: they are kept on "
                    "the ledger for good.",
                    "メモに電話番号やメールアドレスを書かないでください（台帳に永久に残ります）。",
                )

    @staticmethod
    def _record(ctx: TxContext, kind: str, key: str, en: str, ja: str) -> dict[str, Any]:
        record = ctx.get(kind, key)
        if record is None:
            ctx.reject(f"unknown_{kind}", f"No {en} {key}.", f"{ja} {key} はありません。")
        return record  # type: ignore[return-value]

    # -- needs -----------------------------------------------------------------------

    def on_need_post(self, ctx: TxContext, p: NeedPost) -> None:
        shelter_id = p.shelter or ctx.signer.org
        shelter = ctx.org(shelter_id)
        if shelter is None or shelter.get("type") != "shelter":
            ctx.reject(
                "not_shelter",
                f"{shelter_id} is not a shelter.",
                f"{shelter_id} は避難所ではありません。",
            )
        municipality = municipality_of(shelter) or ""
        self._may_manage_need(ctx, shelter_id, municipality)
        item = self._item(ctx, p.item, p.unit)
        allergen_free = self._allergens(ctx, p.allergen_free, item)
        self._size(ctx, p.size, item, required=False)
        self._not_past(ctx, p.needed_by, "needed-by date", "必要期限")
        self._free_text(ctx, p.note)
        key = need_id(ctx.tx_id)
        if ctx.get("need", key) is not None:
            ctx.reject("duplicate_id", f"Need {key} exists.", f"要望 {key} は既にあります。")
        ctx.put(
            "need",
            key,
            {
                "id": key,
                "shelter": shelter_id,
                "municipality": municipality,
                "item": item.id,
                "unit": item.unit_ja,
                "quantity": p.quantity,
                "matched": 0,
                "received": 0,
                "allergen_free": allergen_free,
                "size": p.size,
                "condition": p.condition,
                "priority": p.priority,
                "needed_by": p.needed_by,
                "note": p.note,
                "status": "open",
                "posted_by": ctx.signer.key_id,
                "history": [_event(ctx, "posted")],
            },
        )

    def _own_need(self, ctx: TxContext, key: str) -> dict[str, Any]:
        need = self._record(ctx, "need", key, "need", "要望")
        self._may_manage_need(ctx, need["shelter"], need["municipality"])
        if need["status"] == "cancelled":
            ctx.reject("need_cancelled", "The need is cancelled.", "この要望は取り消されています。")
        return need

    def on_need_update(self, ctx: TxContext, p: NeedUpdate) -> None:
        need = self._own_need(ctx, p.need)
        if p.quantity is None and p.priority is None and p.needed_by is None:
            ctx.reject("nothing_to_change", "Nothing to change.", "変更する項目がありません。")
        changes: dict[str, Any] = {}
        if p.quantity is not None and p.quantity != need["quantity"]:
            if p.quantity < need["matched"]:
                ctx.reject(
                    "below_matched",
                    f"{need['matched']} are already matched; the quantity cannot go below that.",
                    f"既に {need['matched']} がマッチング済みのため、それより少なくできません。",
                )
            changes["quantity"] = need["quantity"] = p.quantity
        if p.priority is not None and p.priority != need["priority"]:
            changes["priority"] = need["priority"] = p.priority
        if p.needed_by is not None and p.needed_by != need["needed_by"]:
            self._not_past(ctx, p.needed_by, "needed-by date", "必要期限")
            changes["needed_by"] = need["needed_by"] = p.needed_by
        if not changes:
            ctx.reject(
                "nothing_to_change",
                "The need already has these values: nothing to change.",
                "要望は既にこの内容です。変更する項目がありません。",
            )
        _settle(need, "fulfilled")
        need["history"].append(_event(ctx, "updated", changes=changes))
        ctx.put("need", need["id"], need)

    def on_need_cancel(self, ctx: TxContext, p: NeedCancel) -> None:
        need = self._own_need(ctx, p.need)
        self._free_text(ctx, p.reason)
        need["status"] = "cancelled"
        need["history"].append(_event(ctx, "cancelled", reason=p.reason))
        ctx.put("need", need["id"], need)

    # -- offers ----------------------------------------------------------------------

    def on_offer_post(self, ctx: TxContext, p: OfferPost) -> None:
        ctx.require_role(*SUPPORTER_ROLES)
        item = self._item(ctx, p.item, p.unit)
        allergens = self._allergens(ctx, p.allergens, item)
        if item.kind != "food":
            allergens = None
        self._size(ctx, p.size, item, required=True)
        if p.condition == "used" and (item.kind == "food" or item.category == "medical"):
            ctx.reject(
                "must_be_new",
                f"{item.name_en} can only be offered new.",
                f"{item.name_ja}は新品のみ提供できます。",
            )
        if item.kind == "food" and p.expiry is None:
            ctx.reject(
                "expiry_required",
                "Give the expiry date of food.",
                "食品には賞味期限を指定してください。",
            )
        if p.expiry is not None:
            self._not_past(ctx, p.expiry, "expiry date", "賞味期限")
        self._not_past(ctx, p.ship_by, "ship-by date", "発送可能期限")
        if p.ship_from not in municipalities():
            ctx.reject(
                "unknown_place",
                f"Unknown municipality {p.ship_from}.",
                f"不明な自治体です: {p.ship_from}",
            )
        self._free_text(ctx, p.note)
        key = offer_id(ctx.tx_id)
        if ctx.get("offer", key) is not None:
            ctx.reject("duplicate_id", f"Offer {key} exists.", f"提供 {key} は既にあります。")
        ctx.put(
            "offer",
            key,
            {
                "id": key,
                "org": ctx.signer.org,
                "item": item.id,
                "unit": item.unit_ja,
                "quantity": p.quantity,
                "matched": 0,
                "allergens": allergens,
                "size": p.size,
                "condition": p.condition,
                "expiry": p.expiry,
                "ship_from": p.ship_from,
                "ship_by": p.ship_by,
                "note": p.note,
                "status": "open",
                "posted_by": ctx.signer.key_id,
                "history": [_event(ctx, "posted")],
            },
        )

    def on_offer_withdraw(self, ctx: TxContext, p: OfferWithdraw) -> None:
        offer = self._record(ctx, "offer", p.offer, "offer", "提供")
        ctx.require_role(*SUPPORTER_ROLES)  # not a meter's key of the same organisation
        if not self._is_admin(ctx) and offer["org"] != ctx.signer.org:
            ctx.reject(
                "not_owner",
                "Only the offering organisation may withdraw this offer.",
                "この提供を取り下げられるのは、提供した組織だけです。",
            )
        if offer["status"] == "withdrawn":
            ctx.reject("offer_withdrawn", "The offer is withdrawn.", "この提供は取り下げ済みです。")
        self._free_text(ctx, p.reason)
        offer["status"] = "withdrawn"
        offer["history"].append(_event(ctx, "withdrawn", reason=p.reason))
        ctx.put("offer", offer["id"], offer)

    # -- matches -----------------------------------------------------------------------

    def on_match_confirm(self, ctx: TxContext, p: MatchConfirm) -> None:
        ctx.require_role(*COORDINATOR_ROLES)
        codes: set[str] = set()
        for index, allocation in enumerate(p.allocations):
            self._allocate(ctx, index, allocation, codes)

    def _allocate(self, ctx: TxContext, index: int, a: AllocationIn, codes: set[str]) -> None:
        n = index + 1

        def reject(code: str, en: str, ja: str) -> None:
            ctx.reject(code, f"Allocation {n}: {en}", f"{n}件目: {ja}")

        if len(a.code) < MIN_CODE_LENGTH:
            reject(
                "code_too_short",
                f"a label code needs at least {MIN_CODE_LENGTH} characters.",
                f"ラベルのコードは{MIN_CODE_LENGTH}文字以上必要です。",
            )
        if a.code in codes or ctx.get("code", a.code) is not None:
            reject(
                "duplicate_code",
                "the label code is already used.",
                "ラベルのコードが重複しています。",
            )
        codes.add(a.code)
        need = ctx.get("need", a.need)
        offer = ctx.get("offer", a.offer)
        if need is None:
            reject("unknown_need", f"no need {a.need}.", f"要望 {a.need} はありません。")
        if offer is None:
            reject("unknown_offer", f"no offer {a.offer}.", f"提供 {a.offer} はありません。")
        assert need is not None and offer is not None
        if not (self._is_admin(ctx) or self._coordinates(ctx, need["municipality"])):
            reject(
                "other_municipality",
                "the shelter is in another municipality; its own coordinator confirms its matches.",
                "他の自治体の避難所です。マッチングはその自治体の災害対策本部が確定します。",
            )
        if need["status"] == "cancelled":
            reject("need_cancelled", "the need is cancelled.", "要望は取り消されています。")
        if offer["status"] == "withdrawn":
            reject("offer_withdrawn", "the offer is withdrawn.", "提供は取り下げられています。")
        if offer["expiry"] is not None and offer["expiry"] < today(ctx):
            reject(
                "expired",
                "the offered goods are past their expiry date.",
                "提供品の賞味期限が切れています。",
            )
        if not compatible(need_in(need), offer_in(offer)):
            reject(
                "incompatible",
                "the offered goods do not meet the need (item, allergens, size, condition "
                "or expiry).",
                "提供品が要望の条件（品目・アレルゲン・サイズ・状態・期限）を満たしません。",
            )
        if a.quantity > remaining(need):
            reject(
                "exceeds_need",
                f"{a.quantity} is more than the {remaining(need)} the need still lacks.",
                f"数量 {a.quantity} が要望の残り {remaining(need)} を超えています。",
            )
        if a.quantity > remaining(offer):
            reject(
                "exceeds_offer",
                f"{a.quantity} is more than the {remaining(offer)} the offer still has.",
                f"数量 {a.quantity} が提供の残り {remaining(offer)} を超えています。",
            )
        key = match_id(ctx.tx_id, index)
        if ctx.get("match", key) is not None:
            reject("duplicate_id", f"match {key} exists.", f"マッチング {key} は既にあります。")
        need["matched"] += a.quantity
        offer["matched"] += a.quantity
        _settle(need, "fulfilled")
        _settle(offer, "exhausted")
        ctx.put("need", need["id"], need)
        ctx.put("offer", offer["id"], offer)
        ctx.put("code", a.code, {"match": key})
        ctx.put(
            "match",
            key,
            {
                "id": key,
                "code": a.code,
                "need": need["id"],
                "offer": offer["id"],
                "shelter": need["shelter"],
                "municipality": need["municipality"],
                "sender": offer["org"],
                "ship_from": offer["ship_from"],
                "item": need["item"],
                "unit": need["unit"],
                "quantity": a.quantity,
                "status": "confirmed",
                "shipment": None,
                "receipt": None,
                "timeline": [_event(ctx, "matched")],
            },
        )

    def _match(self, ctx: TxContext, key: str) -> dict[str, Any]:
        return self._record(ctx, "match", key, "match", "マッチング")

    def on_match_cancel(self, ctx: TxContext, p: MatchCancel) -> None:
        match = self._match(ctx, p.match)
        sender = ctx.signer.org == match["sender"] and any(
            r in ctx.signer.roles for r in SUPPORTER_ROLES
        )
        if not (self._is_admin(ctx) or self._coordinates(ctx, match["municipality"]) or sender):
            ctx.reject(
                "not_allowed",
                "Only the coordinator, the sender or an administrator may cancel a match.",
                "マッチングを取り消せるのは、災害対策本部・送り主・管理者だけです。",
            )
        if match["status"] != "confirmed":
            ctx.reject(
                "not_cancellable",
                f"A {match['status']} match cannot be cancelled.",
                "発送済み・受領済み・取消済みのマッチングは取り消せません。",
            )
        self._free_text(ctx, p.reason)
        need = ctx.get("need", match["need"])
        offer = ctx.get("offer", match["offer"])
        for record, full, kind in ((need, "fulfilled", "need"), (offer, "exhausted", "offer")):
            record["matched"] -= match["quantity"]  # type: ignore[index]
            _settle(record, full)  # type: ignore[arg-type]
            ctx.put(kind, record["id"], record)  # type: ignore[index]
        match["status"] = "cancelled"
        match["timeline"].append(_event(ctx, "cancelled", reason=p.reason))
        ctx.put("match", match["id"], match)

    def on_shipment_report(self, ctx: TxContext, p: ShipmentReport) -> None:
        ctx.require_role(*SUPPORTER_ROLES)
        match = self._match(ctx, p.match)
        if ctx.signer.org != match["sender"]:
            ctx.reject(
                "not_sender",
                "Only the sending organisation may report the shipment.",
                "発送を報告できるのは送り主の組織だけです。",
            )
        if match["status"] == "cancelled":
            ctx.reject(
                "match_cancelled", "The match is cancelled.", "このマッチングは取り消されています。"
            )
        if match["status"] != "confirmed":
            ctx.reject(
                "already_shipped", "The package is already shipped.", "この荷物は発送済みです。"
            )
        self._free_text(ctx, p.carrier)
        match["status"] = "shipped"
        match["shipment"] = {"carrier": p.carrier, "tracking": p.tracking, "org": ctx.signer.org}
        match["timeline"].append(_event(ctx, "shipped"))
        ctx.put("match", match["id"], match)

    def on_receipt_report(self, ctx: TxContext, p: ReceiptReport) -> None:
        match = self._match(ctx, p.match)
        if "shelter_staff" not in ctx.signer.roles or ctx.signer.org != match["shelter"]:
            ctx.reject(
                "not_destination",
                "Only the destination shelter's staff may record the receipt.",
                "受領を記録できるのは、届け先の避難所の職員だけです。",
            )
        status = match["status"]
        if status == "received":
            ctx.reject(
                "already_received", "The receipt is already recorded.", "受領は記録済みです。"
            )
        if status == "cancelled":
            ctx.reject(
                "match_cancelled", "The match is cancelled.", "このマッチングは取り消されています。"
            )
        if status != "shipped":
            ctx.reject(
                "not_shipped",
                "The package has not been reported as shipped yet.",
                "この荷物はまだ発送が報告されていません。",
            )
        shipped = match["quantity"]
        counted = p.quantity
        if counted is not None and counted > shipped:
            ctx.reject(
                "more_than_shipped",
                f"{counted} is more than the {shipped} shipped.",
                f"受領数 {counted} が発送数 {shipped} を超えています。",
            )
        if p.outcome == "full":
            if counted is not None and counted != shipped:
                ctx.reject(
                    "quantity_mismatch",
                    f"A full receipt is all {shipped}; record a partial one instead.",
                    f"全数受領は {shipped} です。"
                    "数が違う場合は「一部のみ受領」を記録してください。",
                )
            counted = shipped
        elif p.outcome == "partial":
            if counted is None or not 0 < counted < shipped:
                ctx.reject(
                    "bad_partial",
                    f"A partial receipt needs the counted quantity, from 1 to {shipped - 1}.",
                    f"一部のみ受領には、1〜{shipped - 1} の受領数が必要です。",
                )
        elif not p.note:
            ctx.reject(
                "note_required",
                "Describe the damage in the note.",
                "破損の内容をメモに書いてください。",
            )
        self._free_text(ctx, p.note)
        received = counted or 0
        need: dict[str, Any] = ctx.get("need", match["need"])  # type: ignore[assignment]
        need["received"] += received
        shortfall = shipped - received
        if shortfall > 0:
            # What did not arrive (or arrived unusable) is wanted again: the need is open for
            # new matches by that much. The offer keeps its tally: the supporter did ship it.
            need["matched"] -= shortfall
            _settle(need, "fulfilled")
            need["history"].append(
                _event(ctx, "reopened", match=match["id"], outcome=p.outcome, quantity=shortfall)
            )
        ctx.put("need", match["need"], need)
        match["status"] = "received"
        match["receipt"] = {
            "outcome": p.outcome,
            "quantity": received,
            "note": p.note,
            "client_ref": p.client_ref,
            "org": ctx.signer.org,
        }
        match["timeline"].append(_event(ctx, "received", outcome=p.outcome))
        ctx.put("match", match["id"], match)
