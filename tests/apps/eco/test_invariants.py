"""The credit invariants under random sequences of operations (hypothesis), with the eco
contract applied to an in-memory state exactly as the node's executor applies it: a
refused operation's writes are discarded.

- serial ranges of all lots stay disjoint and together cover every serial issued;
- a retired lot never changes again;
- nobody ever holds, sells or retires more than issued;
- no device-month is ever counted in two reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsunagu.apps.eco.contract import EcoContract
from tsunagu.contracts import Member, TxContext
from tsunagu.errors import Rejected

CONTRACT = EcoContract()
ORGS = {
    "hachioji": {"id": "hachioji", "type": "municipality", "municipality": "hachioji"},
    "co-a": {"id": "co-a", "type": "company", "municipality": "fuchu"},
    "co-b": {"id": "co-b", "type": "company", "municipality": "hino"},
}
STAFF = Member("s" * 64, b"", "hachioji", ("env_staff",), "user")
VERIFIER = Member("v" * 64, b"", "hachioji", ("verifier",), "user")
BUYERS = {o: Member(o[-1] * 64, b"", o, ("company",), "user") for o in ("co-a", "co-b")}


class MemState:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], bytes] = {
            ("identity.org", k): json.dumps(v).encode() for k, v in ORGS.items()
        }

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        raw = self.rows.get((ns, key))
        return None if raw is None else json.loads(raw)

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        for n, k in sorted(self.rows):
            if n == ns and k.startswith(prefix):
                yield k, json.loads(self.rows[(n, k)])

    def apply(self, signer: Member, type_: str, payload: dict, at: str, n: int) -> str | None:
        ctx = TxContext("eco", f"{n:064x}", type_, signer, n, at, n, self)
        try:
            CONTRACT.apply(ctx, CONTRACT.parse(type_, payload))
        except Rejected as exc:
            return exc.code
        for key, value in ctx.writes.items():
            if value is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = value
        return None

    def lots(self) -> dict[str, dict[str, Any]]:
        return dict(self.scan("eco.lot"))


def _device(state: MemState, key: str, months: dict[str, int]) -> None:
    record = {
        "id": key,
        "kind": "pv",
        "status": "approved",
        "consent": {"at": "x"},
        "municipality": "hachioji",
        "months": {m: {"g": g, "n": 1, "a": 0, "b": 0} for m, g in months.items()},
    }
    state.rows[("eco.device", key)] = json.dumps(record).encode()


def _issue(state: MemState, grams: int) -> None:
    _device(state, "d-1", {"2026-04": grams})
    at = "2026-06-01T00:00:00.000Z"
    assert (
        state.apply(
            STAFF, "report.compile", {"period_from": "2026-04", "period_to": "2026-04"}, at, 1
        )
        is None
    )
    assert state.apply(VERIFIER, "report.approve", {"report": "r-0001"}, at, 2) is None
    assert state.apply(STAFF, "credit.issue", {"report": "r-0001"}, at, 3) is None
    assert (
        state.apply(STAFF, "credit.list", {"lot": "lot-0001", "price_yen_per_t": 3000}, at, 4)
        is None
    )


operation = st.tuples(
    st.sampled_from(["buy", "transfer", "retire", "list"]),
    st.sampled_from(["co-a", "co-b"]),
    st.integers(min_value=0, max_value=12),  # which lot (by position)
    st.integers(min_value=1, max_value=40),  # t-CO2
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grams=st.integers(min_value=1_000_000, max_value=30_999_999),
    ops=st.lists(operation, max_size=25),
)
def test_lots_partition_serials_and_retired_never_move(grams: int, ops: list) -> None:
    state = MemState()
    _issue(state, grams)
    issued = grams // 1_000_000
    retired_seen: dict[str, dict] = {}
    for n, (kind, org, which, tco2) in enumerate(ops, start=10):
        lots = sorted(state.lots())
        lot = lots[which % len(lots)]
        at = f"2026-06-02T00:00:{n % 60:02d}.000Z"
        buyer = BUYERS[org]
        if kind == "buy":
            state.apply(buyer, "credit.buy", {"lot": lot, "tco2": tco2}, at, n)
        elif kind == "transfer":
            other = "co-b" if org == "co-a" else "co-a"
            state.apply(buyer, "credit.transfer", {"lot": lot, "tco2": tco2, "to": other}, at, n)
        elif kind == "retire":
            state.apply(buyer, "credit.retire", {"lot": lot, "tco2": tco2, "purpose": "p"}, at, n)
        else:
            state.apply(buyer, "credit.list", {"lot": lot, "price_yen_per_t": 100}, at, n)
        current = state.lots()
        for key, before in retired_seen.items():
            assert current[key] == before  # a retired lot never changes
        retired_seen.update({k: v for k, v in current.items() if v["status"] == "retired"})
        serials = sorted(
            s for v in current.values() for s in range(v["serial_start"], v["serial_end"] + 1)
        )
        assert serials == list(range(1, issued + 1))  # disjoint, complete, none created
        assert all(
            v["tco2"] == v["serial_end"] - v["serial_start"] + 1 > 0 for v in current.values()
        )
    carry = state.get("eco.programme", "main")["carry_g"]
    assert issued * 1_000_000 + carry == grams  # never rounded up, nothing lost


@settings(max_examples=40, deadline=None)
@given(
    months=st.dictionaries(
        st.sampled_from([f"2026-{m:02d}" for m in range(1, 10)]),
        st.integers(min_value=0, max_value=3_000_000),
        min_size=1,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=4, unique=True),
)
def test_no_device_month_in_two_reports(months: dict[str, int], cuts: list[int]) -> None:
    state = MemState()
    _device(state, "d-1", months)
    _device(state, "d-2", {m: g // 2 for m, g in months.items()})
    start, n, counted = 1, 0, 0
    for cut in sorted(cuts):
        if cut < start:
            continue
        n += 1
        code = state.apply(
            STAFF,
            "report.compile",
            {"period_from": f"2026-{start:02d}", "period_to": f"2026-{cut:02d}"},
            "2026-11-01T00:00:00.000Z",
            n,
        )
        assert code is None
        report = state.get("eco.report", f"r-{n:04d}")
        counted += report["grams"]
        assert (
            state.apply(
                VERIFIER, "report.approve", {"report": report["id"]}, "2026-11-01T00:00:00.000Z", n
            )
            is None
        )
        assert (
            state.apply(
                STAFF, "credit.issue", {"report": report["id"]}, "2026-11-01T00:00:00.000Z", n
            )
            is None
        )
        # The same months again are refused: the next report must start after them.
        again = state.apply(
            STAFF,
            "report.compile",
            {"period_from": f"2026-{start:02d}", "period_to": f"2026-{cut:02d}"},
            "2026-11-01T00:00:00.000Z",
            n,
        )
        assert again == "period_gap"
        start = cut + 1
    total = sum(g for m, g in months.items() if int(m[5:]) < start)
    assert counted == total + sum(g // 2 for m, g in months.items() if int(m[5:]) < start)
    prog = state.get("eco.programme", "main")
    tonnes = sum(v["tco2"] for v in state.lots().values())
    assert tonnes * 1_000_000 + prog["carry_g"] == counted


def test_a_rejected_report_reopens_its_months() -> None:
    state = MemState()
    _device(state, "d-1", {"2026-04": 2_500_000, "2026-05": 10})
    at = "2026-07-01T00:00:00.000Z"
    period = {"period_from": "2026-04", "period_to": "2026-05"}
    assert state.apply(STAFF, "report.compile", period, at, 1) is None
    assert state.apply(STAFF, "report.compile", period, at, 2) == "report_pending"
    assert state.apply(STAFF, "credit.issue", {"report": "r-0001"}, at, 3) == "not_approved"
    assert state.apply(VERIFIER, "report.reject", {"report": "r-0001", "reason": "要確認"},
                       at, 4) is None  # fmt: skip
    assert state.get("eco.programme", "main")["closed_through"] is None
    assert state.apply(STAFF, "report.compile", period, at, 5) is None
    assert state.apply(VERIFIER, "report.approve", {"report": "r-0002"}, at, 6) is None
    assert state.apply(STAFF, "credit.issue", {"report": "r-0002"}, at, 7) is None
    lot = state.get("eco.lot", "lot-0001")
    assert (lot["serial_start"], lot["serial_end"], lot["tco2"]) == (1, 2, 2)
    assert state.get("eco.programme", "main")["carry_g"] == 500_010
