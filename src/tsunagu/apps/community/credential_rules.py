"""Credentials on the chain (mixed into :class:`CommunityContract`): anchoring a credential's
hash, milestone credentials and revocation, including the revocations the rules make
themselves when a correction changes what a credential stated."""

from __future__ import annotations

from tsunagu.apps.community import catalog
from tsunagu.apps.community.neighbours import RuleHelpers
from tsunagu.apps.community.payloads import ORGANISER_ROLES, CredentialRevoke, MilestoneIssue
from tsunagu.contracts import TxContext


class CredentialRules(RuleHelpers):
    def _anchor(self, ctx: TxContext, digest: str, vid: str, kind: str, subject: str) -> None:
        if ctx.get("credential", digest) is not None:
            ctx.reject("duplicate_credential", "Already anchored.", "既に記録されています。")
        ctx.put(
            "credential",
            digest,
            {
                "hash": digest,
                "kind": kind,
                "subject": subject,
                "recipient": vid,
                "issuer": ctx.signer.key_id,
                "org": ctx.signer.org,
                "issued_at": ctx.timestamp,
                "tx_id": ctx.tx_id,
                "revoked": False,
            },
        )

    def on_credential_milestone(self, ctx: TxContext, p: MilestoneIssue) -> None:
        ctx.require_role(*ORGANISER_ROLES)
        if p.minutes not in catalog.MILESTONES:
            ctx.reject("unknown_milestone", "No such milestone.", "そのような節目はありません。")
        record = self._not_erased(ctx, p.recipient)
        if ctx.signer.org not in record["orgs"]:
            ctx.reject(
                "other_group",
                "Only a group that attested this volunteer's hours may issue this.",
                "このボランティアの活動を確認した団体だけが発行できます。",
            )
        if record["minutes"] < p.minutes:
            ctx.reject(
                "milestone_not_reached",
                "The attested hours have not reached this milestone.",
                "確認済みの活動時間がこの節目に達していません。",
            )
        key = f"{p.recipient}/{p.minutes}"
        if ctx.get("milestone", key) is not None:
            ctx.reject("duplicate_credential", "Already issued.", "既に発行されています。")
        ctx.put("milestone", key, {"hash": p.hash})
        self._anchor(ctx, p.hash, p.recipient, "milestone", str(p.minutes))

    def on_credential_revoke(self, ctx: TxContext, p: CredentialRevoke) -> None:
        ctx.require_role(*ORGANISER_ROLES)
        self._free_text(ctx, p.reason)
        credential = ctx.get("credential", p.hash)
        if credential is None:
            ctx.reject("unknown_credential", "No such credential.", "その証明書はありません。")
        assert credential is not None
        if credential["org"] != ctx.signer.org and "admin" not in ctx.signer.roles:
            ctx.reject(
                "other_group",
                "Only the issuing group may revoke it.",
                "取り消しができるのは発行した団体だけです。",
            )
        if credential["revoked"]:
            ctx.reject("already_revoked", "Already revoked.", "既に取り消されています。")
        self._revoke(ctx, p.hash, p.reason)

    def _below_milestones(self, ctx: TxContext, vid: str, minutes: int, reason: str) -> list[str]:
        """Revoke the milestone credentials that ``minutes`` of attested time no longer reach
        and forget they were issued, so the next attestation that reaches them again issues
        new ones. Returns the revoked hashes."""
        revoked = []
        for milestone in catalog.MILESTONES:
            key = f"{vid}/{milestone}"
            issued = ctx.get("milestone", key)
            if minutes >= milestone or issued is None:
                continue
            self._revoke(ctx, issued["hash"], reason, "below_milestone")
            ctx.delete("milestone", key)
            revoked.append(issued["hash"])
        return revoked

    @staticmethod
    def _revoke(ctx: TxContext, digest: str, reason: str, cause: str | None = None) -> None:
        """Mark an anchored credential revoked (what verification's revocation check reads);
        one that is missing or already revoked is left as it is. ``cause`` says why when the
        rules revoke it themselves: ``corrected`` (its session's times were corrected) or
        ``below_milestone`` (a correction took the attested hours below its milestone)."""
        credential = ctx.get("credential", digest)
        if credential is None or credential["revoked"]:
            return
        revocation = {"revoked": True, "revoked_at": ctx.timestamp, "reason": reason}
        if cause is not None:
            revocation["cause"] = cause
        ctx.put("credential", digest, {**credential, **revocation})
