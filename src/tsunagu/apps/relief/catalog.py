"""The relief catalogue: what can be needed and offered, in which unit, and the food allergens.

It starts from the metropolitan government's stockpile list (``data/tokyo-stockpile-items.json``,
東京備蓄ナビ, MIT License: item ``N`` becomes ``tokyo-N``) and adds what shelters ask for beyond a
household stockpile (``data/relief-items.json``). Allergens follow the Consumer Affairs Agency's
labelling lists (``data/allergens.json``).

The contract checks item ids, units, sizes and allergen ids against this module, so it is part
of the chain's rules. The per-person-per-day quantities are decimals and never go on the chain:
:func:`suggest_needs` turns head counts into whole quantities off the chain, rounding up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from tsunagu.validation_text import InputValueError

DATA = Path(__file__).parent / "data"
STOCKPILE_FILE = "tokyo-stockpile-items.json"
STOCKPILE_ATTRIBUTION = (
    "Tokyo Metropolitan Government, 東京備蓄ナビ (bichiku-navi), stockpile list; MIT License"
)
Kind = Literal["food", "clothing", "general"]
Suggest = Literal["day", "stay", "none"]
GROUPS = ("infants", "child1", "child2", "adult", "aged")
# The source's keys for head counts: an age group and a sex, e.g. "infantsMale", "agedFemale".
GROUP_KEYS: tuple[str, ...] = tuple(f"{g}{s}" for g in GROUPS for s in ("Male", "Female"))
MAX_DAYS = 30


@dataclass(frozen=True, slots=True)
class Allergen:
    id: str
    ja: str
    en: str
    mandatory: bool  # 特定原材料 (mandatory label) or 特定原材料に準ずるもの (recommended)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ja": self.ja, "en": self.en, "mandatory": self.mandatory}


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    kind: Kind
    category: str
    name_ja: str
    name_en: str
    unit_ja: str  # the unit quantities are counted in, on the chain too
    unit_en: str
    sizes: tuple[str, ...] = ()  # clothing only
    description_ja: str = ""
    description_en: str = ""
    per_person_per_day: Mapping[str, Decimal] | None = field(default=None, compare=False)
    suggest: Suggest = "none"
    source: str = "tsunagu"
    source_id: int | None = None
    source_unit_ja: str | None = None  # the stockpile list's own unit text, when it differs
    source_unit_en: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The item as the API shows it (per-person quantities as JSON numbers: off the chain)."""
        ppd = self.per_person_per_day
        return {
            "id": self.id,
            "kind": self.kind,
            "category": self.category,
            "name": {"ja": self.name_ja, "en": self.name_en},
            "unit": {"ja": self.unit_ja, "en": self.unit_en},
            "sizes": list(self.sizes),
            "description": {"ja": self.description_ja, "en": self.description_en},
            "per_person_per_day": None if ppd is None else {k: float(v) for k, v in ppd.items()},
            "suggest": self.suggest,
            "source": self.source,
            "source_id": self.source_id,
            "source_unit": None
            if self.source_unit_ja is None
            else {"ja": self.source_unit_ja, "en": self.source_unit_en},
        }


def _load(name: str) -> Any:
    # Decimals, not floats: 2.4 L × 10 people × 3 days must be exactly 72, never 72.00000000001.
    return json.loads((DATA / name).read_text("utf-8"), parse_float=Decimal)


@cache
def _overlay() -> dict[str, Any]:
    return _load("relief-items.json")


@cache
def stockpile_source() -> dict[str, Any]:
    """Attribution of the stockpile list (keep it wherever the items are shown or exported)."""
    raw = _load(STOCKPILE_FILE)
    return {
        "source": raw["source"],
        "attribution": STOCKPILE_ATTRIBUTION,
        "license": "MIT",
        "license_file": "tsunagu/apps/relief/data/LICENSE-bichiku-navi",
        "items": len(raw["items"]),
    }


def _ppd(raw: Mapping[str, Any] | None) -> dict[str, Decimal] | None:
    if raw is None:
        return None
    return {key: Decimal(raw[key]) for key in GROUP_KEYS}


