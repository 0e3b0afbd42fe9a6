"""The eco contract through a real node: devices, readings, points, rewards, reports and lots.
Every refusal carries a Japanese reason and leaves every ``eco.*`` row as it was."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.devices import device_id, voucher_bytes
from tsunagu.apps.eco.view import make_voucher, read_voucher
from tsunagu.errors import TsunaguError
from tsunagu.ledger.block import format_timestamp
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx, decode_tx

from .conftest import EcoChain, ts


def test_demo_programme(eco_chain: EcoChain) -> None:
    state = eco_chain.node.store.state()
    devices = [v for _, v in state.scan("eco.device")]
    assert len(devices) >= 15 and {d["kind"] for d in devices} == {"pv", "ev"}
    assert len({d["municipality"] for d in devices}) >= 5
    mine = eco_chain.private.user("resident1").key_id
    assert any(d["owner"] == mine and d["kind"] == "pv" and d["readings"] > 100 for d in devices)
    lots = [v for _, v in state.scan("eco.lot")]
    assert any(x["holder"] == "green-energy-tama" and x["status"] == "retired" for x in lots)


def test_pv_readings_count_self_consumption_only(eco_chain: EcoChain) -> None:
    d = eco_chain.device(hours=30)
    t1 = d.at + timedelta(hours=24)
    # 12 kWh generated, 8 kWh exported: 4 kWh self-consumed x 423 g/kWh = 1,692 g
    eco_chain.ok(d.key, *eco_chain.reading(d, t1, d.a + 12_000, d.b + 8_000))
    record = eco_chain.get("device", d.id)
    assert record["grams"] == 1_692
    assert record["months"][rules.month_of(ts(t1))]["a"] == 4_000
    assert record["last"] == {"at": ts(t1), "a": d.a + 12_000, "b": d.b + 8_000}


def test_ev_reading_nets_out_the_grid(eco_chain: EcoChain) -> None:
    d = eco_chain.device(kind="ev", rated_w=6_000, hours=30)
    t1 = d.at + timedelta(hours=24)
    # 40 km x 170.6 g/km - 6 kWh x 423 g/kWh = 6,824 - 2,538 = 4,286 g
    eco_chain.ok(d.key, *eco_chain.reading(d, t1, d.a + 6_000, d.b + 40_000))
    assert eco_chain.get("device", d.id)["grams"] == 4_286


@pytest.mark.parametrize(
    ("da", "db", "hours", "code"),
    [
        (-10, 0, 1, "counter_backwards"),  # generation counter went backwards
        (5_000, 6_000, 2, "export_above_generation"),
        (20_000, 0, 1, "exceeds_capacity"),  # 20 kWh in an hour from a 4 kW array
    ],
)
def test_bad_pv_readings(eco_chain: EcoChain, da: int, db: int, hours: int, code: str) -> None:
    d = eco_chain.device(hours=30)
    eco_chain.refused(
        d.key, *eco_chain.reading(d, d.at + timedelta(hours=hours), d.a + da, d.b + db), code
    )


def test_negative_repeated_backwards_and_future_readings(eco_chain: EcoChain) -> None:
    d = eco_chain.device(hours=30)
    eco_chain.refused(
        d.key, *eco_chain.reading(d, d.at + timedelta(hours=1), -5, 0), "negative_reading"
    )
    t1 = d.at + timedelta(hours=5)
    eco_chain.ok(d.key, *eco_chain.reading(d, t1, d.a + 100, d.b))
    eco_chain.refused(d.key, *eco_chain.reading(d, t1, d.a + 200, d.b), "reading_repeated")
    eco_chain.refused(
        d.key, *eco_chain.reading(d, t1 - timedelta(minutes=1), d.a + 200, d.b), "reading_backwards"
    )
    future = datetime.now(UTC) + timedelta(hours=2)
    eco_chain.refused(d.key, *eco_chain.reading(d, future, d.a + 200, d.b), "reading_in_future")


def test_a_reading_dated_on_a_day_that_does_not_exist_is_refused(eco_chain: EcoChain) -> None:
    """The time's shape is right but the day is not (it used to crash the contract)."""
    d = eco_chain.device(hours=30)
    type_, payload = eco_chain.reading(d, d.at + timedelta(hours=1), d.a + 10, d.b)
    payload["at"] = "2026-11-31T00:00:00.000Z"
    receipt = eco_chain.refused(d.key, type_, payload, "invalid_payload")
    assert "実在しない日時" in receipt.reason_ja


