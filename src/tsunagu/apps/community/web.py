"""What every community route shares: the store, checking a write against the contract
before it is submitted, submitting, and turning a refusal into the right HTTP error.

:func:`precheck` runs the contract itself on the committed state, so obviously bad input is
answered at once and never reaches a block, and no rule is written twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tsunagu.apps.community.service import CommunityStore, store_for
from tsunagu.errors import Rejected, TsunaguError
from tsunagu.identity.private import User
from tsunagu.node.node import Receipt
from tsunagu.web import writes
from tsunagu.web.deps import committed, services

APP = "community"
REFUSALS = writes.Refusals(
    forbidden={"forbidden_role", "other_group", "not_party", "bad_token", "not_invited"},
    unknown={"unknown_activity", "unknown_session", "unknown_help", "unknown_credential"},
    bad_input={
        "invalid_payload",
        "unknown_category",
        "unknown_place",
        "bad_times",
        "personal_data",
        "time_future",
        "checkout_before_checkin",
        "over_24h",
        "outside_activity",
        "unknown_skill",
        "unknown_milestone",
        "self_help",
        "helper_and_invite",
        "overlapping",
        "not_checked_in",
        "too_short",
    },
)


def store(request: Request) -> CommunityStore:
    svc = services(request)
    return store_for(svc.node.data_dir, svc.private.web_secret)


def http_error(exc: Rejected) -> TsunaguError:
    status = REFUSALS.status(exc.code)
    return TsunaguError(exc.message_en, exc.message_ja, code=exc.code, status=status, **exc.extra)


def precheck(request: Request, user: User, tx_type: str, payload: dict[str, Any]) -> None:
    """Run the contract on committed state as if the transaction were next; raise its refusal."""
    writes.precheck(services(request).node, user.key_id, APP, tx_type, payload)


async def submit(
    request: Request, user: User, items: list[tuple[str, dict[str, Any]]]
) -> list[Receipt]:
    """Check the first write, then submit all (they share a block, in order) and wait."""
    svc = services(request)
    try:
        precheck(request, user, *items[0])
        key = svc.private.signing_key(user)
        pendings = [svc.node.submit_signed(key, APP, t, p) for t, p in items]
        return [await committed(p) for p in pendings]
    except Rejected as exc:
        raise http_error(exc) from None
