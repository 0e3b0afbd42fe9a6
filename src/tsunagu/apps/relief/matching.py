"""Matching relief needs with offers (step ③): an optimal, deterministic proposal.

The coordinator gets a proposal, adjusts it and confirms it; nothing here touches the ledger.
The module is pure: values in, values out, no I/O.

Objective, lexicographic:

1. maximise the priority-weighted fulfilled quantity, Σ ``PRIORITY_WEIGHT[priority] × quantity``;
2. among those, minimise the transport, Σ ``distance_m × quantity`` (unit-metres: a pallet of
   100 meals sent 10 km costs as much as 1,000 meals sent 1 km).

Quantities may be split across any number of offers and needs. Compatibility (:func:`compatible`)
is never broken: it decides which pairs get an arc at all.

The solver is a min-cost flow (OR-Tools ``SimpleMinCostFlow``, integer costs and flows, so the
proposal is integral and exact): source → offer (capacity = remaining), offer → need for each
compatible pair (unit cost = distance in metres), need → sink (capacity = remaining, unit cost
``-W × weight``), and a zero-cost source → sink bypass for goods nobody can use. No arc joins two
items, so each item is solved on its own.

Why ``W`` makes the lexicographic order exact: take an optimal flow ``f`` and a lexicographically
optimal flow ``f*``. ``f* - f`` decomposes into simple paths and cycles of ``f``'s residual graph,
each of which can be added to ``f`` alone. A simple path or cycle uses at most ``k = min(offers,
needs)`` forward offer → need arcs (each visits a need and an offer once), so it adds at most
``k × d_max`` metres of distance, while one that raises the weighted fulfilment raises it by at
least 1 (weights and flows are integers) and so changes the cost by at most ``k × d_max - W``.
With ``W = k × d_max + 1`` that is negative, contradicting the optimality of ``f``; so ``f`` has
the maximal weighted fulfilment, and, with that fixed, its cost is minimal exactly when its
distance is. ``W`` does not depend on the quantities, which keeps the costs far from int64 limits.

Determinism: inputs are sorted by id before the graph is built, so the same needs and offers,
in any order, give the same graph and the same (single-threaded) solver run, hence the same
proposal, returned sorted by ``(need_id, offer_id)``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PRIORITY_WEIGHT = {"urgent": 100, "high": 10, "normal": 1}

NEED_CONDITIONS = frozenset({"new", "any"})
OFFER_CONDITIONS = frozenset({"new", "used"})

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius

# OR-Tools multiplies every cost by (nodes + 1) and keeps potentials within int64; stay well
# inside (its own check is max int64 / (2 × (nodes + 1)) per arc).
_COST_LIMIT = 2**62

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True, slots=True)
class NeedIn:
    id: str
    item_id: str
    remaining: int
    priority: str  # "urgent" | "high" | "normal"
    needed_by: str  # ISO date "YYYY-MM-DD"
    allergen_free: frozenset[str]  # allergens the goods must be free of (may be empty)
    size: str | None  # clothing size required, or None
    condition: str  # "new" | "any"
    lat: float  # shelter location
    lon: float


@dataclass(frozen=True, slots=True)
class OfferIn:
    id: str
    item_id: str
    remaining: int
    allergens: frozenset[str] | None  # allergens the goods contain; None = not declared
    size: str | None
    condition: str  # "new" | "used"
    expiry: str | None  # ISO date for food, else None
    lat: float  # ship-from location
    lon: float


@dataclass(frozen=True, slots=True)
class Allocation:
    need_id: str
    offer_id: str
    quantity: int
    distance_m: int  # need ↔ offer distance, per unit (not multiplied by quantity)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> int:
    """Great-circle (haversine) distance in metres, rounded to the nearest metre."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))))


def compatible(need: NeedIn, offer: OfferIn) -> bool:
    """Whether ``offer``'s goods may fill ``need`` at all (dates compare as ISO strings)."""
    if need.item_id != offer.item_id:
        return False
    if need.allergen_free and (
        offer.allergens is None or not need.allergen_free.isdisjoint(offer.allergens)
    ):
        return False
    if need.size is not None and need.size != offer.size:
        return False
    if need.condition != "any" and offer.condition != "new":
        return False
    return offer.expiry is None or offer.expiry >= need.needed_by


def weighted_fulfilment(allocations: Iterable[Allocation], needs: Sequence[NeedIn]) -> int:
    """Σ ``PRIORITY_WEIGHT[need.priority] × quantity`` over the allocations."""
    weight = {n.id: PRIORITY_WEIGHT[n.priority] for n in needs}
    try:
        return sum(weight[a.need_id] * a.quantity for a in allocations)
    except KeyError as e:
        raise ValueError(f"allocation for unknown need {e.args[0]!r}") from None


