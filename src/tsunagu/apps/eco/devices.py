"""Devices, readings, emission factors, rewards and points: the participant's side.

State (namespace ``eco``):

- ``factor/<kind>``     ``{"kind", "years": {"2024": {"value", "source_ja", "source_en", …}}}``
- ``device/<d-…>``      a registered device, its last counters and its reductions by month
                        (``months[YYYY-MM] = {"g": grams, "n": readings, "a": Wh, "b": Wh or m}``)
- ``account/<key id>``  a participant: their devices and the points used, by month earned

Rewards and redemptions are in :mod:`points`.

A device's key becomes a chain member (kind ``device``) when staff approve it, through the
identity app's ``device.add`` (the eco contract may not write identity state); a reading is
a transaction signed by that key, so the node checks its signature before the contract runs.
"""

from __future__ import annotations

import re
from typing import Any

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.payloads import (
    DeviceRef,
    DeviceRegister,
    DeviceSuspend,
    EvReading,
    FactorPublish,
    PvReading,
)
from tsunagu.contracts import TxContext
from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.keys import key_id

PARTICIPANT_ROLES = ("resident", "shop", "company")
STAFF_ROLES = ("env_staff",)

_WIDE = str.maketrans("０１２３４５６７８９－", "0123456789-")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+", re.ASCII)
_PHONE = re.compile(r"\d[\d -]{8,}\d", re.ASCII)


def device_id(public_key_hex: str) -> str:
    return "d-" + key_id(bytes.fromhex(public_key_hex))[:16]


def looks_personal(text: str) -> bool:
    plain = text.translate(_WIDE)
    return bool(_EMAIL.search(plain)) or any(
        sum(c.isdigit() for c in m) >= 10 for m in _PHONE.findall(plain)
    )


def municipality_of(org: dict[str, Any] | None) -> str | None:
    if org is None:
        return None
    return org.get("municipality") or (org["id"] if org.get("type") == "municipality" else None)


def today(ctx: TxContext) -> str:
    return rules.jst(ctx.timestamp).date().isoformat()


def voucher_bytes(voucher: dict[str, Any]) -> bytes:
    """The bytes a participant signs for a redemption voucher (RFC 8785, domain-separated)."""
    return b"tsunagu-eco-voucher:" + canonical(voucher)


