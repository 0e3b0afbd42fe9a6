"""Community transaction payloads and the pure helpers the rules share (times, ids, free text).

Times on the chain are UTC to the second (``2026-11-29T01:00:00Z``); minutes are integers.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from tsunagu.contracts import Payload

ORGANISER_ROLES = ("organiser",)
RESIDENT_ROLES = ("resident",)
DAY_MINUTES = 24 * 60
CLOCK_SKEW = timedelta(minutes=5)
CHECK_WINDOW = timedelta(hours=12)  # check-in/out this long before the start or after the end
JST = timedelta(hours=9)
_MINUTE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _real_time(value: str) -> str:
    parse_time(value)
    return value


Time = Annotated[str, Field(pattern=_MINUTE.pattern), AfterValidator(_real_time)]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Vid = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, Field(min_length=1, max_length=80)]
Reason = Annotated[str, Field(min_length=1, max_length=200)]
Visibility = Literal["public", "municipality", "helped", "private"]

_WIDE = str.maketrans("０１２３４５６７８９－−‐‑–—―ーｰ（）＋　", "0123456789---------()+ ")
_PHONE = re.compile(r"\+?\d[\d ()\-]{8,}\d", re.ASCII)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+", re.ASCII)


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def minutes_between(start: str, end: str) -> int:
    delta = parse_time(end) - parse_time(start)
    return delta.days * DAY_MINUTES + delta.seconds // 60


def jst_day(value: str) -> str:
    return (parse_time(value) + JST).date().isoformat()


def looks_personal(text: str) -> bool:
    """Whether free text holds something like a phone number or an e-mail address."""
    plain = text.translate(_WIDE)
    if _EMAIL.search(plain):
        return True
    return any(sum(c.isdigit() for c in m) >= 10 for m in _PHONE.findall(plain))


def municipality_of(org: dict[str, Any] | None) -> str | None:
    if org is None:
        return None
    if org.get("municipality"):
        return org["municipality"]
    return org["id"] if org.get("type") == "municipality" else None


def activity_id(tx_id: str) -> str:
    return f"a-{tx_id[:16]}"


def help_id(tx_id: str) -> str:
    return f"h-{tx_id[:16]}"


class ActivityPublish(Payload):
    category: Id
    title: Text
    municipality: Id
    place: Text
    starts_at: Time
    ends_at: Time
    capacity: Annotated[int, Field(ge=1, le=1000)]


class ActivitySignup(Payload):
    activity: Id


class Check(Payload):
    activity: Id
    at: Time
    volunteer: Vid | None = None  # an organiser recording for a volunteer (scanned their QR)


class CredentialRef(Payload):
    hash: Hash


class SessionAttest(Payload):
    activity: Id
    volunteer: Vid
    credential: CredentialRef | None = None


class SessionCorrect(Payload):
    activity: Id
    volunteer: Vid
    check_in: Time
    check_out: Time
    reason: Reason


class MilestoneIssue(Payload):
    hash: Hash
    recipient: Vid
    minutes: Annotated[int, Field(ge=1)]


class CredentialRevoke(Payload):
    hash: Hash
    reason: Reason


class SkillSet(Payload):
    skill: Id
    visibility: Visibility


class SkillRemove(Payload):
    skill: Id


class HelpRequest(Payload):
    skill: Id
    helper: Vid | None = None  # a helper named on the chain
    # An invitation kept off the chain: SHA-256(salt ‖ invitee's key id), both as bytes; the
    # asking node keeps the salt and the invitee's acceptance reveals it (see invite_commitment).
    invite: Hash | None = None


class HelpRef(Payload):
    help: Id


class HelpAccept(Payload):
    help: Id
    salt: Hash | None = None  # opens the request's ``invite`` commitment for the acceptor


def invite_commitment(salt: str, vid: str) -> str:
    """The commitment an invited help request carries: hex SHA-256 of the 32 salt bytes
    followed by the 32 bytes of the invitee's key id. The random salt hides whom it invites
    (no one can try every resident's key id against it); it binds the acceptance to that key
    id, so a revealed salt is of no use to anyone else."""
    return hashlib.sha256(bytes.fromhex(salt) + bytes.fromhex(vid)).hexdigest()


class VolunteerErase(Payload):
    pass
