"""The relief catalogue: the metropolitan stockpile list with its attribution, Tsunagu's
extensions, the allergen lists, and the head-count suggestion arithmetic."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from tsunagu.apps.relief import catalog

SOURCE = json.loads((catalog.DATA / catalog.STOCKPILE_FILE).read_text("utf-8"))
MANDATORY_JA = ["えび", "かに", "くるみ", "小麦", "そば", "卵", "乳", "落花生"]
RECOMMENDED_JA = [
    "アーモンド",
    "あわび",
    "いか",
    "いくら",
    "オレンジ",
    "カシューナッツ",
    "キウイフルーツ",
    "牛肉",
    "ごま",
    "さけ",
    "さば",
    "大豆",
    "鶏肉",
    "バナナ",
    "豚肉",
    "マカダミアナッツ",
    "もも",
    "やまいも",
    "りんご",
    "ゼラチン",
]


def test_all_62_stockpile_items_are_in_the_catalogue_as_published():
    stockpile = [it for it in catalog.items().values() if it.source == "tokyo-bichiku-navi"]
    assert len(SOURCE["items"]) == 62
    assert [it.id for it in stockpile] == [f"tokyo-{n}" for n in range(1, 63)]
    for raw, it in zip(SOURCE["items"], stockpile, strict=True):
        assert it.source_id == raw["id"]
        assert it.name_ja == raw["item"]["ja"]
        assert it.description_ja == raw["description"]["ja"]
        # The relief unit is the source's, unless the source gives a stockpiling hint instead
        # of a counting unit; then the source's text is kept beside it.
        if it.source_unit_ja is None:
            assert (it.unit_ja, it.unit_en) == (raw["unit"]["ja"], raw["unit"]["en"])
        else:
            assert it.source_unit_ja == raw["unit"]["ja"]
        ppd = raw.get("per_person_per_day")
        if ppd is None:
            assert it.per_person_per_day is None
        else:
            assert {k: float(v) for k, v in it.per_person_per_day.items()} == ppd


def test_the_stockpile_list_keeps_its_attribution_and_licence():
    source = catalog.stockpile_source()
    assert "東京備蓄ナビ" in source["source"] and source["license"] == "MIT"
    assert source["items"] == 62
    licence = (catalog.DATA / "LICENSE-bichiku-navi").read_text("utf-8")
    assert "MIT License" in licence and "Tokyo Metropolitan Government" in licence
    readme = (catalog.DATA / "README.md").read_text("utf-8")
    for mention in ("東京備蓄ナビ", "MIT", "LICENSE-bichiku-navi", "消費者庁"):
        assert mention in readme


def test_every_item_counts_in_a_plain_unit():
    for it in catalog.items().values():
        assert it.unit_ja and it.unit_en, it.id
        # No stockpiling hints ("適宜", "最低3台", "2個で10日") where a count's unit belongs.
        assert not any(ch.isdigit() for ch in it.unit_ja), it
        assert not {"適宜", "適量", "程度"} & {it.unit_ja[i : i + 2] for i in range(4)}, it
        assert it.kind in ("food", "clothing", "general")
        assert it.category in catalog.categories()


def test_extensions_cover_what_shelters_ask_for():
    items = catalog.items()
    expected = {
        "clothing-children": ("clothing", "子供服"),
        "clothing-adult": ("clothing", "大人服"),
        "bedding-blanket": ("general", "毛布"),
        "medical-otc-cold": ("general", "総合かぜ薬"),
        "pet-food-dog": ("general", "ドッグフード"),
        "food-allergy-friendly": ("food", "アレルギー対応災害食"),
        "food-allergy-canned": ("food", "アレルギー対応缶詰"),
    }
    for item_id, (kind, name_ja) in expected.items():
        assert (items[item_id].kind, items[item_id].name_ja) == (kind, name_ja)
    assert items["clothing-children"].sizes == tuple(str(s) for s in range(80, 161, 10))
    assert items["clothing-adult"].sizes == ("S", "M", "L", "XL")
    categories = {it.category for it in items.values() if it.source == "tsunagu"}
    assert {"clothing", "bedding", "medical", "pets", "other"} <= categories
    # The source document's examples are all in the catalogue.
    assert items["tokyo-51"].name_ja == "おかゆ" and items["tokyo-51"].kind == "food"
    # Only clothing has sizes; the stockpile items are unchanged in that respect.
    assert all(bool(it.sizes) == (it.kind == "clothing") for it in items.values())


def test_allergens_are_the_consumer_affairs_agency_lists():
    allergens = list(catalog.allergens().values())
    assert [a.ja for a in allergens if a.mandatory] == MANDATORY_JA
    assert [a.ja for a in allergens if not a.mandatory] == RECOMMENDED_JA
    assert len({a.id for a in allergens}) == 28
    assert catalog.mandatory_allergens() == (
        "shrimp",
        "crab",
        "walnut",
        "wheat",
        "buckwheat",
        "egg",
        "milk",
        "peanut",
    )
    source = catalog.allergen_source()
    assert source["revision"]["mandatory"] == "2023-03-09"  # くるみ added
    assert source["revision"]["recommended"] == "2024-03-28"  # マカダミアナッツ in, まつたけ out
    assert "カシューナッツ" in source["pending"]["note"]
    assert all(a.en and a.id.isascii() for a in allergens)


def test_suggestion_multiplies_per_person_per_day_by_people_and_days():
    counts = {"adultMale": 10, "adultFemale": 12, "agedFemale": 5, "infantsMale": 2}
    suggested = dict(catalog.suggest_needs(counts, 3))
    # Water: 3 L a day for adults and the elderly, 2.4 L for infants.
    assert suggested["tokyo-1"] == math.ceil((27 * 3 + 2 * Decimal("2.4")) * 3)  # 258
    assert suggested["tokyo-1"] == 258
    # おかゆ is for the elderly only: 3 meals a day.
    assert suggested["tokyo-51"] == 5 * 3 * 3
    # Diapers for infants only: 10 a day.
    assert suggested["tokyo-48"] == 2 * 10 * 3
    # Reusable goods are needed once per person, whatever the stay.
    assert suggested["bedding-blanket"] == 29
    assert dict(catalog.suggest_needs(counts, 7))["bedding-blanket"] == 29
    # Items not counted from heads (contact lenses, prescriptions, seasonings) are left out.
    assert not {"tokyo-33", "tokyo-53", "tokyo-9"} & suggested.keys()
    # Items without a per-person quantity (extensions such as clothing) are never suggested.
    assert "clothing-children" not in suggested
    # Catalogue order, positive whole numbers only.
    order = list(catalog.items())
    assert [order.index(i) for i in suggested] == sorted(order.index(i) for i in suggested)
    assert all(isinstance(q, int) and q > 0 for q in suggested.values())


def test_suggestion_rounds_up_in_exact_decimals():
    # 0.1 bottles of sanitizer × 6 people × 5 days is exactly 3 (in floats it comes to
    # 3.0000000000000004, which would round up to 4).
    assert 0.1 * 6 * 5 > 3
    assert dict(catalog.suggest_needs({"adultMale": 6}, 5))["tokyo-16"] == 3
    # 0.8 vegetable juices × 3 children × 5 days is exactly 12 (floats: 12.000000000000002).
    assert dict(catalog.suggest_needs({"child1Female": 3}, 5))["tokyo-6"] == 12
    # Tissue paper: 0.33 boxes a day for one person → one box.
    assert dict(catalog.suggest_needs({"adultMale": 1}, 1))["tokyo-28"] == 1
    # Pre-washed rice: 0.375 kg × 4 adults × 3 days = 4.5 kg → 5 kg.
    assert dict(catalog.suggest_needs({"adultFemale": 4}, 3))["tokyo-11"] == 5


def test_suggestion_for_nobody_is_empty():
    assert catalog.suggest_needs({}, 3) == []
    assert catalog.suggest_needs({key: 0 for key in catalog.GROUP_KEYS}, 3) == []


@pytest.mark.parametrize(
    ("counts", "days"),
    [
        ({"adults": 3}, 3),
        ({"adultMale": -1}, 3),
        ({"adultMale": 1.5}, 3),
        ({"adultMale": True}, 3),
        ({"adultMale": 1}, 0),
        ({"adultMale": 1}, catalog.MAX_DAYS + 1),
    ],
)
def test_suggestion_refuses_bad_counts(counts, days):
    with pytest.raises(ValueError):
        catalog.suggest_needs(counts, days)


def test_group_keys_are_the_sources():
    assert set(catalog.GROUP_KEYS) == set(SOURCE["items"][0]["per_person_per_day"])
