"""Template filters: times are stored in UTC and shown in Asia/Tokyo."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import jinja2

TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo_time(value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An ISO 8601 UTC timestamp as Asia/Tokyo local time."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(TOKYO).strftime(fmt)


def short_hash(value: str | None, length: int = 12) -> str:
    return (value or "")[:length]


def register_filters(env: jinja2.Environment) -> None:
    env.filters["tokyo"] = tokyo_time
    env.filters["short"] = short_hash
