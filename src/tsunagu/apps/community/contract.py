"""Community contribution (地域貢献): the rules, decided on the chain.

State (namespace ``community``); a volunteer is named only by their key id (pseudonymous):

- ``activity/<a-…>``            an organiser's published activity
- ``signup/<a-…>/<vid>``         a resident signed up
- ``session/<a-…>/<vid>``        check-in, check-out, minutes, attestation (and its credential's
                                 hash) and correction history
- ``vsession/<vid>/<a-…>``       the volunteer's index of sessions (overlap checks)
- ``day/<vid>/<yyyy-mm-dd>``     minutes per Japanese calendar day (24-hour limit)
- ``volunteer/<vid>``            attested minutes, groups that attested, helps given, erasure
- ``credential/<sha256>``        an anchored Open Badges credential (hash only) and revocation
- ``milestone/<vid>/<minutes>``  a milestone credential issued (gone again when a correction
                                 takes the hours below it and revokes the credential)
- ``skill/<vid>/<skill>``        a skill with its visibility
- ``help/<h-…>``                 a help request, who helps (or a commitment to whom it invites,
                                 which only they can open), both confirmations
- ``helped/<helper>/<helped>``   the helper has helped this neighbour (for "people I helped")

No names, contacts or free text about a person are written: those stay in the node's
``community.db``, encrypted with a per-resident key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tsunagu.apps.community import catalog
from tsunagu.apps.community.credential_rules import CredentialRules
from tsunagu.apps.community.neighbours import NeighbourRules
from tsunagu.apps.community.payloads import (
    DAY_MINUTES,
    ORGANISER_ROLES,
    RESIDENT_ROLES,
    ActivityPublish,
    ActivitySignup,
    Check,
    CredentialRevoke,
    HelpAccept,
    HelpRef,
    HelpRequest,
    MilestoneIssue,
    SessionAttest,
    SessionCorrect,
    SkillRemove,
    SkillSet,
    VolunteerErase,
    activity_id,
    format_time,
    jst_day,
    minutes_between,
    municipality_of,
    parse_time,
)
from tsunagu.apps.community.timing import TimeRules
from tsunagu.contracts import Contract, Payload, TxContext
from tsunagu.places import municipalities

__all__ = [
    "ORGANISER_ROLES",
    "RESIDENT_ROLES",
    "CommunityContract",
    "format_time",
    "jst_day",
    "minutes_between",
    "municipality_of",
    "parse_time",
]


class CommunityContract(TimeRules, NeighbourRules, CredentialRules, Contract):
    app = "community"
    types: ClassVar[dict[str, type[Payload]]] = {
        "activity.publish": ActivityPublish,
        "activity.signup": ActivitySignup,
        "session.checkin": Check,
        "session.checkout": Check,
        "session.attest": SessionAttest,
        "session.correct": SessionCorrect,
        "credential.milestone": MilestoneIssue,
        "credential.revoke": CredentialRevoke,
        "skill.set": SkillSet,
        "skill.remove": SkillRemove,
        "help.request": HelpRequest,
        "help.accept": HelpAccept,
        "help.confirm": HelpRef,
        "volunteer.erase": VolunteerErase,
    }

    # -- shared checks ------------------------------------------------------------------

    @staticmethod
    def _activity(ctx: TxContext, aid: str) -> dict[str, Any]:
        activity = ctx.get("activity", aid)
        if activity is None:
            ctx.reject("unknown_activity", f"No activity {aid}.", f"活動 {aid} はありません。")
        return activity  # type: ignore[return-value]

    @staticmethod
    def _organiser_of(ctx: TxContext, activity: dict[str, Any]) -> None:
        ctx.require_role(*ORGANISER_ROLES)
        if ctx.signer.org != activity["org"] and "admin" not in ctx.signer.roles:
            ctx.reject(
                "other_group",
                "Only an organiser of the group that runs this activity may do this.",
                "この操作ができるのは、この活動を主催する団体の主催者だけです。",
            )

    def _volunteer(self, ctx: TxContext, p: Check, activity: dict[str, Any]) -> str:
        if p.volunteer is None or p.volunteer == ctx.signer.key_id:
            ctx.require_role(*RESIDENT_ROLES)
            return ctx.signer.key_id
        self._organiser_of(ctx, activity)
        return p.volunteer

    def on_activity_publish(self, ctx: TxContext, p: ActivityPublish) -> None:
        ctx.require_role(*ORGANISER_ROLES)
        if catalog.category(p.category) is None:
            ctx.reject(
                "unknown_category",
                f"No category {p.category}.",
                f"分類 {p.category} はありません。",
            )
        place = municipalities().get(p.municipality)
        if place is None or place.region not in ("tama", "islands"):
            ctx.reject(
                "unknown_place",
                f"{p.municipality} is not a member municipality.",
                f"{p.municipality} は協議会の自治体ではありません。",
            )
        minutes = minutes_between(p.starts_at, p.ends_at)
        if minutes <= 0 or minutes > DAY_MINUTES:
            ctx.reject(
                "bad_times",
                "The activity must end after it starts, within 24 hours.",
                "終了時刻は開始時刻より後、24時間以内にしてください。",
            )
        self._free_text(ctx, p.title, p.place)
        aid = activity_id(ctx.tx_id)
        ctx.put(
            "activity",
            aid,
            {
                **p.model_dump(),
                "id": aid,
                "org": ctx.signer.org,
                "published_by": ctx.signer.key_id,
                "published_at": ctx.timestamp,
                "tx_id": ctx.tx_id,
                "signups": 0,
            },
        )

    def on_activity_signup(self, ctx: TxContext, p: ActivitySignup) -> None:
        ctx.require_role(*RESIDENT_ROLES)
        activity = self._activity(ctx, p.activity)
        self._signup(ctx, activity, ctx.signer.key_id)

    def _signup(self, ctx: TxContext, activity: dict[str, Any], vid: str) -> None:
        self._not_erased(ctx, vid)
        key = f"{activity['id']}/{vid}"
        if ctx.get("signup", key) is not None:
            ctx.reject("already_signed_up", "Already signed up.", "既に申し込み済みです。")
        if activity["signups"] >= activity["capacity"]:
            ctx.reject("full", "The activity is full.", "この活動は定員に達しています。")
        ctx.put("signup", key, {"activity": activity["id"], "volunteer": vid, "at": ctx.timestamp})
        ctx.put("activity", activity["id"], {**activity, "signups": activity["signups"] + 1})

    # -- sessions -----------------------------------------------------------------------

    def on_session_checkin(self, ctx: TxContext, p: Check) -> None:
        activity = self._activity(ctx, p.activity)
        vid = self._volunteer(ctx, p, activity)
        self._not_erased(ctx, vid)
        self._not_future(ctx, p.at)
        self._in_window(ctx, activity, p.at)
        key = f"{p.activity}/{vid}"
        if ctx.get("session", key) is not None:
            ctx.reject(
                "already_checked_in",
                "This volunteer has already checked in to this activity.",
                "この活動には既にチェックインしています。",
            )
        if ctx.get("signup", key) is None:
            self._signup(ctx, self._activity(ctx, p.activity), vid)
        self._check_interval(ctx, vid, p.activity, p.at, None)
        ctx.put(
            "session",
            key,
            {
                "activity": p.activity,
                "volunteer": vid,
                "org": activity["org"],
                "category": activity["category"],
                "municipality": activity["municipality"],
                "check_in": p.at,
                "check_out": None,
                "minutes": 0,
                "attested": False,
                "history": [self._event(ctx, "checkin", time=p.at)],
            },
        )
        ctx.put("vsession", f"{vid}/{p.activity}", {"activity": p.activity})

    def on_session_checkout(self, ctx: TxContext, p: Check) -> None:
        activity = self._activity(ctx, p.activity)
        vid = self._volunteer(ctx, p, activity)
        self._not_future(ctx, p.at)
        key = f"{p.activity}/{vid}"
        session = ctx.get("session", key)
        if session is None:
            ctx.reject(
                "not_checked_in",
                "Check in before checking out.",
                "チェックアウトの前にチェックインしてください。",
            )
        assert session is not None
        if session["check_out"] is not None:
            ctx.reject(
                "already_checked_out", "Already checked out.", "既にチェックアウトしています。"
            )
        self._not_before(ctx, session["check_in"], p.at)
        self._in_window(ctx, activity, p.at)
        minutes = minutes_between(session["check_in"], p.at)
        self._day_limit(ctx, vid, session["check_in"], minutes)
        self._check_interval(ctx, vid, p.activity, session["check_in"], p.at)
        self._add_day(ctx, vid, session["check_in"], minutes)
        history = [*session["history"], self._event(ctx, "checkout", time=p.at)]
        ctx.put(
            "session", key, {**session, "check_out": p.at, "minutes": minutes, "history": history}
        )

    def _closed_session(self, ctx: TxContext, aid: str, vid: str) -> dict[str, Any]:
        session = ctx.get("session", f"{aid}/{vid}")
        if session is None:
            ctx.reject(
                "unknown_session",
                "This volunteer has no session in this activity.",
                "このボランティアのこの活動の記録はありません。",
            )
        assert session is not None
        if session["check_out"] is None:
            ctx.reject(
                "not_checked_out",
                "The volunteer has not checked out yet.",
                "まだチェックアウトしていません。",
            )
        return session

    def on_session_attest(self, ctx: TxContext, p: SessionAttest) -> None:
        activity = self._activity(ctx, p.activity)
        self._organiser_of(ctx, activity)
        session = self._closed_session(ctx, p.activity, p.volunteer)
        if session["attested"]:
            ctx.reject("already_attested", "Already attested.", "既に確認済みです。")
        if session["minutes"] < 1:
            ctx.reject(
                "too_short",
                "Less than one minute was recorded: there is nothing to attest."
                " Correct the times if the volunteer stayed longer.",
                "記録された時間が1分未満のため、確認できません。"
                "実際にはもっと長く参加した場合は、時刻を訂正してください。",
            )
        record = self._not_erased(ctx, p.volunteer)
        orgs = sorted({*record["orgs"], activity["org"]})
        ctx.put(
            "volunteer",
            p.volunteer,
            {**record, "minutes": record["minutes"] + session["minutes"], "orgs": orgs},
        )
        digest = p.credential.hash if p.credential is not None else None
        event = self._event(ctx, "attest", minutes=session["minutes"], credential=digest)
        ctx.put(
            "session",
            f"{p.activity}/{p.volunteer}",
            {
                **session,
                "attested": True,
                "attested_at": ctx.timestamp,
                "credential": digest,
                "history": [*session["history"], event],
            },
        )
        if p.credential is not None:
            self._anchor(ctx, p.credential.hash, p.volunteer, "participation", p.activity)

    def on_session_correct(self, ctx: TxContext, p: SessionCorrect) -> None:
        activity = self._activity(ctx, p.activity)
        self._organiser_of(ctx, activity)
        self._free_text(ctx, p.reason)
        session = self._closed_session(ctx, p.activity, p.volunteer)
        self._not_future(ctx, p.check_out)
        self._not_before(ctx, p.check_in, p.check_out)
        self._in_window(ctx, activity, p.check_in)
        self._in_window(ctx, activity, p.check_out)
        minutes = minutes_between(p.check_in, p.check_out)
        old_day = jst_day(session["check_in"])
        same_day = old_day == jst_day(p.check_in)
        self._day_limit(
            ctx, p.volunteer, p.check_in, minutes, session["minutes"] if same_day else 0
        )
        self._check_interval(ctx, p.volunteer, p.activity, p.check_in, p.check_out)
        self._add_day(ctx, p.volunteer, session["check_in"], -session["minutes"])
        self._add_day(ctx, p.volunteer, p.check_in, minutes)
        revoked, milestones = None, None
        if session["attested"]:
            # The attested minutes and the credential stated the old times: take the minutes
            # back, revoke the credential, and let the organiser attest the corrected session
            # again (which issues a new credential with the right hours).
            record = self._not_erased(ctx, p.volunteer)
            record["minutes"] -= session["minutes"]
            ctx.put("volunteer", p.volunteer, record)
            revoked = session.get("credential")
            if revoked is not None:
                self._revoke(ctx, revoked, p.reason, "corrected")
            milestones = self._below_milestones(ctx, p.volunteer, record["minutes"], p.reason)
        event = self._event(
            ctx,
            "correct",
            reason=p.reason,
            before={
                "check_in": session["check_in"],
                "check_out": session["check_out"],
                "minutes": session["minutes"],
                "attested": session["attested"],
            },
            time=p.check_in,
            until=p.check_out,
            minutes=minutes,
            revoked=revoked,
            revoked_milestones=milestones or None,
        )
        ctx.put(
            "session",
            f"{p.activity}/{p.volunteer}",
            {
                **session,
                "check_in": p.check_in,
                "check_out": p.check_out,
                "minutes": minutes,
                "attested": False,
                "attested_at": None,
                "credential": None,
                "history": [*session["history"], event],
            },
        )
