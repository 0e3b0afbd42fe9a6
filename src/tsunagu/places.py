"""Tokyo's municipalities from the metropolitan government's published data.

Source: Tokyo Metropolitan Government, 東京備蓄ナビ (bichiku-navi), MIT License (see
``data/LICENSE-bichiku-navi``). Only the Tama and island municipalities are consortium
members; the 23 wards are kept for lookups.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

_KIND_EN = {"市": "City", "町": "Town", "村": "Village", "区": "Ward"}
_NOISE = re.compile(r"\b(city|town|village|mura|ward)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Municipality:
    id: str
    name_ja: str
    name_en: str
    region: str  # "ku", "tama" or "islands"
    lat: float
    lon: float


def _base_name(name_en: str) -> str:
    words = _NOISE.sub(" ", name_en.replace("-", " ")).split()
    return " ".join(w.capitalize() for w in words)


@cache
def municipalities() -> dict[str, Municipality]:
    raw = json.loads(files("tsunagu.data").joinpath("tokyo-municipalities.json").read_text("utf-8"))
    result: dict[str, Municipality] = {}
    for entry in raw["municipalities"]:
        base = _base_name(entry["name_en"])
        kind = _KIND_EN.get(entry["name_ja"][-1], "")
        ident = base.lower().replace(" ", "-")
        if entry["region"] == "ku":  # 豊島区 and 利島村 share "Toshima"; members keep the plain id
            ident += "-ku"
        result[ident] = Municipality(
            id=ident,
            name_ja=entry["name_ja"],
            name_en=f"{base} {kind}".strip(),
            region=entry["region"],
            lat=entry["lat"],
            lon=entry["lon"],
        )
    return result


def members() -> list[Municipality]:
    """The Tama and island municipalities, Tama first, in Japanese reading order of ids."""
    return sorted(
        (m for m in municipalities().values() if m.region in ("tama", "islands")),
        key=lambda m: (m.region != "tama", m.id),
    )
