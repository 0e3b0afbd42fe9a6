"""Relief supply matching: time to a proposal, and its fulfilment against the greedy baseline.

A seeded generator makes 5,000 needs at 50 shelters in the Tama and island municipalities
(their published coordinates; shelters past the 39th sit within about 1 km of one) and 5,000
offers shipped from any of Tokyo's 62 municipalities, over 60 items: 56 from the metropolitan
stockpile list ("tokyo-<n>", food among them with expiry dates and allergens from the 28 the
Consumer Affairs Agency lists) and 4 clothing items with sizes. Item popularity is skewed, as
water, rice and diapers are asked for far more than lanterns.

For each seed it times ``propose`` (the whole call, validation included) and ``greedy`` on the
same input, checks both with ``check``, and compares the priority-weighted fulfilment and the
transport (Σ distance × quantity). Targets: proposal ≤ 5 s on every seed, and fulfilment never
below greedy's (the worst ratio over the seeds ≥ 1).
"""

from __future__ import annotations

import argparse
import json
import random
import time

import common

ALLERGENS_MANDATORY = ["egg", "milk", "wheat", "shrimp", "crab", "peanut", "buckwheat", "walnut"]
ALLERGENS_RECOMMENDED = [
    "almond", "abalone", "squid", "salmon-roe", "orange", "cashew", "kiwi", "beef", "sesame",
    "salmon", "mackerel", "soybean", "chicken", "banana", "pork", "macadamia", "peach", "yam",
    "apple", "gelatin",
]  # fmt: skip
ALLERGENS = ALLERGENS_MANDATORY + ALLERGENS_RECOMMENDED  # the 28 CAA allergens
FOOD = {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 45, 46, 47, 51, 55, 56}
STOCKPILE = [n for n in range(1, 63) if n not in {9, 33, 34, 37, 53, 54}]  # 56 items
CLOTHING = ["clothing-children", "clothing-adult", "underwear-children", "underwear-adult"]
SIZES = {
    "clothing-children": ["80", "90", "100", "110", "120", "130", "140", "150", "160"],
    "underwear-children": ["80", "90", "100", "110", "120", "130", "140", "150", "160"],
    "clothing-adult": ["S", "M", "L", "XL"],
    "underwear-adult": ["S", "M", "L", "XL"],
}
BASE_DAY = 20_000  # days since 1970-01-01: 2024-10-04, a fixed "today"


def _iso(day: int) -> str:
    import datetime

    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()


