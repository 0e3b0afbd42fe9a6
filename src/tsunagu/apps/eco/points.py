"""Rewards and redemptions: points are burnt at a shop by a voucher the participant signed.

State (namespace ``eco``):

- ``reward/<id>``       a reward of the catalogue
- ``voucher/<nonce>``   a redemption (a used voucher nonce can never be used again)

A participant's points are not stored: they are computed from the participant's devices'
monthly grams (:func:`rules.earned_by_month`) less what was used, month by month, so a reading
never writes more than its device's row.
"""

from __future__ import annotations

from tsunagu.apps.eco import rules
from tsunagu.apps.eco.devices import STAFF_ROLES, today, voucher_bytes
from tsunagu.apps.eco.payloads import PointsRedeem, RewardPut
from tsunagu.contracts import TxContext
from tsunagu.ledger.keys import verify_signature

SHOP_ROLES = ("shop", "staff", "env_staff")


class PointRules:
    """Handlers for rewards and redemptions (mixed into :class:`EcoContract`)."""

    def on_reward_put(self, ctx: TxContext, p: RewardPut) -> None:
        ctx.require_role(*STAFF_ROLES)
        shop = ctx.org(p.shop)
        if shop is None:
            ctx.reject(
                "unknown_org", f"Unknown organisation {p.shop}.", f"不明な組織です: {p.shop}"
            )
        self._text(ctx, p.name_ja, p.name_en)  # type: ignore[attr-defined]
        ctx.put("reward", p.id, {**p.model_dump(), "tx_id": ctx.tx_id, "at": ctx.timestamp})

    def on_points_redeem(self, ctx: TxContext, p: PointsRedeem) -> None:
        ctx.require_role(*SHOP_ROLES)
        voucher = p.voucher.model_dump()
        member = ctx.read("identity.member", p.voucher.account)
        if member is None or not verify_signature(
            bytes.fromhex(member["public_key"]), bytes.fromhex(p.signature), voucher_bytes(voucher)
        ):
            ctx.reject(
                "bad_voucher",
                "The QR code is not a valid voucher.",
                "このQRコードは有効な引換券ではありません。",
            )
        if ctx.get("voucher", p.voucher.nonce) is not None:
            ctx.reject(
                "already_redeemed",
                "This QR code was already used.",
                "このQRコードは使用済みです。",
            )
        if p.voucher.expires <= ctx.timestamp:
            ctx.reject(
                "voucher_expired",
                "The QR code has expired: ask for a new one.",
                "QRコードの有効期限が切れています。新しいQRコードを表示してもらってください。",
            )
        reward = ctx.get("reward", p.voucher.reward)
        if reward is None or not reward["active"]:
            ctx.reject("unknown_reward", "No such reward.", "その特典はありません。")
        if reward["shop"] != ctx.signer.org and "admin" not in ctx.signer.roles:  # type: ignore[index]
            ctx.reject(
                "other_shop",
                "This reward is honoured by another shop.",
                "この特典は他の店舗・施設の特典です。",
            )
        account = ctx.get("account", p.voucher.account)
        if account is None:
            ctx.reject("no_points", "This participant has no points.", "ポイントがありません。")
        devices = [ctx.get("device", d) for d in account["devices"]]  # type: ignore[index]
        earned = rules.earned_by_month([d for d in devices if d is not None])
        day = today(ctx)
        bal = rules.balance(earned, account["used"], day)  # type: ignore[index]
        cost = reward["points"]  # type: ignore[index]
        if bal.available < cost:
            if bal.available + bal.expired >= cost:
                ctx.reject(
                    "points_expired",
                    f"{bal.expired} points have expired; {bal.available} are left, "
                    f"{cost} are needed.",
                    f"{bal.expired} ポイントは有効期限切れです。残り {bal.available} ポイントで、"
                    f"{cost} ポイント必要です。",
                )
            ctx.reject(
                "insufficient_points",
                f"{cost} points are needed; {bal.available} are available.",
                f"{cost} ポイント必要ですが、利用できるのは {bal.available} ポイントです。",
            )
        account["used"] = rules.spend(earned, account["used"], day, cost)  # type: ignore[index]
        ctx.put("account", p.voucher.account, account)  # type: ignore[arg-type]
        ctx.put(
            "voucher",
            p.voucher.nonce,
            {
                "nonce": p.voucher.nonce,
                "account": p.voucher.account,
                "reward": reward["id"],  # type: ignore[index]
                "points": cost,
                "shop": reward["shop"],  # type: ignore[index]
                "settlement_yen": reward["settlement_yen"],  # type: ignore[index]
                "municipality": account["municipality"],  # type: ignore[index]
                "at": ctx.timestamp,
                "tx_id": ctx.tx_id,
            },
        )
