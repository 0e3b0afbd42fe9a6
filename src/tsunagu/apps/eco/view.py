"""Reading the eco state for the API and pages: participants' balances, the dashboard's
figures, vouchers (the redemption QR) and lots. Nothing here decides a rule."""

from __future__ import annotations

import base64
import io
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import segno

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.devices import voucher_bytes
from tsunagu.errors import InvalidInput, NotFound
from tsunagu.ledger.block import format_timestamp
from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.keys import SigningKey
from tsunagu.places import municipalities

VOUCHER_PREFIX = "ECO1"


def today_jst() -> str:
    return (datetime.now(UTC) + rules.JST).date().isoformat()


def _suspended_because(device: dict[str, Any]) -> str | None:
    """The reason recorded with the device's latest suspension."""
    for event in reversed(device.get("history") or []):
        if event.get("action") == "suspended":
            return event.get("reason")
    return None


class EcoView:
    """The committed eco state, read once per request."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.state = node.store.state()

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [v for _, v in self.state.scan(f"eco.{kind}")]

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.state.get(f"eco.{kind}", key)

    def found(self, kind: str, key: str, en: str, ja: str) -> dict[str, Any]:
        record = self.get(kind, key)
        if record is None:
            raise NotFound(f"No {en} {key}.", f"{ja} {key} はありません。", code=f"unknown_{kind}")
        return record

    def org_name(self, org_id: str | None) -> dict[str, str]:
        org = self.state.get("identity.org", org_id or "") or {}
        return {"ja": org.get("name_ja", org_id or ""), "en": org.get("name_en", org_id or "")}

    @staticmethod
    def place_name(place: str | None) -> dict[str, str]:
        m = municipalities().get(place or "")
        return {"ja": m.name_ja, "en": m.name_en} if m else {"ja": place or "", "en": place or ""}

    def programme(self) -> dict[str, Any]:
        return self.get("programme", "main") or {
            "closed_through": None,
            "carry_g": 0,
            "pending": None,
            "reports": 0,
        }

    # -- participants ------------------------------------------------------------------

    def account(self, key_id: str, today: str | None = None) -> dict[str, Any]:
        account = self.get("account", key_id) or {"devices": [], "used": {}}
        devices = [d for d in (self.get("device", k) for k in account["devices"]) if d]
        earned = rules.earned_by_month(devices)
        bal = rules.balance(earned, account["used"], today or today_jst())
        months: dict[str, dict[str, int]] = {}
        for device in devices:
            for month, row in device["months"].items():
                slot = months.setdefault(month, {"pv": 0, "ev": 0})
                slot[device["kind"]] += row["g"]
        return {
            "account": key_id,
            "points": {
                "available": bal.available,
                "expired": bal.expired,
                "used": bal.used,
                "earned": bal.earned,
                "next_expiry": bal.next_expiry,
            },
            "grams": sum(d["grams"] for d in devices),
            "months": [
                {"month": m, **v, "points": earned.get(m, 0), "expires": rules.point_expiry(m)}
                for m, v in sorted(months.items())
            ],
            "devices": [self.device(d) for d in devices],
        }

    def device(self, d: dict[str, Any]) -> dict[str, Any]:
        return {
            k: d[k]
            for k in (
                "id",
                "kind",
                "rated_w",
                "status",
                "municipality",
                "org",
                "grams",
                "readings",
                "last",
                "registered_at",
                "key_id",
            )
        } | {
            "municipality_name": self.place_name(d["municipality"]),
            "suspended_because": _suspended_because(d) if d["status"] == "suspended" else None,
        }

    # -- the dashboard -----------------------------------------------------------------

    def dashboard(self, today: str | None = None) -> dict[str, Any]:
        day = today or today_jst()
        by_month: dict[str, dict[str, int]] = {}
        by_place: dict[str, dict[str, int]] = {}
        devices = {d["id"]: d for d in self.all("device")}
        for d in devices.values():
            place = by_place.setdefault(d["municipality"] or "-", {"pv": 0, "ev": 0, "devices": 0})
            place["devices"] += 1
            for month, row in d["months"].items():
                by_month.setdefault(month, {"pv": 0, "ev": 0})[d["kind"]] += row["g"]
                place[d["kind"]] += row["g"]
        issued = redeemed = expired = available = 0
        for account in self.all("account"):
            mine = [devices[k] for k in account["devices"] if k in devices]
            bal = rules.balance(rules.earned_by_month(mine), account["used"], day)
            issued += bal.earned
            redeemed += bal.used
            expired += bal.expired
            available += bal.available
        lots = self.all("lot")
        reports = self.all("report")
        sold = sum(e["tco2"] for lot in lots for e in lot["history"] if e["action"] == "sold")
        return {
            "by_month": [{"month": m, **v} for m, v in sorted(by_month.items())],
            "by_municipality": [
                {"municipality": p, "name": self.place_name(p), **v}
                for p, v in sorted(by_place.items())
            ],
            "points": {
                "issued": issued,
                "redeemed": redeemed,
                "expired": expired,
                "outstanding": available,
            },
            "credits": {
                "issued": sum(r.get("tco2", 0) for r in reports if r["status"] == "issued"),
                "sold": sold,
                "retired": sum(lot["tco2"] for lot in lots if lot["status"] == "retired"),
            },
            "devices": {
                "approved": sum(d["status"] == "approved" for d in devices.values()),
                "pending": sum(d["status"] == "pending" for d in devices.values()),
            },
            "programme": self.programme(),
        }

    # -- lots --------------------------------------------------------------------------

    def lot(self, lot: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": lot["id"],
            "serial_start": lot["serial_start"],
            "serial_end": lot["serial_end"],
            "serials": f"{rules.format_serial(lot['serial_start'])} – "
            f"{rules.format_serial(lot['serial_end'])}",
            "tco2": lot["tco2"],
            "status": lot["status"],
            "holder": lot["holder"],
            "holder_name": self.org_name(lot["holder"]),
            "issuer": lot["issuer"],
            "issuer_name": self.org_name(lot["issuer"]),
            "report": lot["report"],
            "listing": lot["listing"],
            "retirement": lot["retirement"],
            "history": lot["history"],
        }

    def trace(self, lot: dict[str, Any]) -> dict[str, Any]:
        """Exactly the readings (and parts of readings) behind the lot's serials
        (:mod:`trace`)."""
        from tsunagu.apps.eco.trace import Tracer

        return Tracer(self).trace(lot)


# -- vouchers ------------------------------------------------------------------------------


def make_voucher(key: SigningKey, reward: str, now: datetime | None = None) -> tuple[str, str]:
    """A one-time redemption code signed with the participant's key, and its expiry."""
    moment = now or datetime.now(UTC)
    voucher = {
        "v": 1,
        "account": key.key_id,
        "reward": reward,
        "nonce": secrets.token_hex(16),
        "expires": format_timestamp(moment + timedelta(seconds=rules.VOUCHER_SECONDS)),
    }
    body = base64.urlsafe_b64encode(canonical(voucher)).rstrip(b"=").decode()
    signature = base64.urlsafe_b64encode(key.sign(voucher_bytes(voucher))).rstrip(b"=").decode()
    return f"{VOUCHER_PREFIX}.{body}.{signature}", voucher["expires"]


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_voucher(code: str) -> dict[str, Any]:
    """The ``points.redeem`` payload in a code (the contract checks it; this only parses)."""
    code = code.strip()
    if "code=" in code:  # the whole URL from the QR
        code = code.split("code=", 1)[1].split("&", 1)[0]
    try:
        prefix, body, signature = code.split(".")
        if prefix != VOUCHER_PREFIX:
            raise ValueError(prefix)
        voucher = json.loads(_b64(body))
        sig = _b64(signature)
        if not isinstance(voucher, dict) or len(sig) != 64:
            raise ValueError("shape")
    except (ValueError, TypeError):
        raise InvalidInput(
            "This is not an eco-points QR code.",
            "エコポイントのQRコードではありません。",
            code="bad_voucher",
        ) from None
    return {"voucher": voucher, "signature": sig.hex()}


def qr_svg(text: str, title: str, scale: int = 5) -> str:
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        out,
        kind="svg",
        scale=scale,
        border=4,
        xmldecl=False,
        svgns=True,
        title=title,
        svgclass="eco-qr",
        lineclass=None,
        omitsize=True,
    )
    return out.getvalue().decode()
