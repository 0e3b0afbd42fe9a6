"""Realistic meter readings for a device, and ``tsunagu device simulate``.

PV: a Tokyo array yields about 1,150 kWh per kW per year, shaped by month (more in spring
and late summer, less in the rainy season and winter), by daylight (a half sine between
sunrise and sunset) and by the weather (a random factor per day, seeded). A household uses
about a third of what it generates; the rest is exported. EV: a car driven 20-45 km a day
(more at weekends), charged at home from 19:00 at the charger's rated power, 6.5 km/kWh with 10 %
charging loss.

Readings are cumulative counters, signed by the device key from its provisioning file and
sent to a node's ``POST /api/v1/tx`` (see :mod:`tsunagu.apps.eco.sender` for how; never dated
in the future, and numbered from the device's last used sequence number up).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from tsunagu.ledger.block import format_timestamp, parse_timestamp

# kWh per kW of panel per month in Tokyo (sums to 1,150 a year).
PV_MONTHLY_KWH_PER_KW = (75, 85, 105, 112, 122, 96, 110, 122, 92, 84, 74, 73)
# Sunrise and sunset in Tokyo (JST hours) around the middle of each month.
DAYLIGHT = (
    (6.8, 16.9),
    (6.5, 17.4),
    (5.9, 17.8),
    (5.2, 18.2),
    (4.6, 18.6),
    (4.4, 19.0),
    (4.6, 18.9),
    (5.0, 18.4),
    (5.4, 17.7),
    (5.8, 17.1),
    (6.2, 16.6),
    (6.7, 16.5),
)
JST = timedelta(hours=9)
EV_KM_PER_KWH = 6.5
EV_LOSS = 1.10
CHARGE_HOUR = 19  # JST


@functools.lru_cache(maxsize=4096)
def _weather(seed: int, day: str) -> float:
    rng = random.Random(f"{seed}:{day}")
    return min(max(rng.gauss(1.0, 0.35), 0.1), 1.6)


@dataclass
class DeviceModel:
    kind: str  # "pv" or "ev"
    rated_w: int
    seed: int = 0
    self_share: float = 0.35  # PV: share of generation used on site
    daily_km: float = 30.0  # EV: mean distance per day

    def _weather(self, day: datetime) -> float:
        return _weather(self.seed, day.date().isoformat())

    def _day_kwh(self, day: datetime) -> float:
        month = day.month
        days = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        return self.rated_w / 1000 * PV_MONTHLY_KWH_PER_KW[month - 1] / days * self._weather(day)

    def _pv_share(self, local: datetime) -> float:
        rise, set_ = DAYLIGHT[local.month - 1]
        hour = local.hour + local.minute / 60 + local.second / 3600
        if hour <= rise:
            return 0.0
        if hour >= set_:
            return 1.0
        return (1 - math.cos(math.pi * (hour - rise) / (set_ - rise))) / 2

    def _share(self, day: datetime, moment: datetime) -> float:
        return 1.0 if moment >= day + timedelta(days=1) else self._pv_share(moment)

    def _charged(self, day: datetime, moment: datetime, kwh: float) -> float:
        """Wh charged on ``day`` by ``moment``: from 19:00 at the charger's rated power."""
        hours = (moment - day - timedelta(hours=CHARGE_HOUR)) / timedelta(hours=1)
        return min(max(hours, 0.0) * self.rated_w, kwh * 1000, (24 - CHARGE_HOUR) * self.rated_w)

    def _ev_day(self, day: datetime) -> tuple[float, float]:
        rng = random.Random(f"{self.seed}:ev:{day.date().isoformat()}")
        km = max(rng.gauss(self.daily_km * (1.4 if day.weekday() >= 5 else 0.9), 8), 0)
        return km, km / EV_KM_PER_KWH * EV_LOSS

    def increments(self, start: datetime, moment: datetime) -> tuple[float, float]:
        """What the device produced in ``(start, moment]`` (UTC), unrounded: PV generated Wh
        (and 0), or EV charged Wh and metres driven. Deterministic for a given seed."""
        a = b = 0.0
        begin, end = start + JST, moment + JST
        day = begin.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            lo, hi = max(begin, day), min(end, day + timedelta(days=1))
            if hi > lo:  # this day's part of (begin, end]
                if self.kind == "pv":
                    a += self._day_kwh(day) * 1000 * (self._share(day, hi) - self._share(day, lo))
                else:
                    km, kwh = self._ev_day(day)
                    b += km * 1000 * ((hi - lo) / timedelta(days=1))
                    a += self._charged(day, hi, kwh) - self._charged(day, lo, kwh)
            day += timedelta(days=1)
        return a, b

    def counters(self, a: float, b: float) -> tuple[int, int]:
        """Meter counters from unrounded totals. PV export comes from the whole generation
        counter, so that an export delta never exceeds the generation delta."""
        if self.kind == "pv":
            return int(a), int(int(a) * (1 - self.self_share))
        return int(a), int(b)

    def totals(self, start: datetime, moment: datetime) -> tuple[int, int]:
        """Cumulative counters produced since ``start``."""
        return self.counters(*self.increments(start, moment))


