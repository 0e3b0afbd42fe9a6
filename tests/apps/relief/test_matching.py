"""The relief matching optimiser: compatibility rules, optimality, determinism, the baseline."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsunagu.apps.relief import matching as m
from tsunagu.apps.relief.matching import (
    PRIORITY_WEIGHT,
    Allocation,
    NeedIn,
    OfferIn,
    check,
    compatible,
    distance_m,
    greedy,
    propose,
    total_distance,
    weighted_fulfilment,
)

# Published coordinates (tsunagu/data/tokyo-municipalities.json).
HACHIOJI = (35.666641, 139.315825)
TACHIKAWA = (35.713904, 139.407749)
MACHIDA = (35.546614, 139.438648)
OSHIMA = (34.750217, 139.355478)
HACHIJO = (33.112752, 139.789095)
OGASAWARA = (27.094281, 142.191925)
PLACES = [HACHIOJI, TACHIKAWA, MACHIDA, OSHIMA, HACHIJO, OGASAWARA]

MANDATORY_ALLERGENS = frozenset(
    {"egg", "milk", "wheat", "shrimp", "crab", "peanut", "buckwheat", "walnut"}
)


def need(id: str = "n1", item_id: str = "tokyo-4", remaining: int = 10, **kw) -> NeedIn:
    lat, lon = kw.pop("at", HACHIOJI)
    fields = {
        "priority": "normal",
        "needed_by": "2025-01-10",
        "allergen_free": frozenset(),
        "size": None,
        "condition": "any",
    }
    fields.update(kw)
    return NeedIn(id=id, item_id=item_id, remaining=remaining, lat=lat, lon=lon, **fields)


def offer(id: str = "o1", item_id: str = "tokyo-4", remaining: int = 10, **kw) -> OfferIn:
    lat, lon = kw.pop("at", TACHIKAWA)
    fields = {
        "allergens": frozenset(),
        "size": None,
        "condition": "new",
        "expiry": None,
    }
    fields.update(kw)
    return OfferIn(id=id, item_id=item_id, remaining=remaining, lat=lat, lon=lon, **fields)


# --- distance ---------------------------------------------------------------------------------


def test_distance_is_haversine_in_whole_metres() -> None:
    assert distance_m(35.0, 139.0, 36.0, 139.0) == 111_195  # one degree of latitude
    assert distance_m(*HACHIOJI, *HACHIOJI) == 0
    assert distance_m(*HACHIOJI, *OGASAWARA) == distance_m(*OGASAWARA, *HACHIOJI)
    assert 950_000 < distance_m(*HACHIOJI, *OGASAWARA) < 1_050_000  # ~1,000 km south


# --- compatibility rules ----------------------------------------------------------------------


def test_same_item_only() -> None:
    assert compatible(need(), offer())
    assert not compatible(need(item_id="tokyo-51"), offer(item_id="tokyo-4"))


def test_allergen_free_need_takes_only_goods_free_of_those_allergens() -> None:
    n = need(allergen_free=frozenset({"egg", "milk"}))
    assert compatible(n, offer(allergens=frozenset()))
    assert compatible(n, offer(allergens=frozenset({"soybean"})))
    assert not compatible(n, offer(allergens=frozenset({"milk"})))
    assert not compatible(n, offer(allergens=frozenset({"egg", "soybean"})))


def test_undeclared_allergens_never_fill_an_allergen_free_need() -> None:
    assert not compatible(need(allergen_free=frozenset({"egg"})), offer(allergens=None))
    assert compatible(need(allergen_free=frozenset()), offer(allergens=None))


def test_sizes_must_be_equal_when_the_need_names_one() -> None:
    clothes = {"item_id": "clothing-children"}
    assert compatible(need(size="150", **clothes), offer(size="150", **clothes))
    assert not compatible(need(size="150", **clothes), offer(size="140", **clothes))
    assert not compatible(need(size="150", **clothes), offer(size=None, **clothes))
    assert compatible(need(size=None, **clothes), offer(size="140", **clothes))


def test_a_need_for_new_goods_takes_only_new_goods() -> None:
    assert compatible(need(condition="new"), offer(condition="new"))
    assert not compatible(need(condition="new"), offer(condition="used"))
    assert compatible(need(condition="any"), offer(condition="used"))


def test_food_expiring_before_the_needed_by_date_never_matches() -> None:
    n = need(needed_by="2025-01-10")
    assert not compatible(n, offer(expiry="2025-01-09"))
    assert compatible(n, offer(expiry="2025-01-10"))  # expiring that very day is still usable
    assert compatible(n, offer(expiry="2026-01-01"))
    assert compatible(n, offer(expiry=None))
    [alloc] = propose([n], [offer(expiry="2025-01-10")])
    assert alloc.quantity == 10
    assert propose([n], [offer(expiry="2025-01-09")]) == []


# --- the source document's example ------------------------------------------------------------


def test_source_document_example() -> None:
    """① Shelters ask for おかゆ and アレルギー対応災害食; ② supporters offer 子供服 (new, size 150)
    and アレルギー対応缶詰 declared free of the 8 mandatory allergens; ③ matching."""
    needs = [
        need("hachijo-okayu", item_id="tokyo-51", remaining=120, priority="high", at=HACHIJO),
        need(  # アレルギー対応災害食, taken as canned food
            "oshima-allergy-meal",
            item_id="tokyo-4",
            remaining=80,
            priority="urgent",
            allergen_free=MANDATORY_ALLERGENS,
            at=OSHIMA,
        ),
    ]
    offers = [
        offer("machida-kids-clothes", item_id="clothing-children", remaining=30, size="150"),
        offer(
            "tachikawa-allergy-cans",
            item_id="tokyo-4",
            remaining=50,
            allergens=frozenset(),
            expiry="2026-03-31",
        ),
    ]
    proposal = propose(needs, offers)
    check(proposal, needs, offers)
    assert proposal == [
        Allocation(
            "oshima-allergy-meal",
            "tachikawa-allergy-cans",
            50,
            distance_m(*OSHIMA, *TACHIKAWA),
        )
    ]

    # A shelter that asks for the clothes gets them; cans with egg, or with nothing declared,
    # stay away from the allergy-free need even though it is urgent and short.
    needs.append(
        need("hachioji-kids-clothes", item_id="clothing-children", remaining=20, size="150",
             condition="new")
    )  # fmt: skip
    offers += [
        offer("cans-with-egg", item_id="tokyo-4", remaining=99, allergens=frozenset({"egg"})),
        offer("cans-undeclared", item_id="tokyo-4", remaining=99, allergens=None),
    ]
    proposal = propose(needs, offers)
    check(proposal, needs, offers)
    assert [(a.need_id, a.offer_id, a.quantity) for a in proposal] == [
        ("hachioji-kids-clothes", "machida-kids-clothes", 20),
        ("oshima-allergy-meal", "tachikawa-allergy-cans", 50),
    ]


# --- splitting, priorities, distance ----------------------------------------------------------


def test_quantities_split_across_offers_and_needs() -> None:
    needs = [need("n1", remaining=10), need("n2", remaining=4, at=MACHIDA)]
    offers = [offer("o1", remaining=6), offer("o2", remaining=7, at=HACHIOJI)]
    proposal = propose(needs, offers)
    check(proposal, needs, offers)
    assert sum(a.quantity for a in proposal) == 13
    assert {a.need_id for a in proposal} == {"n1", "n2"}
    assert sum(a.quantity for a in proposal if a.need_id == "n1") <= 10


def test_an_urgent_need_wins_scarce_goods_even_if_farther() -> None:
    needs = [
        need("near-normal", remaining=5, priority="normal", at=TACHIKAWA),
        need("far-urgent", remaining=5, priority="urgent", at=HACHIJO),
    ]
    offers = [offer("o1", remaining=5, at=TACHIKAWA)]
    assert propose(needs, offers) == [
        Allocation("far-urgent", "o1", 5, distance_m(*HACHIJO, *TACHIKAWA))
    ]


def test_fulfilment_comes_before_any_distance() -> None:
    # Serving both needs means sending the Ogasawara goods a thousand kilometres; it is still
    # better than leaving one unit unserved. Greedy gives the nearby offer to n1 and fails n2.
    needs = [need("n1", remaining=1, at=HACHIOJI), need("n2", remaining=1, size="M", at=MACHIDA)]
    offers = [
        offer("near", remaining=1, size="M", at=HACHIOJI),
        offer("far", remaining=1, size="L", at=OGASAWARA),
    ]
    proposal = propose(needs, offers)
    assert [(a.need_id, a.offer_id) for a in proposal] == [("n1", "far"), ("n2", "near")]
    assert weighted_fulfilment(proposal, needs) == 2
    assert weighted_fulfilment(greedy(needs, offers), needs) == 1


def test_among_equal_fulfilment_the_shortest_transport() -> None:
    needs = [need("a", remaining=3, at=HACHIOJI), need("b", remaining=3, at=HACHIJO)]
    offers = [offer("x", remaining=3, at=OSHIMA), offer("y", remaining=3, at=TACHIKAWA)]
    proposal = propose(needs, offers)
    assert [(a.need_id, a.offer_id) for a in proposal] == [("a", "y"), ("b", "x")]
    assert total_distance(proposal) == 3 * distance_m(*HACHIOJI, *TACHIKAWA) + 3 * distance_m(
        *HACHIJO, *OSHIMA
    )


def test_weights_trade_one_urgent_unit_for_a_hundred_normal_ones() -> None:
    needs = [need("u", remaining=1, priority="urgent"), need("n", remaining=200)]
    proposal = propose(needs, [offer("o", remaining=100)])
    assert [(a.need_id, a.quantity) for a in proposal] == [("n", 99), ("u", 1)]
    assert weighted_fulfilment(proposal, needs) == 100 + 99


def test_nothing_to_match() -> None:
    assert propose([], []) == []
    assert propose([need(remaining=0)], [offer()]) == []
    assert propose([need()], [offer(remaining=0)]) == []
    assert propose([need(item_id="tokyo-1")], [offer(item_id="tokyo-2")]) == []
    assert greedy([need(remaining=0)], [offer()]) == []


# --- check and input validation ---------------------------------------------------------------


def test_check_rejects_what_must_not_be_confirmed() -> None:
    needs = [need("n1", remaining=5, allergen_free=frozenset({"egg"})), need("n2", remaining=5)]
    offers = [offer("o1", remaining=6), offer("o2", remaining=9, allergens=frozenset({"egg"}))]
    d = distance_m(*HACHIOJI, *TACHIKAWA)
    check([Allocation("n1", "o1", 5, d), Allocation("n2", "o2", 5, d)], needs, offers)
    bad = {
        "incompatible": [Allocation("n1", "o2", 1, d)],
        "over the need": [Allocation("n2", "o1", 3, d), Allocation("n2", "o2", 3, d)],
        "over the offer": [Allocation("n1", "o1", 5, d), Allocation("n2", "o1", 2, d)],
        "zero": [Allocation("n2", "o1", 0, d)],
        "negative": [Allocation("n2", "o1", -1, d)],
        "unknown need": [Allocation("n9", "o1", 1, d)],
        "unknown offer": [Allocation("n1", "o9", 1, d)],
    }
    for why, allocations in bad.items():
        with pytest.raises(ValueError):
            check(allocations, needs, offers)
            pytest.fail(f"accepted: {why}")


@pytest.mark.parametrize(
    "needs, offers",
    [
        ([need("n1"), need("n1")], [offer()]),
        ([need()], [offer("o1"), offer("o1")]),
        ([need(remaining=-1)], [offer()]),
        ([need()], [offer(remaining=-1)]),
        ([need(priority="critical")], [offer()]),
        ([need(condition="used")], [offer()]),
        ([need()], [offer(condition="any")]),
        ([need(needed_by="2025-1-10")], [offer()]),
        ([need(needed_by="20250110")], [offer()]),
        ([need()], [offer(expiry="2025/01/10")]),
    ],
)
def test_malformed_input_is_rejected(needs: list[NeedIn], offers: list[OfferIn]) -> None:
    for fn in (propose, greedy):
        with pytest.raises(ValueError):
            fn(needs, offers)


def test_weighted_fulfilment_and_total_distance() -> None:
    needs = [need("u", priority="urgent"), need("h", priority="high"), need("n")]
    allocations = [
        Allocation("u", "o", 2, 1000),
        Allocation("h", "o", 3, 10),
        Allocation("n", "o", 4, 0),
    ]
    assert weighted_fulfilment(allocations, needs) == 2 * 100 + 3 * 10 + 4
    assert total_distance(allocations) == 2 * 1000 + 3 * 10


# --- properties on random instances -----------------------------------------------------------

DATES = ["2025-01-08", "2025-01-10", "2025-01-12"]
ALLERGENS = ["egg", "milk", "wheat"]


@st.composite
def instances(draw, max_needs: int = 8, max_offers: int = 8, max_quantity: int = 30):
    items = ["tokyo-4", "clothing-children"]
    needs = []
    for i in range(draw(st.integers(0, max_needs))):
        item = draw(st.sampled_from(items))
        needs.append(
            NeedIn(
                id=f"n{i:02d}",
                item_id=item,
                remaining=draw(st.integers(0, max_quantity)),
                priority=draw(st.sampled_from(sorted(PRIORITY_WEIGHT))),
                needed_by=draw(st.sampled_from(DATES)),
                allergen_free=draw(st.frozensets(st.sampled_from(ALLERGENS), max_size=2)),
                size=draw(st.sampled_from([None, "140", "150"])),
                condition=draw(st.sampled_from(["new", "any"])),
                lat=(place := draw(st.sampled_from(PLACES)))[0],
                lon=place[1],
            )
        )
    offers = []
    for i in range(draw(st.integers(0, max_offers))):
        offers.append(
            OfferIn(
                id=f"o{i:02d}",
                item_id=draw(st.sampled_from(items)),
                remaining=draw(st.integers(0, max_quantity)),
                allergens=draw(st.none() | st.frozensets(st.sampled_from(ALLERGENS), max_size=2)),
                size=draw(st.sampled_from([None, "140", "150"])),
                condition=draw(st.sampled_from(["new", "used"])),
                expiry=draw(st.sampled_from([None, *DATES])),
                lat=(place := draw(st.sampled_from(PLACES)))[0],
                lon=place[1],
            )
        )
    return needs, offers


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(instances(), st.randoms(use_true_random=False))
def test_propose_is_valid_deterministic_and_never_worse_than_greedy(instance, rnd) -> None:
    needs, offers = instance
    proposal = propose(needs, offers)
    check(proposal, needs, offers)
    assert proposal == sorted(proposal, key=lambda a: (a.need_id, a.offer_id))
    assert all(a.distance_m == _distance(a, needs, offers) for a in proposal)

    # Same input in any order: the identical list.
    shuffled_needs, shuffled_offers = list(needs), list(offers)
    rnd.shuffle(shuffled_needs)
    rnd.shuffle(shuffled_offers)
    assert propose(shuffled_needs, shuffled_offers) == proposal

    baseline = greedy(needs, offers)
    check(baseline, needs, offers)
    assert weighted_fulfilment(proposal, needs) >= weighted_fulfilment(baseline, needs)
    if weighted_fulfilment(proposal, needs) == weighted_fulfilment(baseline, needs):
        assert total_distance(proposal) <= total_distance(baseline)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_needs=3, max_offers=3, max_quantity=3))
def test_propose_is_optimal_against_brute_force(instance) -> None:
    needs, offers = instance
    proposal = propose(needs, offers)
    best = _brute_force(needs, offers)
    got = (weighted_fulfilment(proposal, needs), -total_distance(proposal))
    assert got == best


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_needs=15, max_offers=15))
def test_bulk_compatibility_agrees_with_compatible(instance) -> None:
    needs, offers = instance
    codes = m._Codes(needs, offers)
    for item in {n.item_id for n in needs} & {o.item_id for o in offers}:
        item_needs = [n for n in needs if n.item_id == item]
        item_offers = [o for o in offers if o.item_id == item]
        rows, cols = m._compatible_pairs(item_needs, item_offers, codes)
        expected = [
            (j, i)
            for j, n in enumerate(item_needs)
            for i, o in enumerate(item_offers)
            if compatible(n, o)
        ]
        assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == expected


def test_many_allergens_span_several_mask_words() -> None:
    allergens = [f"a{k:03d}" for k in range(150)]
    needs = [
        need("n-free-of-a149", remaining=5, allergen_free=frozenset({"a149"})),
        need("n-free-of-a003", remaining=5, allergen_free=frozenset({"a003"})),
    ]
    offers = [offer("o", remaining=10, allergens=frozenset(allergens[:100]))]
    proposal = propose(needs, offers)
    assert [(a.need_id, a.quantity) for a in proposal] == [("n-free-of-a149", 5)]


def test_same_input_same_proposal_at_scale() -> None:
    rng = random.Random(7)
    needs = [
        need(f"n{i:04d}", remaining=rng.randint(1, 50), priority=rng.choice(["urgent", "normal"]),
             at=rng.choice(PLACES), size=rng.choice([None, "150"]))
        for i in range(300)
    ]  # fmt: skip
    offers = [
        offer(f"o{i:04d}", remaining=rng.randint(1, 50), at=rng.choice(PLACES),
              size=rng.choice([None, "150"]))
        for i in range(300)
    ]  # fmt: skip
    first = propose(needs, offers)
    check(first, needs, offers)
    assert propose(list(reversed(needs)), list(reversed(offers))) == first
    assert weighted_fulfilment(first, needs) >= weighted_fulfilment(greedy(needs, offers), needs)


# --- helpers ----------------------------------------------------------------------------------


def _distance(a: Allocation, needs: list[NeedIn], offers: list[OfferIn]) -> int:
    n = next(x for x in needs if x.id == a.need_id)
    o = next(x for x in offers if x.id == a.offer_id)
    return distance_m(n.lat, n.lon, o.lat, o.lon)


def _brute_force(needs: list[NeedIn], offers: list[OfferIn]) -> tuple[int, int]:
    """The best (weighted fulfilment, -transport) over every integral allocation."""
    pairs = [(n, o) for n in needs for o in offers if compatible(n, o)]
    per_offer = []
    for o in offers:
        mine = [n for n, oo in pairs if oo is o]
        choices = [
            [(n, o, q) for n, q in zip(mine, qs, strict=True) if q]
            for qs in itertools.product(*(range(min(n.remaining, o.remaining) + 1) for n in mine))
            if sum(qs) <= o.remaining
        ]
        per_offer.append(choices)
    best = (0, 0)
    for combo in itertools.product(*per_offer):
        taken: dict[str, int] = {}
        score = distance = 0
        for n, o, q in itertools.chain.from_iterable(combo):
            taken[n.id] = taken.get(n.id, 0) + q
            score += PRIORITY_WEIGHT[n.priority] * q
            distance += distance_m(n.lat, n.lon, o.lat, o.lon) * q
        if all(q <= n.remaining for n in needs if (q := taken.get(n.id, 0))):
            best = max(best, (score, -distance))
    return best