def test_reading_must_come_from_the_device_key(eco_chain: EcoChain) -> None:
    d = eco_chain.device(hours=30)
    other = eco_chain.device(hours=30)
    type_, payload = eco_chain.reading(d, d.at + timedelta(hours=1), d.a + 10, d.b)
    eco_chain.refused(other.key, type_, payload, "not_device_key")
    eco_chain.refused("resident1", type_, payload, "not_device_key")


def test_bad_device_signature_and_unapproved_device(eco_chain: EcoChain) -> None:
    d = eco_chain.device(hours=30)
    type_, payload = eco_chain.reading(d, d.at + timedelta(hours=1), d.a + 10, d.b)
    tx = build_tx(eco_chain.node.chain_id, "eco", type_, payload, d.key, 10**9)
    forged = tx.to_json() | {"payload": payload | {"generated_wh": d.a + 999}}
    before = eco_chain.snapshot()
    with pytest.raises(TsunaguError) as bad:
        eco_chain.node.submit(decode_tx(forged))
    assert bad.value.code == "bad_signature" and bad.value.message_ja != bad.value.message_en
    # A registered but unapproved device's key is not a chain member: refused at admission.
    key = SigningKey.generate()
    base = {"at": ts(d.at), "a": 0, "b": 0}
    eco_chain.ok(
        "resident1",
        "device.register",
        {
            "kind": "pv",
            "rated_w": 3_000,
            "public_key": key.public_key.hex(),
            "consent": True,
            "baseline": base,
        },
    )
    before = eco_chain.snapshot()
    pending_payload = {
        "device": device_id(key.public_key.hex()),
        "at": ts(d.at + timedelta(hours=1)),
        "generated_wh": 10,
        "exported_wh": 0,
    }
    with pytest.raises(TsunaguError) as unknown:
        eco_chain.node.submit(
            build_tx(eco_chain.node.chain_id, "eco", "reading.pv", pending_payload, key, 1)
        )
    assert unknown.value.code == "unknown_signer"
    assert eco_chain.snapshot() == before


def test_registration_needs_consent_and_staff_of_the_municipality(eco_chain: EcoChain) -> None:
    key = SigningKey.generate()
    payload = {
        "kind": "pv",
        "rated_w": 3_000,
        "public_key": key.public_key.hex(),
        "consent": False,
        "baseline": {"at": ts(datetime.now(UTC)), "a": 0, "b": 0},
    }
    eco_chain.refused("resident1", "device.register", payload, "consent_required")
    eco_chain.ok("resident2", "device.register", payload | {"consent": True})  # tachikawa
    dev = device_id(key.public_key.hex())
    eco_chain.refused("envstaff1", "device.approve", {"device": dev}, "not_programme_staff")
    eco_chain.refused("resident2", "device.approve", {"device": dev}, "not_programme_staff")
    refusal = eco_chain.submit(
        "envstaff1",
        "device.add",
        {"public_key": key.public_key.hex(), "org": "tachikawa"},
        app="identity",
    )
    assert refusal.code == "other_municipality"


def test_factor_of_the_fiscal_year(eco_chain: EcoChain) -> None:
    grid = eco_chain.get("factor", "grid")
    assert rules.factor_for(grid, 2024) == (2024, 423_000)
    assert rules.factor_for(grid, 2026) == (2024, 423_000)  # latest published earlier year
    assert rules.factor_for(grid, 2023) is None
    eco_chain.refused(
        "envstaff1",
        "factor.publish",
        {"kind": "grid", "fiscal_year": 2024, "value": 1, "source_ja": "x", "source_en": "x"},
        "factor_exists",
    )
    eco_chain.refused(
        "resident1",
        "factor.publish",
        {"kind": "grid", "fiscal_year": 2030, "value": 1, "source_ja": "x", "source_en": "x"},
        "forbidden_role",
    )


