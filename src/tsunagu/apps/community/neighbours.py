"""Skills and help between neighbours, and erasure: the half of the community rules that is
about residents rather than activities (mixed into :class:`CommunityContract`)."""

from __future__ import annotations

from typing import Any

from tsunagu.apps.community import catalog
from tsunagu.apps.community.payloads import (
    RESIDENT_ROLES,
    HelpAccept,
    HelpRef,
    HelpRequest,
    SkillRemove,
    SkillSet,
    VolunteerErase,
    help_id,
    invite_commitment,
    looks_personal,
    municipality_of,
)
from tsunagu.contracts import TxContext


class RuleHelpers:
    """Checks shared by every community rule."""

    @staticmethod
    def _not_erased(ctx: TxContext, vid: str) -> dict[str, Any]:
        record = ctx.get("volunteer", vid) or {
            "minutes": 0,
            "orgs": [],
            "helps": 0,
            "erased": False,
        }
        if record["erased"]:
            ctx.reject(
                "erased",
                "This volunteer's records were erased.",
                "このボランティアの記録は消去されています。",
            )
        return record

    @staticmethod
    def _free_text(ctx: TxContext, *texts: str) -> None:
        for text in texts:
            if looks_personal(text):
                ctx.reject(
                    "personal_data",
                    "Free text is kept on the ledger for good: no phone numbers or e-mails.",
                    "自由記述は台帳に永久に残ります。電話番号やメールアドレスは書けません。",
                )

    @staticmethod
    def _event(ctx: TxContext, action: str, **extra: Any) -> dict[str, Any]:
        event = {"action": action, "tx_id": ctx.tx_id, "at": ctx.timestamp, "by": ctx.signer.key_id}
        event.update({k: v for k, v in extra.items() if v is not None})
        return event

    # -- activities ---------------------------------------------------------------------