def readings(
    model: DeviceModel,
    baseline: dict[str, Any],
    start: datetime,
    until: datetime,
    interval: timedelta,
) -> Iterator[tuple[str, int, int]]:
    """``(at, a, b)`` every ``interval`` after ``start`` up to ``until``: the baseline's
    counters plus what the model produced since the baseline's time."""
    origin = parse_timestamp(baseline["at"])
    a, b = model.increments(origin, start) if start > origin else (0.0, 0.0)
    moment = start + interval
    while moment <= until:
        da, db = model.increments(moment - interval, moment)
        a, b = a + da, b + db
        ca, cb = model.counters(a, b)
        yield format_timestamp(moment), baseline["a"] + ca, baseline["b"] + cb
        moment += interval


def reading_payload(device: str, kind: str, at: str, a: int, b: int) -> dict[str, Any]:
    if kind == "pv":
        return {"device": device, "at": at, "generated_wh": a, "exported_wh": b}
    return {"device": device, "at": at, "charged_wh": a, "distance_m": b}


def provisioning(
    device: str,
    kind: str,
    rated_w: int,
    seed_hex: str,
    chain_id: str,
    node_url: str,
    baseline: dict[str, Any],
) -> dict[str, Any]:
    """The provisioning file a device is set up with (its private key: keep it on the device)."""
    return {
        "format": "tsunagu-eco-device/1",
        "device": device,
        "kind": kind,
        "rated_w": rated_w,
        "private_key_seed": seed_hex,
        "chain_id": chain_id,
        "node": node_url,
        "baseline": baseline,
    }


def simulate(
    prov: dict[str, Any],
    node: str,
    until: datetime,
    interval: timedelta,
    *,
    seed: int = 0,
    self_share: float = 0.35,
    daily_km: float = 30.0,
    echo: Any = print,
    node_from_file: bool = False,
) -> dict[str, int]:
    """Send readings from where the device's last accepted reading left off to ``until``
    (never after now). Raises :class:`SimulateError` for what the user must fix."""
    import httpx

    from tsunagu.apps.eco.sender import DeviceSender, SimulateError

    if not node.startswith(("http://", "https://")):
        raise SimulateError(f"The node address {node!r} must start with http:// or https://.")
    until = min(until, datetime.now(UTC))
    model = DeviceModel(prov["kind"], prov["rated_w"], seed, self_share, daily_km)
    counts = {"committed": 0, "rejected": 0}
    with httpx.Client(base_url=node.rstrip("/"), timeout=60) as client:
        device = DeviceSender(client, node, prov, echo, node_from_file)
        last = device.last()
        start = parse_timestamp(last["at"])
        # Continue the device's own curve: the model's totals since the baseline, shifted so
        # that they meet the counters it last reported.
        base_a, base_b = model.totals(parse_timestamp(prov["baseline"]["at"]), start)
        origin = {
            "at": prov["baseline"]["at"],
            "a": last["a"] - base_a,
            "b": last["b"] - base_b,
        }
        if start + interval > until:
            echo(
                f"Nothing to send: the device's last reading ({last['at']}) is less than one "
                f"interval before {format_timestamp(until)}."
            )
        for at, a, b in readings(model, origin, start, until, interval):
            counts["committed" if device.send(at, a, b) else "rejected"] += 1
    return counts


def add_commands(root: Any) -> None:
    """``tsunagu device simulate`` (the eco app's CLI hook)."""
    device = typer.Typer(help="Metering devices of the eco-points programme.", no_args_is_help=True)

    @device.command("simulate")
    def simulate_command(
        provisioning_file: Annotated[
            Path, typer.Option("--provisioning", help="The device's provisioning file (JSON).")
        ],
        node: Annotated[
            str | None,
            typer.Option("--node", help="The node's base URL (default: the file's)."),
        ] = None,
        until: Annotated[
            str | None,
            typer.Option(
                "--until", help="Last reading time, ISO 8601, not in the future (default: now)."
            ),
        ] = None,
        interval: Annotated[
            int, typer.Option("--interval-minutes", min=1, help="Minutes between readings.")
        ] = 60,
        seed: Annotated[int, typer.Option("--seed", help="Weather and driving seed.")] = 0,
        self_share: Annotated[
            float,
            typer.Option("--self-consumption", min=0.0, max=1.0, help="PV share used on site."),
        ] = 0.35,
        daily_km: Annotated[
            float, typer.Option("--daily-km", min=0.0, help="EV mean distance per day (km).")
        ] = 30.0,
    ) -> None:
        """Send realistic signed readings for a device, from its last accepted one to now."""
        from tsunagu.apps.eco.sender import DEMO_NODE, SimulateError, load_provisioning, parse_until

        try:
            prov = load_provisioning(provisioning_file)
            end, note = parse_until(until, datetime.now(UTC))
            if note:
                typer.echo(note)
            if node is None and not prov.get("node"):
                typer.echo(f"The provisioning file names no node: using {DEMO_NODE} (or --node).")
            counts = simulate(
                prov,
                node or prov.get("node") or DEMO_NODE,
                end,
                timedelta(minutes=interval),
                seed=seed,
                self_share=self_share,
                daily_km=daily_km,
                echo=typer.echo,
                node_from_file=node is None,
            )
        except SimulateError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"{counts['committed']} readings committed, {counts['rejected']} rejected")
        if counts["rejected"]:
            raise typer.Exit(1)

    root.add_typer(device, name="device")
