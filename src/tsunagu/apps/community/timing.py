"""The time rules of community sessions (mixed into :class:`CommunityContract`): not in the
future, check-out not before check-in, near the activity's hours, no overlap between a
volunteer's sessions, at most 24 hours in a Japanese calendar day."""

from __future__ import annotations

from typing import Any

from tsunagu.apps.community.payloads import (
    CHECK_WINDOW,
    CLOCK_SKEW,
    DAY_MINUTES,
    jst_day,
    parse_time,
)
from tsunagu.contracts import TxContext
from tsunagu.ledger.block import parse_timestamp


class TimeRules:
    """Checks on check-in and check-out times, and the per-day minutes they add up to."""

    @staticmethod
    def _not_future(ctx: TxContext, at: str) -> None:
        if parse_time(at) > parse_timestamp(ctx.timestamp) + CLOCK_SKEW:
            ctx.reject("time_future", "The time is in the future.", "未来の時刻は記録できません。")

    def _check_interval(
        self, ctx: TxContext, vid: str, aid: str, start: str, end: str | None
    ) -> None:
        """Reject if [start, end) overlaps another of the volunteer's sessions (end None: open)."""
        for _, ref in ctx.scan("vsession", f"{vid}/"):
            if ref["activity"] == aid:
                continue
            other = ctx.get("session", f"{ref['activity']}/{vid}")
            if other is None:
                continue
            other_end = other["check_out"]
            if other_end is None:
                if end is None or end > other["check_in"]:
                    self._overlap(ctx)
                continue
            if start < other_end and (end is None or end > other["check_in"]):
                self._overlap(ctx)

    @staticmethod
    def _overlap(ctx: TxContext) -> None:
        ctx.reject(
            "overlapping",
            "This overlaps another session of the same volunteer.",
            "同じボランティアの別の活動の時間と重なっています。",
        )

    @staticmethod
    def _day_limit(ctx: TxContext, vid: str, start: str, minutes: int, already: int = 0) -> None:
        day = ctx.get("day", f"{vid}/{jst_day(start)}") or {"minutes": 0}
        if minutes > DAY_MINUTES or day["minutes"] - already + minutes > DAY_MINUTES:
            ctx.reject(
                "over_24h",
                "More than 24 hours in one day cannot be recorded.",
                "1日に24時間を超える活動は記録できません。",
            )

    @staticmethod
    def _add_day(ctx: TxContext, vid: str, start: str, minutes: int) -> None:
        key = f"{vid}/{jst_day(start)}"
        day = ctx.get("day", key) or {"minutes": 0}
        ctx.put("day", key, {"minutes": day["minutes"] + minutes})

    @staticmethod
    def _not_before(ctx: TxContext, check_in: str, check_out: str) -> None:
        """A check-out in the same second as the check-in is accepted (it counts 0 minutes)."""
        if check_out < check_in:
            ctx.reject(
                "checkout_before_checkin",
                "The check-out time cannot be before the check-in time.",
                "チェックアウトの時刻はチェックインより前にできません。",
            )

    @staticmethod
    def _in_window(ctx: TxContext, activity: dict[str, Any], at: str) -> None:
        moment = parse_time(at)
        if not (
            parse_time(activity["starts_at"]) - CHECK_WINDOW
            <= moment
            <= parse_time(activity["ends_at"]) + CHECK_WINDOW
        ):
            ctx.reject(
                "outside_activity",
                "The time is too far from the activity's own hours.",
                "活動の時間から離れすぎた時刻です。",
            )