class NeighbourRules(RuleHelpers):
    # -- skills and help ----------------------------------------------------------------

    def _home(self, ctx: TxContext) -> str:
        home = municipality_of(ctx.org(ctx.signer.org))
        if home is None:
            ctx.reject(
                "no_municipality", "You belong to no municipality.", "所属自治体がありません。"
            )
        return home  # type: ignore[return-value]

    def on_skill_set(self, ctx: TxContext, p: SkillSet) -> None:
        ctx.require_role(*RESIDENT_ROLES)
        if catalog.skill(p.skill) is None:
            ctx.reject("unknown_skill", f"No skill {p.skill}.", f"技能 {p.skill} はありません。")
        self._not_erased(ctx, ctx.signer.key_id)
        ctx.put(
            "skill",
            f"{ctx.signer.key_id}/{p.skill}",
            {
                "volunteer": ctx.signer.key_id,
                "skill": p.skill,
                "visibility": p.visibility,
                "municipality": self._home(ctx),
                "since": ctx.timestamp,
            },
        )

    def on_skill_remove(self, ctx: TxContext, p: SkillRemove) -> None:
        ctx.require_role(*RESIDENT_ROLES)
        key = f"{ctx.signer.key_id}/{p.skill}"
        if ctx.get("skill", key) is None:
            ctx.reject("unknown_skill", "You have not listed this skill.", "この技能は未登録です。")
        ctx.delete("skill", key)

    def on_help_request(self, ctx: TxContext, p: HelpRequest) -> None:
        ctx.require_role(*RESIDENT_ROLES)
        if catalog.skill(p.skill) is None:
            ctx.reject("unknown_skill", f"No skill {p.skill}.", f"技能 {p.skill} はありません。")
        if p.helper == ctx.signer.key_id:
            ctx.reject("self_help", "Ask someone else.", "自分自身には依頼できません。")
        if p.helper is not None and p.invite is not None:
            ctx.reject(
                "helper_and_invite",
                "Name the helper or invite them, not both.",
                "手伝う方の指名と招待は同時にできません。",
            )
        self._not_erased(ctx, ctx.signer.key_id)
        hid = help_id(ctx.tx_id)
        record = {
            "id": hid,
            "skill": p.skill,
            "requester": ctx.signer.key_id,
            "municipality": self._home(ctx),
            "helper": p.helper,
            "status": "open",
            "confirmed": [],
            "requested_at": ctx.timestamp,
            "history": [self._event(ctx, "request")],
        }
        if p.invite is not None:  # only then: a request without one is stored as before
            record["invite"] = p.invite
        ctx.put("help", hid, record)

    def _help(self, ctx: TxContext, hid: str) -> dict[str, Any]:
        record = ctx.get("help", hid)
        if record is None:
            ctx.reject("unknown_help", "No such help request.", "その依頼はありません。")
        return record  # type: ignore[return-value]

    def on_help_accept(self, ctx: TxContext, p: HelpAccept) -> None:
        ctx.require_role(*RESIDENT_ROLES)
        record = self._help(ctx, p.help)
        me = ctx.signer.key_id
        if me == record["requester"]:
            ctx.reject("self_help", "You cannot help yourself.", "自分の依頼は引き受けられません。")
        if record["status"] != "open" or (record["helper"] not in (None, me)):
            ctx.reject(
                "help_taken", "Someone else is helping already.", "既に他の方が引き受けています。"
            )
        invite = record.get("invite")
        if invite is not None and (p.salt is None or invite_commitment(p.salt, me) != invite):
            ctx.reject(
                "not_invited",
                "This request asks one particular neighbour: only they can accept it.",
                "この依頼は特定の方への依頼です。引き受けられるのは依頼された方だけです。",
            )
        self._not_erased(ctx, me)
        history = [*record["history"], self._event(ctx, "accept")]
        ctx.put("help", p.help, {**record, "helper": me, "status": "accepted", "history": history})

    def on_help_confirm(self, ctx: TxContext, p: HelpRef) -> None:
        ctx.require_role(*RESIDENT_ROLES)
        record = self._help(ctx, p.help)
        me = ctx.signer.key_id
        if me not in (record["requester"], record["helper"]):
            ctx.reject(
                "not_party",
                "Only the two neighbours involved may confirm.",
                "確認できるのは依頼した人と手伝った人だけです。",
            )
        if record["status"] == "open":
            ctx.reject("not_accepted", "Nobody has accepted yet.", "まだ誰も引き受けていません。")
        if me in record["confirmed"]:
            ctx.reject("already_confirmed", "You have already confirmed.", "既に確認済みです。")
        confirmed = sorted([*record["confirmed"], me])
        done = len(confirmed) == 2
        history = [*record["history"], self._event(ctx, "confirm")]
        record = {**record, "confirmed": confirmed, "history": history}
        if done:
            record["status"] = "done"
            record["done_at"] = ctx.timestamp
            helper = record["helper"]
            ctx.put("helped", f"{helper}/{record['requester']}", {"help": p.help})
            counts = self._not_erased(ctx, helper)
            ctx.put("volunteer", helper, {**counts, "helps": counts["helps"] + 1})
        ctx.put("help", p.help, record)

    # -- erasure ------------------------------------------------------------------------

    def on_volunteer_erase(self, ctx: TxContext, p: VolunteerErase) -> None:
        ctx.require_role(*RESIDENT_ROLES)
        me = ctx.signer.key_id
        record = self._not_erased(ctx, me)
        ctx.put("volunteer", me, {**record, "erased": True, "erased_at": ctx.timestamp})
        for key, _ in list(ctx.scan("skill", f"{me}/")):
            ctx.delete("skill", key)
        for key, value in list(ctx.scan("help")):
            if value["status"] in ("open", "accepted") and me in (
                value["requester"],
                value["helper"],
            ):
                ctx.put("help", key, {**value, "status": "withdrawn"})