def _stockpile_items() -> list[Item]:
    overlay = _overlay()["stockpile"]
    food = set(overlay["food_ids"])
    result = []
    for raw in _load(STOCKPILE_FILE)["items"]:
        sid = raw["id"]
        unit = overlay["units"].get(str(sid))
        ppd = _ppd(raw.get("per_person_per_day"))
        suggest = overlay["suggest"].get(str(sid), "day" if ppd else "none")
        result.append(
            Item(
                id=f"tokyo-{sid}",
                kind="food" if sid in food else "general",
                category=overlay["category_by_group"][raw["group"]["en"]],
                name_ja=raw["item"]["ja"],
                name_en=" ".join(raw["item"]["en"].split()),
                unit_ja=unit["ja"] if unit else raw["unit"]["ja"],
                unit_en=unit["en"] if unit else raw["unit"]["en"],
                description_ja=raw["description"]["ja"],
                description_en=raw["description"]["en"],
                per_person_per_day=ppd,
                suggest=suggest,
                source="tokyo-bichiku-navi",
                source_id=sid,
                source_unit_ja=raw["unit"]["ja"] if unit else None,
                source_unit_en=raw["unit"]["en"] if unit else None,
            )
        )
    return result


def _extension_items() -> list[Item]:
    result = []
    for raw in _overlay()["extensions"]:
        ppd = _ppd(raw.get("per_person_per_day"))
        description = raw.get("description", {"ja": "", "en": ""})
        result.append(
            Item(
                id=raw["id"],
                kind=raw["kind"],
                category=raw["category"],
                name_ja=raw["name"]["ja"],
                name_en=raw["name"]["en"],
                unit_ja=raw["unit"]["ja"],
                unit_en=raw["unit"]["en"],
                sizes=tuple(raw.get("sizes", ())),
                description_ja=description["ja"],
                description_en=description["en"],
                per_person_per_day=ppd,
                suggest=raw.get("suggest", "day" if ppd else "none"),
            )
        )
    return result


@cache
def items() -> dict[str, Item]:
    """Every catalogue item by id: the 62 stockpile items in source order, then the extensions."""
    result: dict[str, Item] = {}
    for item in [*_stockpile_items(), *_extension_items()]:
        if item.id in result:
            raise ValueError(f"duplicate catalogue item {item.id}")
        result[item.id] = item
    return result


def item(item_id: str) -> Item | None:
    return items().get(item_id)


@cache
def categories() -> dict[str, dict[str, str]]:
    return dict(_overlay()["categories"])


@cache
def population_groups() -> dict[str, dict[str, str]]:
    return dict(_overlay()["population_groups"])


@cache
def _allergen_file() -> dict[str, Any]:
    return _load("allergens.json")


@cache
def allergens() -> dict[str, Allergen]:
    """The 28 labelled allergens by id, mandatory ones first."""
    return {
        a["id"]: Allergen(a["id"], a["ja"], a["en"], a["mandatory"])
        for a in _allergen_file()["allergens"]
    }


def mandatory_allergens() -> tuple[str, ...]:
    """Ids of the 特定原材料 (the allergens every label must declare)."""
    return tuple(a.id for a in allergens().values() if a.mandatory)


def allergen_source() -> dict[str, Any]:
    raw = _allergen_file()
    return {"source": raw["source"], "revision": raw["revision"], "pending": raw["pending"]}


def suggest_needs(counts: Mapping[str, int], days: int) -> list[tuple[str, int]]:
    """Quantities a shelter needs for ``days`` days, from its evacuees by age group and sex.

    ``counts`` maps keys of :data:`GROUP_KEYS` (e.g. ``{"adultMale": 40, "agedFemale": 12}``)
    to head counts; missing keys count as 0. Items counted per day are multiplied by ``days``;
    reusable ones ("stay": blankets, headlights) are needed once per person. Each quantity is
    rounded up to a whole unit; items that come to 0 are left out. The result is in catalogue
    order, for staff to adjust before they post needs.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InputValueError(
            f"days must be a whole number from 1 to {MAX_DAYS}",
            f"日数は 1 から {MAX_DAYS} までの整数で指定してください。",
        )
    for key, count in counts.items():
        if key not in GROUP_KEYS:
            raise InputValueError(
                f"unknown group {key!r}; use one of {', '.join(GROUP_KEYS)}",
                f"区分 {key!r} はありません。{'、'.join(GROUP_KEYS)} のいずれかです。",
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InputValueError(
                f"{key}: the head count must be a whole number, 0 or more",
                f"{key}: 人数は 0 以上の整数で指定してください。",
            )
    result = []
    for it in items().values():
        if it.suggest == "none" or it.per_person_per_day is None:
            continue
        per_day = sum(
            (it.per_person_per_day[key] * count for key, count in counts.items()), Decimal(0)
        )
        total = per_day * days if it.suggest == "day" else per_day
        quantity = math.ceil(total)
        if quantity > 0:
            result.append((it.id, quantity))
    return result