def total_distance(allocations: Iterable[Allocation]) -> int:
    """Σ ``distance_m × quantity``: unit-metres, the transport the optimiser minimises."""
    return sum(a.distance_m * a.quantity for a in allocations)


def check(
    allocations: Iterable[Allocation], needs: Sequence[NeedIn], offers: Sequence[OfferIn]
) -> None:
    """Raise ``ValueError`` unless every allocation is allowed, alone and together.

    An allocation must name a known need and offer, be compatible, have a positive integer
    quantity, and the allocations of one need (one offer) must not add up to more than its
    remaining quantity.
    """
    _validate(needs, offers)
    need_by_id = {n.id: n for n in needs}
    offer_by_id = {o.id: o for o in offers}
    taken: dict[str, int] = defaultdict(int)
    given: dict[str, int] = defaultdict(int)
    for a in allocations:
        need = need_by_id.get(a.need_id)
        offer = offer_by_id.get(a.offer_id)
        if need is None:
            raise ValueError(f"allocation for unknown need {a.need_id!r}")
        if offer is None:
            raise ValueError(f"allocation from unknown offer {a.offer_id!r}")
        if not _is_int(a.quantity) or a.quantity <= 0:
            raise ValueError(f"{a.need_id} ← {a.offer_id}: quantity {a.quantity!r} is not positive")
        if not compatible(need, offer):
            raise ValueError(f"{a.need_id} ← {a.offer_id}: offer is not compatible with the need")
        taken[need.id] += a.quantity
        given[offer.id] += a.quantity
    for what, totals, by_id in (("need", taken, need_by_id), ("offer", given, offer_by_id)):
        for ident, quantity in totals.items():
            if quantity > by_id[ident].remaining:
                raise ValueError(
                    f"{what} {ident}: {quantity} allocated, {by_id[ident].remaining} remaining"
                )


def greedy(needs: Sequence[NeedIn], offers: Sequence[OfferIn]) -> list[Allocation]:
    """Baseline: needs by priority, then needed-by date, then id; each takes the nearest offers."""
    _validate(needs, offers)
    left = {o.id: o.remaining for o in offers}
    by_item: dict[str, list[OfferIn]] = defaultdict(list)
    for o in sorted(offers, key=lambda o: o.id):
        if o.remaining > 0:
            by_item[o.item_id].append(o)
    result = []
    order = sorted(needs, key=lambda n: (-PRIORITY_WEIGHT[n.priority], n.needed_by, n.id))
    for need in order:
        wanted = need.remaining
        if wanted <= 0:
            continue
        candidates = sorted(
            (distance_m(need.lat, need.lon, o.lat, o.lon), o.id)
            for o in by_item.get(need.item_id, ())
            if left[o.id] > 0 and compatible(need, o)
        )
        for dist, offer_id in candidates:
            quantity = min(wanted, left[offer_id])
            result.append(Allocation(need.id, offer_id, quantity, dist))
            left[offer_id] -= quantity
            wanted -= quantity
            if wanted == 0:
                break
    result.sort(key=lambda a: (a.need_id, a.offer_id))
    return result


def propose(needs: Sequence[NeedIn], offers: Sequence[OfferIn]) -> list[Allocation]:
    """The optimal proposal: max weighted fulfilment, then min Σ distance × quantity.

    Sorted by ``(need_id, offer_id)``; the same needs and offers in any order give the same list.
    Raises ``ValueError`` on malformed input (duplicate ids, negative quantities, unknown
    priorities or conditions, dates not in ``YYYY-MM-DD`` form).
    """
    _validate(needs, offers)
    if any(x.remaining >= _COST_LIMIT for x in (*needs, *offers)):
        raise ValueError("remaining quantities too large to match exactly")
    needs_by_item: dict[str, list[NeedIn]] = defaultdict(list)
    offers_by_item: dict[str, list[OfferIn]] = defaultdict(list)
    for n in sorted(needs, key=lambda n: n.id):
        if n.remaining > 0:
            needs_by_item[n.item_id].append(n)
    for o in sorted(offers, key=lambda o: o.id):
        if o.remaining > 0:
            offers_by_item[o.item_id].append(o)
    codes = _Codes(needs, offers)
    distances: dict[tuple[float, float, float, float], int] = {}
    result: list[Allocation] = []
    for item_id in sorted(needs_by_item.keys() & offers_by_item.keys()):
        result.extend(
            _solve_item(needs_by_item[item_id], offers_by_item[item_id], codes, distances)
        )
    result.sort(key=lambda a: (a.need_id, a.offer_id))
    return result


