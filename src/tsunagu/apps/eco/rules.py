"""The arithmetic of eco-points and credits: pure functions of integers and chain timestamps.

Units (no floats anywhere): energy in Wh, distance in metres, CO2 in grams. Emission factors
are integers in milligrams of CO2: ``mg/kWh`` for the grid, ``mg/km`` for the petrol car an
EV replaces. A reading's reduction is first computed in micrograms (Wh × mg/kWh and
m × mg/km are both µg), and the part below one gram is carried in the device's ``residual``,
so no gram is ever lost or created by rounding.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

MICROGRAMS_PER_GRAM = 1_000_000
GRAMS_PER_TONNE = 1_000_000
GRAMS_PER_POINT = 1_000  # 1 point per kg-CO2
POINT_LIFETIME_DAYS = 180
VOUCHER_SECONDS = 300  # a redemption QR is valid for five minutes
CLOCK_SKEW_SECONDS = 600  # a reading may be stamped up to ten minutes after its block
MAX_SPEED_M_PER_H = 200_000  # an EV reading above 200 km/h on average is refused
JST = timedelta(hours=9)


@functools.lru_cache(maxsize=8192)
def parse(timestamp: str) -> datetime:
    """A chain timestamp (``YYYY-MM-DDTHH:MM:SS.mmmZ``, checked by the payload models) as an
    aware datetime. Such timestamps also sort as strings, which the rules use to compare."""
    return datetime.fromisoformat(timestamp)


def jst(timestamp: str) -> datetime:
    return parse(timestamp) + JST


@functools.lru_cache(maxsize=8192)
def month_of(timestamp: str) -> str:
    """The month (``YYYY-MM``, Japan time) a chain timestamp falls in."""
    return jst(timestamp).strftime("%Y-%m")


def fiscal_year(timestamp: str) -> int:
    """Japan's fiscal year (April to March) of a chain timestamp: 2025-03-31 is FY2024."""
    moment = jst(timestamp)
    return moment.year if moment.month >= 4 else moment.year - 1


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def seconds_between(earlier: str, later: str) -> int:
    delta = parse(later) - parse(earlier)
    return delta.days * 86_400 + delta.seconds


def factor_for(factors: dict[str, Any] | None, year: int) -> tuple[int, int] | None:
    """``(fiscal year, value)`` of the factor for ``year``: that year's if published, else the
    latest earlier one (factors are published a year or more late); None if there is none."""
    if not factors:
        return None
    years = [int(y) for y in factors["years"] if int(y) <= year]
    if not years:
        return None
    best = max(years)
    return best, factors["years"][str(best)]["value"]


@dataclass(frozen=True, slots=True)
class Effect:
    """What one reading adds to its device: grams of CO2 avoided and the energy deltas."""

    grams: int
    residual: int  # micrograms below one gram, carried to the next reading
    a: int  # PV: self-consumed Wh; EV: charged Wh
    b: int  # PV: exported Wh; EV: metres driven


def pv_effect(generated_wh: int, exported_wh: int, grid_mg_per_kwh: int, residual: int) -> Effect:
    """Only self-consumed electricity counts (EN-R-002): exported Wh are sold to the grid and
    their environmental value belongs to the buyer's retailer."""
    self_wh = generated_wh - exported_wh
    micro = self_wh * grid_mg_per_kwh + residual
    return Effect(micro // MICROGRAMS_PER_GRAM, micro % MICROGRAMS_PER_GRAM, self_wh, exported_wh)


def ev_effect(
    charged_wh: int, metres: int, grid_mg_per_kwh: int, car_mg_per_km: int, residual: int
) -> Effect:
    """Petrol the distance would have burnt, less the grid's CO2 for the charge; never negative
    (a month of charging without driving earns nothing, and takes nothing back)."""
    micro = max(metres * car_mg_per_km - charged_wh * grid_mg_per_kwh, 0) + residual
    return Effect(micro // MICROGRAMS_PER_GRAM, micro % MICROGRAMS_PER_GRAM, charged_wh, metres)


def within_capacity(delta_wh: int, rated_w: int, seconds: int) -> bool:
    """Whether ``delta_wh`` fits in ``rated_w`` running flat out for ``seconds``."""
    return delta_wh * 3600 <= rated_w * seconds


def within_speed(metres: int, seconds: int) -> bool:
    return metres * 3600 <= MAX_SPEED_M_PER_H * seconds


# -- points ------------------------------------------------------------------------------


def point_expiry(month: str) -> str:
    """Points earned for a month's reductions expire 180 days after that month ends (a date
    in Japan time: usable before it, gone on it)."""
    following = next_month(month)
    first = date(int(following[:4]), int(following[5:7]), 1)
    return (first + timedelta(days=POINT_LIFETIME_DAYS)).isoformat()


def earned_by_month(devices: list[dict[str, Any]]) -> dict[str, int]:
    """Points per month: a month's grams over all the participant's devices, per full kg."""
    grams: dict[str, int] = {}
    for device in devices:
        for month, row in device["months"].items():
            grams[month] = grams.get(month, 0) + row["g"]
    return {m: g // GRAMS_PER_POINT for m, g in sorted(grams.items())}


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    expired: int
    used: int
    earned: int
    next_expiry: str | None  # the earliest date on which some available points expire


def balance(earned: dict[str, int], used: dict[str, int], today: str) -> Balance:
    available = expired = 0
    next_expiry = None
    for month, points in earned.items():
        left = points - used.get(month, 0)
        if point_expiry(month) > today:
            available += left
            if left and next_expiry is None:
                next_expiry = point_expiry(month)
        else:
            expired += left
    return Balance(available, expired, sum(used.values()), sum(earned.values()), next_expiry)


def spend(earned: dict[str, int], used: dict[str, int], today: str, points: int) -> dict[str, int]:
    """``used`` after spending ``points``, oldest unexpired month first (the caller has checked
    the balance)."""
    result = dict(used)
    for month, got in earned.items():
        if points == 0:
            break
        if point_expiry(month) <= today:
            continue
        take = min(got - result.get(month, 0), points)
        if take > 0:
            result[month] = result.get(month, 0) + take
            points -= take
    return result


def tonnes_and_carry(grams: int) -> tuple[int, int]:
    """Whole tonnes to issue and the grams carried to the next report: never rounded up."""
    return grams // GRAMS_PER_TONNE, grams % GRAMS_PER_TONNE


def format_serial(serial: int) -> str:
    return f"JP-TAMA-ECO-{serial:07d}"