def _voucher(key: SigningKey, reward: str, expires: datetime) -> dict:
    voucher = {
        "v": 1,
        "account": key.key_id,
        "reward": reward,
        "nonce": secrets.token_hex(16),
        "expires": format_timestamp(expires),
    }
    return {"voucher": voucher, "signature": key.sign(voucher_bytes(voucher)).hex()}


def test_redemption_burns_points_once(eco_chain: EcoChain) -> None:
    resident = eco_chain.key("resident2")
    account = eco_chain.get("account", resident.key_id)
    code, _ = make_voucher(resident, "komugido-coffee")
    payload = read_voucher(code)
    eco_chain.ok("shop1", "points.redeem", payload)
    after = eco_chain.get("account", resident.key_id)
    assert sum(after["used"].values()) == sum(account["used"].values()) + 80
    eco_chain.refused("shop1", "points.redeem", payload, "already_redeemed")
    # Another shop cannot honour this bakery's reward; a resident cannot redeem at all.
    other = _voucher(resident, "komugido-coffee", datetime.now(UTC) + timedelta(minutes=5))
    eco_chain.refused("staff1", "points.redeem", other, "other_shop")
    eco_chain.refused("resident1", "points.redeem", other, "forbidden_role")


def test_bad_vouchers(eco_chain: EcoChain) -> None:
    resident = eco_chain.key("resident2")
    late = _voucher(resident, "komugido-coffee", datetime.now(UTC) - timedelta(seconds=1))
    eco_chain.refused("shop1", "points.redeem", late, "voucher_expired")
    forged = _voucher(resident, "komugido-coffee", datetime.now(UTC) + timedelta(minutes=5))
    forged["voucher"] = forged["voucher"] | {"reward": "komugido-bread"}
    eco_chain.refused("shop1", "points.redeem", forged, "bad_voucher")
    poor = _voucher(
        eco_chain.key("shop1"), "komugido-bread", datetime.now(UTC) + timedelta(minutes=5)
    )
    assert eco_chain.get("account", eco_chain.key("shop1").key_id) is not None
    big = {
        "id": "big-prize",
        "name_ja": "大賞",
        "name_en": "Big prize",
        "kind": "perk",
        "points": 1_000_000,
        "shop": "tachikawa-bakery",
        "settlement_yen": 0,
    }
    eco_chain.ok("envstaff1", "reward.put", big)
    poor = _voucher(
        eco_chain.key("resident2"), "big-prize", datetime.now(UTC) + timedelta(minutes=5)
    )
    eco_chain.refused("shop1", "points.redeem", poor, "insufficient_points")


def test_points_cannot_move_between_participants(eco_chain: EcoChain) -> None:
    for type_ in ("points.transfer", "points.cashout"):
        receipt = eco_chain.submit("resident1", type_, {"to": "x", "points": 1})
        assert receipt.status == "rejected" and receipt.code == "unknown_type"


def test_expired_points_are_refused(eco_chain: EcoChain) -> None:
    earned = {"2026-01": 300, "2026-02": 50}
    today = "2026-08-01"  # January's points expired on 2026-07-31, February's on 08-28
    bal = rules.balance(earned, {}, today)
    assert (bal.available, bal.expired) == (50, 300)
    assert rules.spend(earned, {}, today, 50) == {"2026-02": 50}
    # On the chain: the demo's oldest month has expired for resident1.
    state = eco_chain.node.store.state()
    account = state.get("eco.account", eco_chain.key("resident1").key_id)
    devices = [state.get("eco.device", k) for k in account["devices"]]
    oldest = min(m for d in devices for m in d["months"])
    assert rules.point_expiry(oldest) <= datetime.now(UTC).date().isoformat()
    big = {
        "id": "needs-expired",
        "name_ja": "期限切れ確認",
        "name_en": "Expiry check",
        "kind": "perk",
        "shop": "tachikawa-bakery",
        "settlement_yen": 0,
        "points": rules.balance(
            rules.earned_by_month(devices),
            account["used"],
            (datetime.now(UTC) + rules.JST).date().isoformat(),
        ).available
        + 1,
    }
    eco_chain.ok("envstaff1", "reward.put", big)
    voucher = _voucher(
        eco_chain.key("resident1"), "needs-expired", datetime.now(UTC) + timedelta(minutes=5)
    )
    eco_chain.refused("shop1", "points.redeem", voucher, "points_expired")