class _Codes:
    """Integer codes for the attributes :func:`compatible` compares, so pairs test in bulk.

    Dates become their rank among all the date strings (so code order is string order, exactly
    as :func:`compatible` compares them), sizes an index, allergen sets bit masks.
    """

    def __init__(self, needs: Sequence[NeedIn], offers: Sequence[OfferIn]) -> None:
        dates = {n.needed_by for n in needs} | {o.expiry for o in offers if o.expiry is not None}
        self.date = {d: rank for rank, d in enumerate(sorted(dates))}
        self.no_expiry = len(self.date)
        sizes = {n.size for n in needs} | {o.size for o in offers}
        self.size = {s: code for code, s in enumerate(sorted(x for x in sizes if x is not None))}
        allergens: set[str] = set()
        for n in needs:
            allergens |= n.allergen_free
        for o in offers:
            allergens |= o.allergens or frozenset()
        self.bit = {a: 1 << i for i, a in enumerate(sorted(allergens))}
        self.words = max(1, (len(self.bit) + 63) // 64)

    def mask_words(self, allergens: Iterable[str]) -> list[int]:
        mask = sum(self.bit[a] for a in allergens)
        return [(mask >> (64 * w)) & 0xFFFF_FFFF_FFFF_FFFF for w in range(self.words)]


def _compatible_pairs(needs: list[NeedIn], offers: list[OfferIn], codes: _Codes) -> tuple:
    """Indices ``(need, offer)`` of the compatible pairs of one item, in row-major order.

    The same rules as :func:`compatible`, over whole arrays (tests hold the two equal).
    """
    import numpy as np  # imported here, as OR-Tools is: only proposals need them

    n_size = np.array([-1 if n.size is None else codes.size[n.size] for n in needs])
    n_new = np.array([n.condition != "any" for n in needs])
    n_by = np.array([codes.date[n.needed_by] for n in needs])
    n_free = np.array([codes.mask_words(n.allergen_free) for n in needs], dtype=np.uint64)
    n_strict = np.array([bool(n.allergen_free) for n in needs])
    o_size = np.array([-2 if o.size is None else codes.size[o.size] for o in offers])
    o_new = np.array([o.condition == "new" for o in offers])
    o_expiry = np.array(
        [codes.no_expiry if o.expiry is None else codes.date[o.expiry] for o in offers]
    )
    o_has = np.array([codes.mask_words(o.allergens or ()) for o in offers], dtype=np.uint64)
    o_declared = np.array([o.allergens is not None for o in offers])

    rows: list = []
    cols: list = []
    block = max(1, (1 << 21) // len(offers))  # bounds the temporary boolean matrices
    for lo in range(0, len(needs), block):
        sl = slice(lo, lo + block)
        ok = (n_size[sl, None] == -1) | (n_size[sl, None] == o_size[None, :])
        ok &= ~n_new[sl, None] | o_new[None, :]
        ok &= o_expiry[None, :] >= n_by[sl, None]
        ok &= ~n_strict[sl, None] | o_declared[None, :]
        for w in range(codes.words):
            ok &= (n_free[sl, w, None] & o_has[None, :, w]) == 0
        r, c = np.nonzero(ok)
        rows.append(r + lo)
        cols.append(c)
    return np.concatenate(rows), np.concatenate(cols)


def _solve_item(
    needs: list[NeedIn],
    offers: list[OfferIn],
    codes: _Codes,
    distances: dict[tuple[float, float, float, float], int],
) -> list[Allocation]:
    import numpy as np
    from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

    pair_need, pair_offer = _compatible_pairs(needs, offers, codes)
    if len(pair_need) == 0:
        return []

    # Distances per distinct (shelter, ship-from) place, with distance_m itself, so the costs
    # are exactly the figures total_distance adds up.
    n_place: dict[tuple[float, float], int] = {}
    o_place: dict[tuple[float, float], int] = {}
    n_loc = np.array([n_place.setdefault((n.lat, n.lon), len(n_place)) for n in needs])
    o_loc = np.array([o_place.setdefault((o.lat, o.lon), len(o_place)) for o in offers])
    place_pair = n_loc[pair_need] * len(o_place) + o_loc[pair_offer]
    unique_pairs, inverse = np.unique(place_pair, return_inverse=True)
    n_coords, o_coords = list(n_place), list(o_place)
    unique_dist = []
    for code in unique_pairs.tolist():
        (nlat, nlon), (olat, olon) = n_coords[code // len(o_place)], o_coords[code % len(o_place)]
        key = (olat, olon, nlat, nlon)
        dist = distances.get(key)
        if dist is None:
            dist = distances[key] = distance_m(*key)
        unique_dist.append(dist)
    pair_dist = np.array(unique_dist, dtype=np.int64)[inverse.reshape(-1)]

    used_needs = np.unique(pair_need)
    used_offers = np.unique(pair_offer)
    k = min(len(used_needs), len(used_offers))
    big_w = k * int(pair_dist.max()) + 1
    weights = [PRIORITY_WEIGHT[needs[j].priority] for j in used_needs.tolist()]
    n_remaining = [needs[j].remaining for j in used_needs.tolist()]
    o_remaining = [offers[i].remaining for i in used_offers.tolist()]
    supply = sum(o_remaining)
    nodes = 2 + len(used_needs) + len(used_offers)
    if big_w * max(weights) * (nodes + 1) * 4 >= _COST_LIMIT or supply >= _COST_LIMIT:
        raise ValueError(f"item {needs[0].item_id}: too large to match exactly")

    # Nodes: 0 source, 1 sink, then the offers, then the needs, each in id order.
    source, sink = 0, 1
    offer_node = np.full(len(offers), -1, dtype=np.int64)
    offer_node[used_offers] = 2 + np.arange(len(used_offers))
    need_node = np.full(len(needs), -1, dtype=np.int64)
    need_node[used_needs] = 2 + len(used_offers) + np.arange(len(used_needs))
    n_rem_all = np.array([n.remaining for n in needs], dtype=np.int64)
    o_rem_all = np.array([o.remaining for o in offers], dtype=np.int64)

    def ints(values: object) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)

    tails = np.concatenate(
        [
            ints([source] * len(used_offers)),
            offer_node[pair_offer],
            need_node[used_needs],
            ints([source]),
        ]
    )
    heads = np.concatenate(
        [
            offer_node[used_offers],
            need_node[pair_need],
            ints([sink] * len(used_needs)),
            ints([sink]),
        ]
    )
    caps = np.concatenate(
        [
            ints(o_remaining),
            np.minimum(o_rem_all[pair_offer], n_rem_all[pair_need]),
            ints(n_remaining),
            ints([supply]),
        ]
    )
    costs = np.concatenate(
        [np.zeros(len(used_offers), dtype=np.int64), pair_dist, -big_w * ints(weights), ints([0])]
    )

    flow = SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32), heads.astype(np.int32), caps, costs
    )
    flow.set_nodes_supplies(ints([source, sink]), ints([supply, -supply]))
    status = flow.solve()
    if status != SimpleMinCostFlow.OPTIMAL:
        raise RuntimeError(f"item {needs[0].item_id}: min-cost flow ended with {status!r}")
    first = len(used_offers)
    pair_flow = flow.flows(arcs)[first : first + len(pair_need)]
    return [
        Allocation(needs[j].id, offers[i].id, quantity, dist)
        for j, i, quantity, dist in zip(
            pair_need[pair_flow > 0].tolist(),
            pair_offer[pair_flow > 0].tolist(),
            pair_flow[pair_flow > 0].tolist(),
            pair_dist[pair_flow > 0].tolist(),
            strict=True,
        )
    ]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_date(value: str, what: str) -> None:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"{what}: {value!r} is not a YYYY-MM-DD date")