def places() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Shelter and ship-from coordinates from the packaged municipality list."""
    path = common.SRC / "tsunagu" / "data" / "tokyo-municipalities.json"
    raw = json.loads(path.read_text("utf-8"))["municipalities"]
    members = sorted(
        ((m["lat"], m["lon"]) for m in raw if m["region"] in ("tama", "islands")),
    )
    everyone = sorted((m["lat"], m["lon"]) for m in raw)
    return members, everyone


def generate(
    seed: int, needs: int, offers: int, shelters: int, offer_max: int = 300
) -> tuple[list, list]:
    from tsunagu.apps.relief.matching import NeedIn, OfferIn

    rng = random.Random(seed)
    members, everyone = places()
    sites = []
    for i in range(shelters):
        lat, lon = members[i % len(members)]
        if i >= len(members):
            lat, lon = lat + rng.uniform(-0.01, 0.01), lon + rng.uniform(-0.01, 0.01)
        sites.append((round(lat, 6), round(lon, 6)))
    items = [f"tokyo-{n}" for n in STOCKPILE] + CLOTHING
    popularity = [1 / (rank + 1) ** 0.6 for rank in range(len(items))]
    rng.shuffle(popularity)
    food = {f"tokyo-{n}" for n in FOOD}

    def allergen_set() -> frozenset[str]:
        k = rng.choice([0, 0, 1, 1, 2, 3, 5])
        return frozenset(rng.sample(ALLERGENS, k))

    need_list = []
    for i in range(needs):
        item = rng.choices(items, popularity)[0]
        lat, lon = rng.choice(sites)
        free: frozenset[str] = frozenset()
        if item in food and rng.random() < 0.25:
            free = (
                frozenset(ALLERGENS_MANDATORY)
                if rng.random() < 0.5
                else frozenset(rng.sample(ALLERGENS, rng.randint(1, 3)))
            )
        size = rng.choice(SIZES[item]) if item in SIZES else None
        condition = "new" if rng.random() < (0.5 if item in SIZES else 0.1) else "any"
        need_list.append(
            NeedIn(
                id=f"need-{i:05d}",
                item_id=item,
                remaining=rng.randint(5, 300),
                priority=rng.choices(["urgent", "high", "normal"], [1, 3, 6])[0],
                needed_by=_iso(BASE_DAY + rng.randint(1, 30)),
                allergen_free=free,
                size=size,
                condition=condition,
                lat=lat,
                lon=lon,
            )
        )
    offer_list = []
    for i in range(offers):
        item = rng.choices(items, popularity)[0]
        lat, lon = rng.choice(everyone)
        allergens: frozenset[str] | None = frozenset()
        if item in food:
            allergens = None if rng.random() < 0.15 else allergen_set()
        offer_list.append(
            OfferIn(
                id=f"offer-{i:05d}",
                item_id=item,
                remaining=rng.randint(5, offer_max),
                allergens=allergens,
                size=rng.choice(SIZES[item]) if item in SIZES else None,
                condition="new" if rng.random() < 0.6 else "used",
                expiry=_iso(BASE_DAY + rng.randint(-5, 400)) if item in food else None,
                lat=lat,
                lon=lon,
            )
        )
    return need_list, offer_list


def run_seed(seed: int, needs: int, offers: int, shelters: int, offer_max: int) -> dict:
    from tsunagu.apps.relief import matching as m

    need_list, offer_list = generate(seed, needs, offers, shelters, offer_max)
    start, cpu = time.perf_counter(), time.process_time()
    proposal = m.propose(need_list, offer_list)
    propose_s, propose_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    baseline = m.greedy(need_list, offer_list)
    greedy_s = time.perf_counter() - start
    m.check(proposal, need_list, offer_list)
    m.check(baseline, need_list, offer_list)
    row = {
        "seed": seed,
        "propose_s": round(propose_s, 3),
        "propose_cpu_s": round(propose_cpu_s, 3),
        "greedy_s": round(greedy_s, 3),
        "propose_weighted": m.weighted_fulfilment(proposal, need_list),
        "greedy_weighted": m.weighted_fulfilment(baseline, need_list),
        "propose_unit_m": m.total_distance(proposal),
        "greedy_unit_m": m.total_distance(baseline),
        "propose_allocations": len(proposal),
        "greedy_allocations": len(baseline),
        "demand_weighted": sum(m.PRIORITY_WEIGHT[n.priority] * n.remaining for n in need_list),
        "supply": sum(o.remaining for o in offer_list),
        "demand": sum(n.remaining for n in need_list),
    }
    row["ratio"] = row["propose_weighted"] / max(row["greedy_weighted"], 1)
    return row


SCENARIOS = {"balanced": 300, "scarce": 150}  # largest offer quantity (needs take 5..300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--needs", type=int, default=5000)
    parser.add_argument("--offers", type=int, default=5000)
    parser.add_argument("--shelters", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    machine = common.machine()
    ceiling = common.ed25519_ceiling(runs=3, seconds=0.3)
    rows = []
    for scenario, offer_max in SCENARIOS.items():
        for seed in range(1, args.seeds + 1):
            row = run_seed(seed, args.needs, args.offers, args.shelters, offer_max)
            row["scenario"] = scenario
            rows.append(row)
            print(
                f"   {scenario} seed {seed}: propose {row['propose_s']:.2f} s"
                f" (cpu {row['propose_cpu_s']:.2f}), greedy {row['greedy_s']:.2f} s;"
                f" supply/demand {row['supply'] / row['demand']:.2f};"
                f" weighted {row['propose_weighted']:,} vs {row['greedy_weighted']:,}"
                f" (+{100 * (row['ratio'] - 1):.3f} %); unit-km"
                f" {row['propose_unit_m'] / 1000:,.0f} vs {row['greedy_unit_m'] / 1000:,.0f}"
            )
    times = sorted(r["propose_s"] for r in rows)
    worst_ratio = min(r["ratio"] for r in rows)
    metrics = [
        common.metric(
            "proposal time, slowest run", times[-1], "s",
            target=5.0, target_text="≤ 5 s", higher_is_better=False,
        ),
        common.metric("proposal time, median run", times[len(times) // 2], "s"),
        common.metric(
            "proposal CPU time, slowest run", max(r["propose_cpu_s"] for r in rows), "s"
        ),
        common.metric(
            "weighted fulfilment propose / greedy, worst run", worst_ratio, "x",
            target=1.0, target_text="≥ 1 (never worse than greedy)",
        ),
    ]  # fmt: skip
    for scenario in SCENARIOS:
        mine = [r for r in rows if r["scenario"] == scenario]
        metrics += [
            common.metric(
                f"{scenario}: weighted fulfilment gain over greedy, worst seed",
                100 * (min(r["ratio"] for r in mine) - 1), "%",
            ),
            common.metric(
                f"{scenario}: weighted fulfilment gain over greedy, mean",
                100 * (sum(r["ratio"] for r in mine) / len(mine) - 1), "%",
            ),
            common.metric(
                f"{scenario}: transport propose / greedy, mean (Σ distance × quantity)",
                sum(r["propose_unit_m"] / max(r["greedy_unit_m"], 1) for r in mine) / len(mine),
                "x",
            ),
        ]  # fmt: skip
    # metric() passes "≤ 5 s" only when strictly below; exactly 5.000 s is a pass too.
    metrics[0]["ok"] = times[-1] <= 5.0
    common.print_metrics("relief_matching", ceiling, metrics)
    print(f"   load average at start {machine['loadavg_start']}, end {common.loadavg()}")
    path = common.write_result(
        "relief_matching",
        machine,
        ceiling,
        metrics,
        params={
            "needs": args.needs,
            "offers": args.offers,
            "shelters": args.shelters,
            "items": len(STOCKPILE) + len(CLOTHING),
            "seeds": list(range(1, args.seeds + 1)),
            "scenarios": {k: f"offer quantities 5..{v}" for k, v in SCENARIOS.items()},
            "runs": rows,
        },
        notes=[
            "propose: OR-Tools SimpleMinCostFlow per item, exact lexicographic objective "
            "(max priority-weighted fulfilment, then min Σ distance_m × quantity)",
            "greedy: needs by priority, needed_by, id; each takes the nearest compatible offers",
            "times are wall-clock for the whole call on a shared machine (see loadavg); "
            "CPU time is the process's own",
        ],
    )
    print(f"   wrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