def test_credits_rules(eco_chain: EcoChain) -> None:
    state = eco_chain.node.store.state()
    lots = {k: v for k, v in state.scan("eco.lot")}
    retired = next(k for k, v in lots.items() if v["status"] == "retired")
    held = next(
        k
        for k, v in lots.items()
        if v["holder"] == "green-energy-tama" and v["status"] != "retired"
    )
    issued = next(k for k, v in lots.items() if v["holder"] == "hachioji")
    tco2 = lots[issued]["tco2"]
    eco_chain.refused(
        "company1",
        "credit.transfer",
        {"lot": retired, "tco2": 1, "to": "tama-logistics"},
        "lot_retired",
    )
    eco_chain.refused(
        "company1", "credit.retire", {"lot": retired, "tco2": 1, "purpose": "again"}, "lot_retired"
    )
    eco_chain.refused("company1", "credit.buy", {"lot": issued, "tco2": tco2 + 1}, "exceeds_lot")
    eco_chain.refused(
        "company1", "credit.retire", {"lot": held, "tco2": 99, "purpose": "too much"}, "exceeds_lot"
    )
    eco_chain.refused(
        "company1",
        "credit.transfer",
        {"lot": issued, "tco2": 1, "to": "tama-logistics"},
        "not_holder",
    )
    eco_chain.refused("resident1", "credit.buy", {"lot": issued, "tco2": 1}, "forbidden_role")
    eco_chain.refused("envstaff1", "report.approve", {"report": "r-0001"}, "forbidden_role")
    eco_chain.refused("verifier1", "report.approve", {"report": "r-0001"}, "not_compiled")
    eco_chain.refused("envstaff1", "credit.issue", {"report": "r-0001"}, "not_approved")


def test_closed_months_refuse_readings_and_reports_are_contiguous(eco_chain: EcoChain) -> None:
    prog = eco_chain.get("programme", "main")
    closed = prog["closed_through"]
    d = eco_chain.device(hours=24 * 70)
    # A reading stamped in a month already reported.
    end_of_closed = datetime.fromisoformat(rules.next_month(closed) + "-01T00:00:00+09:00")
    at = end_of_closed - timedelta(hours=1)
    if at > d.at:
        eco_chain.refused(d.key, *eco_chain.reading(d, at, d.a + 10, d.b), "period_closed")
    eco_chain.refused(
        "envstaff1", "report.compile", {"period_from": closed, "period_to": closed}, "period_gap"
    )
    this_month = rules.month_of(format_timestamp(datetime.now(UTC)))
    eco_chain.refused(
        "envstaff1",
        "report.compile",
        {"period_from": rules.next_month(closed), "period_to": this_month},
        "period_not_over",
    )


def test_suspended_device_readings_are_refused(eco_chain: EcoChain) -> None:
    d = eco_chain.device(hours=30)
    eco_chain.refused("resident1", "device.suspend", {"device": d.id, "reason": "故障"},
                      "not_programme_staff")  # fmt: skip
    eco_chain.ok("envstaff1", "device.suspend", {"device": d.id, "reason": "メーター故障"})
    eco_chain.refused(d.key, *eco_chain.reading(d, d.at + timedelta(hours=1), d.a + 10, d.b),
                      "device_not_approved")  # fmt: skip
