"""The eco app's transaction payloads (strict, closed, immutable)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from tsunagu.contracts import Payload
from tsunagu.ledger.block import parse_timestamp
from tsunagu.validation_text import InputValueError

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Hex128 = Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")]
Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


def _real_time(value: str) -> str:
    """A chain timestamp that names a real moment (not 2026-11-31, not 25:00)."""
    try:
        parse_timestamp(value)
    except ValueError:
        raise InputValueError(
            "not a real date and time", "実在しない日時です（例: 11月31日、25時）"
        ) from None
    return value


Timestamp = Annotated[
    str,
    Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"),
    AfterValidator(_real_time),
]
# Counters are checked for sign in the contract, so a negative one gets its own clear message.
Counter = Annotated[int, Field(ge=-(10**15), le=10**15)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=80)]
Tonnes = Annotated[int, Field(gt=0, le=10**9)]


class FactorPublish(Payload):
    kind: Literal["grid", "car"]  # grid: mg-CO2/kWh; car: mg-CO2/km of the replaced petrol car
    fiscal_year: Annotated[int, Field(ge=2000, le=2100)]
    value: Annotated[int, Field(gt=0, le=10**9)]
    source_ja: Text
    source_en: Text


class Baseline(Payload):
    at: Timestamp
    a: Counter  # PV: generated Wh; EV: charged Wh
    b: Counter  # PV: exported Wh; EV: metres driven


class DeviceRegister(Payload):
    kind: Literal["pv", "ev"]
    rated_w: Annotated[int, Field(gt=0, le=1_000_000)]  # PV array or EV charger, in W
    public_key: Hex64
    consent: bool
    baseline: Baseline


class DeviceRef(Payload):
    device: Id


class DeviceSuspend(Payload):
    device: Id
    reason: Text


class PvReading(Payload):
    device: Id
    at: Timestamp
    generated_wh: Counter
    exported_wh: Counter


class EvReading(Payload):
    device: Id
    at: Timestamp
    charged_wh: Counter
    distance_m: Counter


class RewardPut(Payload):
    id: Id
    name_ja: Name
    name_en: Name
    kind: Literal["event", "facility", "product", "perk"]
    points: Annotated[int, Field(gt=0, le=1_000_000)]
    shop: Id  # the organisation that honours it
    settlement_yen: Annotated[int, Field(ge=0, le=1_000_000)]
    active: bool = True


class Voucher(Payload):
    """What the participant's QR carries, signed with the participant's key."""

    v: Literal[1]
    account: Hex64
    reward: Id
    nonce: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    expires: Timestamp


class PointsRedeem(Payload):
    voucher: Voucher
    signature: Hex128


class ReportCompile(Payload):
    period_from: Month
    period_to: Month


class ReportRef(Payload):
    report: Id


class ReportReject(Payload):
    report: Id
    reason: Text


class CreditList(Payload):
    lot: Id
    price_yen_per_t: Annotated[int, Field(gt=0, le=10**7)]


class CreditBuy(Payload):
    lot: Id
    tco2: Tonnes


class CreditTransfer(Payload):
    lot: Id
    tco2: Tonnes
    to: Id


class CreditRetire(Payload):
    lot: Id
    tco2: Tonnes
    purpose: Text