def _validate(needs: Sequence[NeedIn], offers: Sequence[OfferIn]) -> None:
    seen: set[str] = set()
    for n in needs:
        if n.id in seen:
            raise ValueError(f"duplicate need id {n.id!r}")
        seen.add(n.id)
        if not _is_int(n.remaining) or n.remaining < 0:
            raise ValueError(f"need {n.id}: remaining {n.remaining!r} is not a count")
        if n.priority not in PRIORITY_WEIGHT:
            raise ValueError(f"need {n.id}: unknown priority {n.priority!r}")
        if n.condition not in NEED_CONDITIONS:
            raise ValueError(f"need {n.id}: unknown condition {n.condition!r}")
        _check_date(n.needed_by, f"need {n.id} needed_by")
    seen.clear()
    for o in offers:
        if o.id in seen:
            raise ValueError(f"duplicate offer id {o.id!r}")
        seen.add(o.id)
        if not _is_int(o.remaining) or o.remaining < 0:
            raise ValueError(f"offer {o.id}: remaining {o.remaining!r} is not a count")
        if o.condition not in OFFER_CONDITIONS:
            raise ValueError(f"offer {o.id}: unknown condition {o.condition!r}")
        if o.expiry is not None:
            _check_date(o.expiry, f"offer {o.id} expiry")
