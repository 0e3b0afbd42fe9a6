"""Compiling a monitoring report over 1,000,000 readings (eco J-Credits).

The eco contract keeps, per device, its last counters and its grams by month, so compiling a
report reads one row per device, never the readings. This benchmark builds that state by
applying ``--readings`` daily PV and EV readings (``--devices`` devices) through the eco
contract itself, on an in-memory state with the node's read/write semantics (what a node
does for each committed reading, minus signature checks and SQLite), then times
``report.compile`` over every month of them, then ``report.approve`` and ``credit.issue``.

Figures: the time to compile (target <= 10 s over 1,000,000 readings), and, for the record,
the time to build the state (contract applies per second).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import common


class MemState:
    """Committed state as the executor sees it: canonical JSON bytes by (namespace, key)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], bytes] = {}

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        raw = self.rows.get((ns, key))
        return None if raw is None else json.loads(raw)

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        for n, k in sorted(k for k in self.rows if k[0] == ns and k[1].startswith(prefix)):
            yield k, json.loads(self.rows[(n, k)])


def apply(state: MemState, contract, signer, type_: str, payload: dict, at: str, n: int) -> None:
    from tsunagu.contracts import TxContext

    ctx = TxContext("eco", f"{n:064x}", type_, signer, n, at, n, state)
    contract.apply(ctx, contract.parse(type_, payload))
    for key, value in ctx.writes.items():
        if value is None:
            state.rows.pop(key, None)
        else:
            state.rows[key] = value


def build(devices: int, readings: int) -> tuple[MemState, dict[str, Any]]:
    from tsunagu.apps.eco.contract import EcoContract
    from tsunagu.apps.eco.devices import device_id
    from tsunagu.contracts import Member
    from tsunagu.ledger.block import format_timestamp
    from tsunagu.ledger.keys import SigningKey, key_id

    contract = EcoContract()
    state = MemState()
    org = {"id": "hachioji", "type": "municipality", "municipality": "hachioji"}
    state.rows[("identity.org", "hachioji")] = json.dumps(org).encode()
    staff = Member("e" * 64, b"", "hachioji", ("env_staff",), "user")
    owner = Member("o" * 64, b"", "hachioji", ("resident",), "user")
    now = "2027-06-01T00:00:00.000Z"
    for kind, value in (("grid", 423_000), ("car", 170_600)):
        payload = {"kind": kind, "fiscal_year": 2024, "value": value, "source_ja": "s",
                   "source_en": "s"}  # fmt: skip
        apply(state, contract, staff, "factor.publish", payload, now, 1)
    per_device = readings // devices
    start = datetime(2026, 4, 1, tzinfo=UTC) - timedelta(hours=9)
    signers = []
    for i in range(devices):
        pub = SigningKey.from_seed(i.to_bytes(32, "big")).public_key.hex()
        kind = "ev" if i % 4 == 0 else "pv"
        payload = {"kind": kind, "rated_w": 6_000, "public_key": pub, "consent": True,
                   "baseline": {"at": format_timestamp(start), "a": 0, "b": 0}}  # fmt: skip
        apply(state, contract, owner, "device.register", payload, now, 2)
        apply(state, contract, staff, "device.approve", {"device": device_id(pub)}, now, 3)
        member = Member(key_id(bytes.fromhex(pub)), b"", "hachioji", ("device",), "device")
        signers.append((device_id(pub), kind, member))
    stamps = [format_timestamp(start + timedelta(days=d, hours=20)) for d in range(per_device)]
    clock = time.perf_counter()
    n = 10
    for dev, kind, member in signers:
        names = ("generated_wh", "exported_wh") if kind == "pv" else ("charged_wh", "distance_m")
        step = (12_000, 8_000) if kind == "pv" else (5_000, 32_000)
        for day, at in enumerate(stamps, start=1):
            payload = {"device": dev, "at": at, names[0]: step[0] * day, names[1]: step[1] * day}
            apply(state, contract, member, f"reading.{kind}", payload, now, n)
            n += 1
    seconds = time.perf_counter() - clock
    last_month = (start + timedelta(days=per_device, hours=9)).strftime("%Y-%m")
    info = {"applied": devices * per_device, "build_seconds": seconds, "to": last_month}
    return state, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=5_000)
    parser.add_argument("--small", action="store_true", help="100,000 readings, 1,000 devices")
    args = parser.parse_args()
    if args.small:
        args.readings, args.devices = 100_000, 1_000

    from tsunagu.apps.eco.contract import EcoContract
    from tsunagu.contracts import Member

    machine = common.machine()
    ceiling = common.ed25519_ceiling()
    state, info = build(args.devices, args.readings)
    print(f"   state built: {info['applied']:,} readings in {info['build_seconds']:.1f} s")
    contract = EcoContract()
    staff = Member("e" * 64, b"", "hachioji", ("env_staff",), "user")
    verifier = Member("v" * 64, b"", "hachioji", ("verifier",), "user")
    now = "2027-06-01T00:00:00.000Z"
    clock = time.perf_counter()
    apply(state, contract, staff, "report.compile",
          {"period_from": "2026-04", "period_to": info["to"]}, now, 10**9)  # fmt: skip
    compile_s = time.perf_counter() - clock
    report = state.get("eco.report", "r-0001")
    assert report["readings"] == info["applied"], (report["readings"], info["applied"])
    clock = time.perf_counter()
    apply(state, contract, verifier, "report.approve", {"report": "r-0001"}, now, 10**9 + 1)
    apply(state, contract, staff, "credit.issue", {"report": "r-0001"}, now, 10**9 + 2)
    issue_s = time.perf_counter() - clock
    lot = state.get("eco.lot", "lot-0001")
    print(f"   report: {report['readings']:,} readings, {report['grams'] / 1e6:,.1f} t-CO2, "
          f"lot of {lot['tco2']:,} t-CO2")  # fmt: skip
    metrics = [
        common.metric(
            f"compile a monitoring report over {info['applied']:,} readings",
            compile_s,
            "s",
            target=10.0,
            target_text="<= 10 s",
            higher_is_better=False,
        ),
        common.metric("verify and issue the lot", issue_s, "s", higher_is_better=False),
        common.metric(
            "contract applies building the state (no signatures, no SQLite)",
            info["applied"] / info["build_seconds"],
            "readings/s",
        ),
    ]
    params = {
        **vars(args),
        **info,
        "tco2": lot["tco2"],
        "devices_in_report": len(report["devices"]),
    }
    common.print_metrics("eco_report", ceiling, metrics)
    common.write_result("eco_report", machine, ceiling, metrics, params)


if __name__ == "__main__":
    main()
