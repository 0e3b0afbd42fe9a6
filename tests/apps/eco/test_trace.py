"""A lot's trace is exact (``GET /api/v1/eco/credits/lots/{id}/trace``), on a fresh eco demo
node of its own (it compiles a second report, which the shared demo's tests must not see):
every lot, split or not, lists exactly the readings inside its serials, with grams adding up
to its t-CO2 × 1,000,000; the parts of a split lot partition the trace of the lot they came
from; carried-in grams come first and name the report (and readings) they came from; a
reinstated device's rebased reading counts nowhere."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.trace import Tracer
from tsunagu.apps.eco.view import EcoView
from tsunagu.ledger.block import format_timestamp

from .conftest import PASSWORD, Api, EcoChain

E = "/api/v1/eco"
T = 1_000_000


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcoChain]:
    from tsunagu.demo import create_demo
    from tsunagu.platform import discover_apps

    apps = [a for a in discover_apps() if a.name == "eco"]
    node, private = create_demo(tmp_path_factory.mktemp("eco-trace"), None, apps, password=PASSWORD)
    try:
        yield EcoChain(node, private)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def api(chain: EcoChain) -> Iterator[Api]:
    from tsunagu.platform import discover_apps
    from tsunagu.web.app import create_app

    apps = [a for a in discover_apps() if a.name == "eco"]
    with TestClient(create_app(chain.node, chain.private, apps), follow_redirects=False) as http:
        yield Api(http)


def lots(chain: EcoChain) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in chain.node.store.state().scan("eco.lot")}


def trace(api: Api, lot: str) -> dict[str, Any]:
    r = api.get(f"{E}/credits/lots/{lot}/trace", "envstaff1")
    assert r.status_code == 200, r.text
    return r.json()


def pieces(t: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(r["tx_id"], r["serial"], r["grams"]) for r in t["readings"]]


def assert_exact(t: dict[str, Any], lot: dict[str, Any]) -> None:
    readings = t["readings"]
    assert t["tco2"] == lot["tco2"] and t["grams"] == lot["tco2"] * T
    assert sum(r["grams"] for r in readings) == lot["tco2"] * T
    per_serial = Counter()
    for r in readings:
        assert {"tx_id", "grams", "proof_url", "tx_url", "report", "serial"} <= set(r)
        assert 0 < r["grams"] <= r["reading_grams"]
        per_serial[r["serial"]] += r["grams"]
    assert per_serial == {s: T for s in range(lot["serial_start"], lot["serial_end"] + 1)}
    assert len(set(pieces(t))) == len(readings)


def test_every_demo_lot_traces_exactly_and_the_parts_partition_the_lot(
    api: Api, chain: EcoChain
) -> None:
    found = lots(chain)
    assert len(found) >= 3 and any(x.get("parent") for x in found.values())  # split by sales
    traces = {k: trace(api, k) for k in found}
    for key, lot in found.items():
        assert_exact(traces[key], lot)
    split = next(k for k, x in found.items() if x.get("parent") and x["tco2"] > 1)
    assert len(traces[split]["readings"]) < 2000  # not all the report's 2,700-odd readings
    # The parts of the report's lot (issued 10 t, then sold and retired in parts) partition
    # the trace the whole lot had: computed for its original serial range.
    report = chain.get("report", "r-0001")
    whole = {**found[report["lot"]], "serial_start": 1, "serial_end": report["tco2"]}
    whole["tco2"] = report["tco2"]
    original = Tracer(EcoView(chain.node)).trace(whole)
    assert_exact(original, whole)
    parts = sorted(found, key=lambda k: found[k]["serial_start"])
    joined = [p for k in parts for p in pieces(traces[k])]
    assert joined == pieces(original)
    # Each reading of the report is either in the lots or in the carried remainder (its last
    # grams): in log order, the lots take exactly tco2 × 1,000,000 g from the front.
    own = Tracer(EcoView(chain.node)).own(report)
    assert sum(r["grams"] for r in own) == report["grams"]
    taken = Counter()
    for tx, _, grams in joined:
        taken[tx] += grams
    left = [r["grams"] - taken[r["tx_id"]] for r in own]
    assert sum(left) == report["carry_out_g"] and all(g >= 0 for g in left)
    still = [i for i, g in enumerate(left) if g]  # the remainder is the report's last grams
    assert still == list(range(len(left) - len(still), len(left)))


def _last_month_device(chain: EcoChain) -> Any:
    """A new PV device whose readings all fall in last month (Japan time), with a
    suspension and reinstatement in between: its first reading after that is a new
    baseline (a meter jump that must earn nothing)."""
    now = datetime.now(UTC)
    year, month = map(int, rules.month_of(format_timestamp(now)).split("-"))
    last = f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
    start = datetime.fromisoformat(last + "-02T00:00:00+09:00").astimezone(UTC)
    d = chain.device(hours=(now - start).total_seconds() / 3600)
    day = timedelta(days=1)
    chain.ok(d.key, *chain.reading(d, start + day, d.a + 20_000, d.b + 5_000))
    chain.ok("envstaff1", "device.suspend", {"device": d.id, "reason": "メーター交換"})
    chain.ok("envstaff1", "device.reinstate", {"device": d.id, "reason": "交換済み"})
    rebased = chain.ok(d.key, *chain.reading(d, start + 2 * day, d.a + 900_000, d.b + 5_000))
    chain.ok(d.key, *chain.reading(d, start + 3 * day, d.a + 930_000, d.b + 10_000))
    return d, rebased.tx_id, last


def test_carried_grams_come_first_and_a_sale_partitions_the_lot(api: Api, chain: EcoChain) -> None:
    device, rebased, last = _last_month_device(chain)
    first = chain.get("report", "r-0001")
    prog = chain.get("programme", "main")
    assert rules.next_month(prog["closed_through"]) == last
    chain.ok("envstaff1", "report.compile", {"period_from": last, "period_to": last})
    report_id = chain.get("programme", "main")["pending"]
    chain.ok("verifier1", "report.approve", {"report": report_id})
    chain.ok("envstaff1", "credit.issue", {"report": report_id})
    report = chain.get("report", report_id)
    assert report["carry_in_g"] == first["carry_out_g"] > 0
    assert report["devices"][device.id] > 0
    lot_id = report["lot"]
    assert lot_id and report["tco2"] >= 2, report
    lot = lots(chain)[lot_id]
    assert lot["serial_start"] == first["tco2"] + 1

    # The reading index agrees with the contract per device (the rebased reading earns 0).
    own = Tracer(EcoView(chain.node)).own(report)
    by_device = Counter()
    for r in own:
        by_device[r["device"]] += r["grams"]
    assert dict(by_device) == report["devices"]
    assert rebased not in {r["tx_id"] for r in own}

    whole = trace(api, lot_id)
    assert_exact(whole, lot)
    carried = [r for r in whole["readings"] if r["carried"]]
    assert carried == whole["readings"][: len(carried)]  # carried-in grams first
    assert {r["report"] for r in carried} == {"r-0001"} and whole["carried_from"] == ["r-0001"]
    assert sum(r["grams"] for r in carried) == report["carry_in_g"]
    assert all(r["report"] == report_id for r in whole["readings"][len(carried) :])
    assert rebased not in {r["tx_id"] for r in whole["readings"]}
    # The carried grams are exactly what the first report's lots left of its readings.
    first_lots = [k for k, x in lots(chain).items() if x["report"] == "r-0001"]
    taken = Counter()
    for k in [*first_lots, lot_id]:
        for r in trace(api, k)["readings"]:
            if r["report"] == "r-0001":
                taken[r["tx_id"]] += r["grams"]
    first_own = Tracer(EcoView(chain.node)).own(first)
    assert all(taken[r["tx_id"]] == r["grams"] for r in first_own)
    assert set(taken) == {r["tx_id"] for r in first_own}

    # A sale splits off the first tonne: the two parts partition the lot's trace.
    chain.ok("envstaff1", "credit.list", {"lot": lot_id, "price_yen_per_t": 3000})
    chain.ok("company1", "credit.buy", {"lot": lot_id, "tco2": 1})
    part_id = next(k for k, x in lots(chain).items() if x.get("parent") == lot_id)
    after = lots(chain)
    assert_exact(trace(api, part_id), after[part_id])
    assert_exact(trace(api, lot_id), after[lot_id])
    joined = pieces(trace(api, part_id)) + pieces(trace(api, lot_id))
    assert joined == pieces(whole)
    assert api.get(f"{E}/credits/lots/{part_id}/trace", "company1").status_code == 403
