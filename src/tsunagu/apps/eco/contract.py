"""Regional eco-points and J-Credits (地域エコポイント と J-クレジット): the rules, decided on
the chain. The participant's side lives in :mod:`devices`, the programme's in :mod:`credits`;
the arithmetic (integers only) in :mod:`rules`.

There is deliberately no transaction that moves points between participants or pays them
out: points are earned by rule, burnt at a shop, or expire (see docs/eco.md).
"""

from __future__ import annotations

from typing import ClassVar

from tsunagu.apps.eco import payloads as p
from tsunagu.apps.eco.credits import CreditRules
from tsunagu.apps.eco.devices import DeviceRules
from tsunagu.apps.eco.points import PointRules
from tsunagu.contracts import Contract, Payload


class EcoContract(DeviceRules, PointRules, CreditRules, Contract):
    app = "eco"
    types: ClassVar[dict[str, type[Payload]]] = {
        "factor.publish": p.FactorPublish,
        "device.register": p.DeviceRegister,
        "device.approve": p.DeviceRef,
        "device.suspend": p.DeviceSuspend,
        "device.reinstate": p.DeviceSuspend,  # the same fields: which device, and why
        "reading.pv": p.PvReading,
        "reading.ev": p.EvReading,
        "reward.put": p.RewardPut,
        "points.redeem": p.PointsRedeem,
        "report.compile": p.ReportCompile,
        "report.approve": p.ReportRef,
        "report.reject": p.ReportReject,
        "credit.issue": p.ReportRef,
        "credit.list": p.CreditList,
        "credit.buy": p.CreditBuy,
        "credit.transfer": p.CreditTransfer,
        "credit.retire": p.CreditRetire,
    }