class DeviceRules:
    """Handlers for the participant's side (mixed into :class:`EcoContract`)."""

    # -- shared ------------------------------------------------------------------------

    @staticmethod
    def _text(ctx: TxContext, *texts: str) -> None:
        for text in texts:
            if looks_personal(text):
                ctx.reject(
                    "personal_data",
                    "Text must not hold phone numbers or e-mail addresses: it stays on the "
                    "ledger for good.",
                    "電話番号やメールアドレスは書かないでください（台帳に永久に残ります）。",
                )

    @staticmethod
    def _device(ctx: TxContext, key: str) -> dict[str, Any]:
        device = ctx.get("device", key)
        if device is None:
            ctx.reject("unknown_device", f"No device {key}.", f"機器 {key} は登録されていません。")
        return device  # type: ignore[return-value]

    @staticmethod
    def _manages(ctx: TxContext, municipality: str | None) -> None:
        """Environment staff of the device's municipality (or an administrator)."""
        if "admin" in ctx.signer.roles:
            return
        mine = municipality_of(ctx.org(ctx.signer.org))
        if "env_staff" not in ctx.signer.roles or mine != municipality:
            ctx.reject(
                "not_programme_staff",
                "Only the environment staff of the device's municipality may do this.",
                "この操作ができるのは、その機器がある自治体の環境担当職員だけです。",
            )

    # -- emission factors --------------------------------------------------------------

    def on_factor_publish(self, ctx: TxContext, p: FactorPublish) -> None:
        ctx.require_role(*STAFF_ROLES)
        record = ctx.get("factor", p.kind) or {"kind": p.kind, "years": {}}
        year = str(p.fiscal_year)
        if year in record["years"]:
            # Past points and credits were computed with it: a factor is never rewritten.
            ctx.reject(
                "factor_exists",
                f"The {p.kind} factor for FY{year} is already published and cannot change.",
                f"{year}年度の排出係数は公表済みのため変更できません。",
            )
        record["years"][year] = {
            "value": p.value,
            "source_ja": p.source_ja,
            "source_en": p.source_en,
            "tx_id": ctx.tx_id,
            "at": ctx.timestamp,
        }
        ctx.put("factor", p.kind, record)

    # -- devices -----------------------------------------------------------------------

    def on_device_register(self, ctx: TxContext, p: DeviceRegister) -> None:
        ctx.require_role(*PARTICIPANT_ROLES)
        if not p.consent:
            ctx.reject(
                "consent_required",
                "Registering a device hands its CO2 reductions to the municipality's "
                "programme: agree to that first.",
                "機器の登録には、CO2削減量（環境価値）を自治体のプログラムに譲渡することへの"
                "同意が必要です。",
            )
        key = device_id(p.public_key)
        if ctx.get("device", key) is not None or ctx.read(
            "identity.member", key_id(bytes.fromhex(p.public_key))
        ):
            ctx.reject(
                "duplicate_device", "This device key is registered.", "この機器の鍵は登録済みです。"
            )
        base = p.baseline
        if base.a < 0 or base.b < 0:
            self._negative(ctx)
        if base.at > ctx.timestamp:
            ctx.reject(
                "baseline_in_future",
                "The baseline meter reading is in the future.",
                "基準となるメーター値の日時が未来です。",
            )
        if p.kind == "pv" and base.b > base.a:
            self._export_above(ctx)
        municipality = municipality_of(ctx.org(ctx.signer.org))
        ctx.put(
            "device",
            key,
            {
                "id": key,
                "kind": p.kind,
                "rated_w": p.rated_w,
                "key_id": key_id(bytes.fromhex(p.public_key)),
                "public_key": p.public_key,
                "owner": ctx.signer.key_id,
                "org": ctx.signer.org,
                "municipality": municipality,
                "consent": {"at": ctx.timestamp, "tx_id": ctx.tx_id},
                "status": "pending",
                "registered_at": ctx.timestamp,
                "last": {"at": base.at, "a": base.a, "b": base.b},
                "residual": 0,
                "grams": 0,
                "readings": 0,
                "months": {},
                "history": [{"action": "registered", "tx_id": ctx.tx_id, "at": ctx.timestamp}],
            },
        )
        account = ctx.get("account", ctx.signer.key_id) or {
            "owner": ctx.signer.key_id,
            "org": ctx.signer.org,
            "municipality": municipality,
            "devices": [],
            "used": {},
        }
        account["devices"].append(key)
        ctx.put("account", ctx.signer.key_id, account)

    def on_device_approve(self, ctx: TxContext, p: DeviceRef) -> None:
        device = self._device(ctx, p.device)
        self._manages(ctx, device["municipality"])
        if device["status"] != "pending":
            ctx.reject(
                "not_pending",
                f"The device is {device['status']}, not waiting for approval.",
                "この機器は承認待ちではありません。",
            )
        self._moved(ctx, device, "approved", "approved")

    def on_device_suspend(self, ctx: TxContext, p: DeviceSuspend) -> None:
        device = self._device(ctx, p.device)
        self._manages(ctx, device["municipality"])
        self._text(ctx, p.reason)
        if device["status"] == "suspended":
            ctx.reject("already_suspended", "The device is suspended.", "この機器は停止済みです。")
        self._moved(ctx, device, "suspended", "suspended", p.reason)

    def on_device_reinstate(self, ctx: TxContext, p: DeviceSuspend) -> None:
        """Take a suspended device back. Its counters ran on while it was suspended, and that
        electricity must not earn anything: its next reading is taken as a new baseline
        (recorded, not credited), and the readings after it count as before."""
        device = self._device(ctx, p.device)
        self._manages(ctx, device["municipality"])
        self._text(ctx, p.reason)
        if device["status"] != "suspended":
            ctx.reject(
                "not_suspended",
                f"The device is {device['status']}, not suspended.",
                "この機器は停止中ではありません。",
            )
        device["rebase"] = True
        self._moved(ctx, device, "approved", "reinstated", p.reason)

    @staticmethod
    def _moved(
        ctx: TxContext, device: dict[str, Any], status: str, action: str, reason: str | None = None
    ) -> None:
        """Give the device ``status``, with the event in its history, and store it."""
        device["status"] = status
        event = {"action": action, "tx_id": ctx.tx_id, "at": ctx.timestamp}
        if reason is not None:
            event["reason"] = reason
        device["history"].append(event)
        ctx.put("device", device["id"], device)

    @staticmethod
    def _rebased(ctx: TxContext, device: dict[str, Any], at: str, a: int, b: int) -> bool:
        """The first reading after a reinstatement: the new baseline, credited nothing (a
        meter may have been replaced meanwhile, so the counters may be lower than before)."""
        if not device.get("rebase"):
            return False
        if a < 0 or b < 0:
            DeviceRules._negative(ctx)
        if device["kind"] == "pv" and b > a:
            DeviceRules._export_above(ctx)
        device["rebase"] = False
        device["last"] = {"at": at, "a": a, "b": b}
        device["history"].append({"action": "rebased", "tx_id": ctx.tx_id, "at": at})
        ctx.put("device", device["id"], device)
        return True

    # -- readings ----------------------------------------------------------------------

    @staticmethod
    def _negative(ctx: TxContext) -> None:
        ctx.reject(
            "negative_reading",
            "A meter counter cannot be negative.",
            "メーターの積算値が負の値になっています。",
        )

    @staticmethod
    def _export_above(ctx: TxContext) -> None:
        ctx.reject(
            "export_above_generation",
            "More electricity was exported than generated.",
            "売電量が発電量を上回っています。",
        )

    def _reading_device(self, ctx: TxContext, key: str, kind: str, at: str) -> dict[str, Any]:
        device = self._device(ctx, key)
        if ctx.signer.kind != "device" or ctx.signer.key_id != device["key_id"]:
            ctx.reject(
                "not_device_key",
                "A reading must be signed by the device's own key.",
                "計測値はその機器自身の鍵で署名されている必要があります。",
            )
        if device["status"] != "approved":
            ctx.reject(
                "device_not_approved",
                f"The device is {device['status']}: its readings are not accepted.",
                "この機器は承認されていない（または停止中の）ため、計測値を受け付けません。",
            )
        if device["kind"] != kind:
            ctx.reject(
                "wrong_reading_kind",
                f"This device is {device['kind']}.",
                "機器の種類と計測値の種類が一致しません。",
            )
        last = device["last"]["at"]
        if at == last:
            ctx.reject(
                "reading_repeated",
                f"A reading at {at} was already recorded.",
                f"{at} の計測値は記録済みです（重複）。",
            )
        if at < last:
            ctx.reject(
                "reading_backwards",
                f"The reading at {at} is older than the last one ({last}).",
                f"計測日時 {at} が前回（{last}）より前です。",
            )
        if rules.seconds_between(ctx.timestamp, at) > rules.CLOCK_SKEW_SECONDS:
            ctx.reject(
                "reading_in_future",
                f"The reading's time {at} is in the future.",
                f"計測日時 {at} が未来です。",
            )
        closed = (ctx.get("programme", "main") or {}).get("closed_through")
        if closed is not None and rules.month_of(at) <= closed:
            ctx.reject(
                "period_closed",
                f"Reductions up to {closed} are already in a monitoring report.",
                f"{closed} までの削減量はモニタリング報告に取りまとめ済みです。",
            )
        return device

    @staticmethod
    def _grid(ctx: TxContext, at: str) -> int:
        found = rules.factor_for(ctx.get("factor", "grid"), rules.fiscal_year(at))
        if found is None:
            ctx.reject(
                "no_factor",
                "No grid emission factor is published for that fiscal year.",
                "その年度の電力の排出係数が公表されていません。",
            )
        return found[1]  # type: ignore[index]

    def _counters(self, ctx: TxContext, device: dict[str, Any], at: str, a: int, b: int) -> int:
        if a < 0 or b < 0:
            self._negative(ctx)
        last = device["last"]
        if a < last["a"] or b < last["b"]:
            ctx.reject(
                "counter_backwards",
                "A meter counter went backwards.",
                "メーターの積算値が前回より小さくなっています。",
            )
        return rules.seconds_between(last["at"], at)

    @staticmethod
    def _record(ctx: TxContext, device: dict[str, Any], at: str, a: int, b: int, e) -> None:
        month = rules.month_of(at)
        row = device["months"].get(month) or {"g": 0, "n": 0, "a": 0, "b": 0}
        row["g"] += e.grams
        row["n"] += 1
        row["a"] += e.a
        row["b"] += e.b
        device["months"][month] = row
        device["grams"] += e.grams
        device["readings"] += 1
        device["residual"] = e.residual
        device["last"] = {"at": at, "a": a, "b": b}
        ctx.put("device", device["id"], device)

    def on_reading_pv(self, ctx: TxContext, p: PvReading) -> None:
        device = self._reading_device(ctx, p.device, "pv", p.at)
        if self._rebased(ctx, device, p.at, p.generated_wh, p.exported_wh):
            return
        seconds = self._counters(ctx, device, p.at, p.generated_wh, p.exported_wh)
        generated = p.generated_wh - device["last"]["a"]
        exported = p.exported_wh - device["last"]["b"]
        if not rules.within_capacity(generated, device["rated_w"], seconds):
            ctx.reject(
                "exceeds_capacity",
                f"{generated} Wh in {seconds} s is more than a {device['rated_w']} W array "
                "can generate.",
                f"{seconds}秒間に {generated} Wh は、定格 {device['rated_w']} W の設備では"
                "発電できない量です。",
            )
        if exported > generated:
            self._export_above(ctx)
        effect = rules.pv_effect(generated, exported, self._grid(ctx, p.at), device["residual"])
        self._record(ctx, device, p.at, p.generated_wh, p.exported_wh, effect)

    def on_reading_ev(self, ctx: TxContext, p: EvReading) -> None:
        device = self._reading_device(ctx, p.device, "ev", p.at)
        if self._rebased(ctx, device, p.at, p.charged_wh, p.distance_m):
            return
        seconds = self._counters(ctx, device, p.at, p.charged_wh, p.distance_m)
        charged = p.charged_wh - device["last"]["a"]
        metres = p.distance_m - device["last"]["b"]
        if not rules.within_capacity(charged, device["rated_w"], seconds):
            ctx.reject(
                "exceeds_capacity",
                f"{charged} Wh in {seconds} s is more than a {device['rated_w']} W charger "
                "can deliver.",
                f"{seconds}秒間に {charged} Wh は、定格 {device['rated_w']} W の充電器では"
                "充電できない量です。",
            )
        if not rules.within_speed(metres, seconds):
            ctx.reject(
                "exceeds_speed",
                f"{metres} m in {seconds} s is faster than a car can go.",
                f"{seconds}秒間に {metres} m は、自動車で走行できない距離です。",
            )
        car = rules.factor_for(ctx.get("factor", "car"), rules.fiscal_year(p.at))
        if car is None:
            ctx.reject(
                "no_factor",
                "No petrol-car factor is published for that fiscal year.",
                "その年度のガソリン車の排出係数が公表されていません。",
            )
        grid = self._grid(ctx, p.at)
        effect = rules.ev_effect(charged, metres, grid, car[1], device["residual"])  # type: ignore[index]
        self._record(ctx, device, p.at, p.charged_wh, p.distance_m, effect)
