"""The integer arithmetic of reductions, points and credits, and the reading simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.simulate import DeviceModel, readings


def test_fiscal_year_runs_april_to_march_in_japan_time() -> None:
    assert rules.fiscal_year("2025-03-31T14:59:59.999Z") == 2024  # 23:59 JST, 31 March
    assert rules.fiscal_year("2025-03-31T15:00:00.000Z") == 2025  # 00:00 JST, 1 April
    assert rules.month_of("2026-04-30T15:00:00.000Z") == "2026-05"
    assert rules.next_month("2026-12") == "2027-01"


@given(st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 50_000)), max_size=40))
def test_no_gram_is_lost_or_created_by_rounding(steps: list[tuple[int, int]]) -> None:
    residual = grams = self_wh = 0
    for generated, exported in steps:
        exported = min(exported, generated)
        effect = rules.pv_effect(generated, exported, 423_000, residual)
        residual = effect.residual
        grams += effect.grams
        self_wh += generated - exported
    assert grams == self_wh * 423_000 // 1_000_000
    assert 0 <= residual < 1_000_000


def test_ev_never_goes_negative() -> None:
    assert rules.ev_effect(10_000, 1_000, 423_000, 170_600, 0).grams == 0  # charged, not driven
    assert rules.ev_effect(0, 1_000, 423_000, 170_600, 0).grams == 170


def test_points_expire_180_days_after_the_month() -> None:
    assert rules.point_expiry("2026-04") == "2026-10-28"
    earned = {"2026-04": 100, "2026-05": 100}
    assert rules.balance(earned, {"2026-04": 30}, "2026-10-27").available == 170
    after = rules.balance(earned, {"2026-04": 30}, "2026-10-28")
    assert (after.available, after.expired, after.used) == (100, 70, 30)


def test_tonnes_are_never_rounded_up() -> None:
    assert rules.tonnes_and_carry(2_999_999) == (2, 999_999)
    assert rules.tonnes_and_carry(999_999) == (0, 999_999)


def test_simulated_pv_yields_like_tokyo() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for seed in range(3):
        a, b = DeviceModel("pv", 1_000, seed).totals(start, start + timedelta(days=365))
        assert 1_000_000 <= a <= 1_300_000  # about 1,100-1,200 kWh per kW, weather varies
        assert b < a
    june = DeviceModel("pv", 1_000, 0)
    night = june.totals(datetime(2025, 6, 1, 12, tzinfo=UTC), datetime(2025, 6, 1, 18, tzinfo=UTC))
    assert night == (0, 0)  # 21:00-03:00 JST: dark


def test_simulated_readings_are_monotonic_and_within_capacity() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    for kind, rated in (("pv", 4_000), ("ev", 6_000)):
        model = DeviceModel(kind, rated, 7)
        base = {"at": "2026-05-01T00:00:00.000Z", "a": 0, "b": 0}
        last = (0, 0)
        for _at, a, b in readings(
            model, base, start, start + timedelta(days=20), timedelta(hours=1)
        ):
            assert a >= last[0] and b >= last[1]
            assert (a - last[0]) * 3600 <= rated * 3600
            if kind == "pv":
                assert b - last[1] <= a - last[0]
            last = (a, b)
        assert last[0] > 0
