"""Demo relief operation: a typhoon has struck 大島町 and 八丈町 while a 立川断層帯 earthquake
has opened shelters in 立川市 and 八王子市.

Four shelters post needs (おかゆ, アレルギー対応災害食 free of the 8 mandatory allergens, water,
diapers, 子供服 size 150, tarpaulins for roofs, blankets …). 武蔵野フーズ and the city of
八王子 (supporting the islands from its stockpile) offer goods. The coordinators confirm
matches, so that packages exist at every stage: confirmed (label printed), shipped (in
transit), received in full, in part and damaged. Some needs stay open for the proposal.

Dates are relative to the day the demo is created, so the demo never starts out expired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tsunagu.apps.relief import catalog
from tsunagu.apps.relief.contract import match_id, need_id, offer_id
from tsunagu.apps.relief.labels import new_code

# key: (user, shelter posted for (None: the user's own), item, quantity, priority,
#       days until needed, allergen_free, size, note)
NEEDS: dict[str, tuple[str, str | None, str, int, str, int, Any, str | None, str | None]] = {
    "t-okayu": (
        "shelter1",
        None,
        "tokyo-51",
        120,
        "urgent",
        1,
        [],
        None,
        "高齢の避難者40名分（3日分）",
    ),
    "t-allergy": (
        "shelter1",
        None,
        "food-allergy-friendly",
        60,
        "urgent",
        2,
        "mandatory",
        None,
        "食物アレルギーのある避難者向け",
    ),
    "t-water": ("shelter1", None, "tokyo-1", 900, "high", 1, [], None, None),
    "t-diapers": ("shelter1", None, "tokyo-48", 400, "high", 2, [], None, "乳幼児14名"),
    "t-kids150": ("shelter1", None, "clothing-children", 20, "normal", 5, [], "150", None),
    "o-water": ("shelter2", None, "tokyo-1", 1200, "urgent", 1, [], None, "断水のため"),
    "o-tarp": ("shelter2", None, "other-tarp", 100, "urgent", 2, [], None, "屋根の応急修理用"),
    "o-blanket": ("shelter2", None, "bedding-blanket", 150, "high", 2, [], None, None),
    "o-canned": (
        "shelter2",
        None,
        "food-allergy-canned",
        40,
        "high",
        3,
        ["egg", "milk", "wheat"],
        None,
        None,
    ),
    "o-toilet": ("shelter2", None, "tokyo-39", 1000, "high", 2, [], None, None),
    "h-okayu": ("admin", "hachioji-shelter-4", "tokyo-51", 60, "normal", 3, [], None, None),
    "h-milk": ("admin", "hachioji-shelter-4", "tokyo-45", 120, "high", 2, [], None, None),
    "h-adult-diapers": (
        "admin",
        "hachioji-shelter-4",
        "hygiene-adult-diapers",
        200,
        "normal",
        4,
        [],
        None,
        None,
    ),
    "j-water": ("admin", "hachijo-shelter-1", "tokyo-1", 800, "urgent", 2, [], None, None),
    "j-gas": ("admin", "hachijo-shelter-1", "tokyo-22", 60, "normal", 4, [], None, None),
    "j-cold": ("admin", "hachijo-shelter-1", "medical-otc-cold", 30, "normal", 5, [], None, None),
    "j-dog": (
        "admin",
        "hachijo-shelter-1",
        "pet-food-dog",
        10,
        "normal",
        5,
        [],
        None,
        "同行避難の犬6頭",
    ),
}

# key: (user, item, quantity, allergens contained, size, condition, days until expiry,
#       ship from, note)
OFFERS: dict[str, tuple[str, str, int, Any, str | None, str, int | None, str, str | None]] = {
    "m-okayu": ("supporter1", "tokyo-51", 200, [], None, "new", 540, "musashino", None),
    "m-allergy": (
        "supporter1",
        "food-allergy-friendly",
        100,
        [],
        None,
        "new",
        900,
        "musashino",
        "特定原材料等28品目不使用",
    ),
    "m-canned": (
        "supporter1",
        "food-allergy-canned",
        80,
        ["soybean"],
        None,
        "new",
        1000,
        "musashino",
        None,
    ),
    "m-water": (
        "supporter1",
        "tokyo-1",
        3000,
        [],
        None,
        "new",
        1500,
        "musashino",
        "2Lペットボトル6本入りケース",
    ),
    "m-kids150": (
        "supporter1",
        "clothing-children",
        30,
        None,
        "150",
        "new",
        None,
        "musashino",
        None,
    ),
    "m-milk": ("supporter1", "tokyo-45", 200, ["milk"], None, "new", 300, "musashino", None),
    "m-adult-diapers": (
        "supporter1",
        "hygiene-adult-diapers",
        300,
        None,
        None,
        "new",
        None,
        "musashino",
        None,
    ),
    "h-blanket": ("staff1", "bedding-blanket", 200, None, None, "new", None, "hachioji", "市備蓄"),
    "h-tarp": ("staff1", "other-tarp", 150, None, None, "new", None, "hachioji", None),
    "h-toilet": ("staff1", "tokyo-39", 2000, None, None, "new", None, "hachioji", None),
    "h-gas": ("staff1", "tokyo-22", 100, None, None, "new", None, "hachioji", None),
    "h-diapers": ("staff1", "tokyo-48", 300, None, None, "new", None, "hachioji", None),
}

# (confirming user, [(need, offer, quantity)])
MATCHES = (
    (
        "coordinator1",
        [
            ("t-okayu", "m-okayu", 120),
            ("t-allergy", "m-allergy", 60),
            ("t-water", "m-water", 900),
            ("t-kids150", "m-kids150", 20),
        ],
    ),
    (
        "admin",
        [
            ("o-water", "m-water", 1200),
            ("o-blanket", "h-blanket", 150),
            ("o-tarp", "h-tarp", 100),
            ("o-canned", "m-canned", 40),
            ("j-water", "m-water", 800),
            ("h-okayu", "m-okayu", 60),
        ],
    ),
)
# (sender's user, need of the match)
SHIPMENTS = (
    ("supporter1", "t-okayu", "ヤマト運輸"),
    ("supporter1", "t-allergy", "ヤマト運輸"),
    ("supporter1", "t-water", None),
    ("supporter1", "o-water", "東海汽船"),
    ("supporter1", "j-water", "東海汽船"),
    ("staff1", "o-blanket", "東海汽船"),
    ("staff1", "o-tarp", "東海汽船"),
)
# (shelter's user, need of the match, outcome, counted quantity, note)
RECEIPTS = (
    ("shelter1", "t-okayu", "full", None, None),
    ("shelter1", "t-allergy", "partial", 54, "1箱（6食）不足"),
    ("shelter2", "o-water", "full", None, None),
    ("shelter2", "o-tarp", "damaged", 92, "8枚に破れあり"),
)


def _day(days: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=9, days=days)).date().isoformat()


def _need_payload(spec: tuple) -> dict[str, Any]:
    _, shelter, item, quantity, priority, days, free, size, note = spec
    payload: dict[str, Any] = {
        "item": item,
        "quantity": quantity,
        "unit": catalog.items()[item].unit_ja,
        "allergen_free": list(catalog.mandatory_allergens()) if free == "mandatory" else free,
        "condition": "any",
        "priority": priority,
        "needed_by": _day(days),
    }
    optional = {"shelter": shelter, "size": size, "note": note}
    payload.update({k: v for k, v in optional.items() if v is not None})
    return payload


def _offer_payload(spec: tuple) -> dict[str, Any]:
    _, item, quantity, allergens, size, condition, expiry, ship_from, note = spec
    payload: dict[str, Any] = {
        "item": item,
        "quantity": quantity,
        "unit": catalog.items()[item].unit_ja,
        "allergens": allergens,
        "condition": condition,
        "ship_from": ship_from,
        "ship_by": _day(2),
    }
    optional = {"size": size, "expiry": None if expiry is None else _day(expiry), "note": note}
    payload.update({k: v for k, v in optional.items() if v is not None})
    return payload


def seed(demo) -> None:
    receipts = demo.submit_many(
        [(spec[0], "relief", "need.post", _need_payload(spec)) for spec in NEEDS.values()]
    )
    needs = {key: need_id(r.tx_id) for key, r in zip(NEEDS, receipts, strict=True)}
    receipts = demo.submit_many(
        [(spec[0], "relief", "offer.post", _offer_payload(spec)) for spec in OFFERS.values()]
    )
    offers = {key: offer_id(r.tx_id) for key, r in zip(OFFERS, receipts, strict=True)}
    confirms = [
        (
            user,
            "relief",
            "match.confirm",
            {
                "allocations": [
                    {"need": needs[n], "offer": offers[o], "quantity": q, "code": new_code()}
                    for n, o, q in allocations
                ]
            },
        )
        for user, allocations in MATCHES
    ]
    matches: dict[str, str] = {}
    for (_, allocations), r in zip(MATCHES, demo.submit_many(confirms), strict=True):
        for i, (need, _, _) in enumerate(allocations):
            matches[need] = match_id(r.tx_id, i)
    demo.submit_many(
        [
            (user, "relief", "shipment.report", {"match": matches[need]} | _carrier(carrier))
            for user, need, carrier in SHIPMENTS
        ]
    )
    demo.submit_many(
        [
            (
                user,
                "relief",
                "receipt.report",
                {
                    "match": matches[need],
                    "outcome": outcome,
                    "client_ref": f"demo-{need}",
                    **({"quantity": counted} if counted is not None else {}),
                    **({"note": note} if note else {}),
                },
            )
            for user, need, outcome, counted, note in RECEIPTS
        ]
    )


def _carrier(carrier: str | None) -> dict[str, str]:
    return {"carrier": carrier} if carrier else {}
