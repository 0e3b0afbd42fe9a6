"""Who may see what of another resident: a stored credential (its owner, the issuing group's
organisers, or a share link's holder) and a help request that invites a neighbour found by
handle without putting their key id on the chain. See docs/community.md, "Who sees whom".
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tsunagu.apps.community import views
from tsunagu.apps.community.contract import ORGANISER_ROLES
from tsunagu.apps.community.web import http_error, precheck, store, submit
from tsunagu.errors import Rejected
from tsunagu.identity.private import User
from tsunagu.web.deps import optional_user, services


def _receipt(r: Any) -> dict[str, Any]:
    return {"tx_id": r.tx_id, "height": r.height, "index": r.index, "status": r.status}


def readable_credential(request: Request, digest: str, k: str) -> dict[str, Any] | None:
    """The stored credential if this visitor may read it, else ``None`` (the caller answers
    404 either way, so nobody learns whether a hash is stored here)."""
    cs = store(request)
    found = cs.by_ref("credential", digest)
    if found is None or found[1] is None:
        return None
    if k and cs.share_valid(digest, k):
        return found[1]
    user = optional_user(request)
    if user is None:
        return None
    if user.key_id == found[0]:
        return found[1]
    anchored = views.State(services(request).node).get("credential", digest) or {}
    if user.has_role(*ORGANISER_ROLES) and user.org == anchored.get("org"):
        return found[1]
    return None


def share_url(request: Request, digest: str) -> str:
    """The credential's share link (the certificate's QR code): opens it for anyone."""
    base = services(request).base_url(str(request.base_url))
    return f"{base}/community/credentials/{digest}?k={store(request).share_token(digest)}"


async def ask_help(
    request: Request,
    user: User,
    skill: str,
    note: str | None,
    *,
    invite: str | None = None,
    named: str | None = None,
) -> dict[str, Any]:
    """Record a help request. A neighbour found by handle (``invite``) is asked off the chain:
    the request goes on the chain open, and only this node knows whom it invites, so asking
    does not show the asker the neighbour's key id (it appears once they accept). A client
    that already knows a key id may name it on the chain (``named``)."""
    payload: dict[str, Any] = {"skill": skill}
    if named:
        payload["helper"] = named
    if invite:
        try:  # the contract's rules (not yourself, a known skill) for the invited neighbour
            precheck(request, user, "help.request", {**payload, "helper": invite})
        except Rejected as exc:
            raise http_error(exc) from None
    (receipt,) = await submit(request, user, [("help.request", payload)])
    hid = f"h-{receipt.tx_id[:16]}"
    cs = store(request)
    if invite:
        cs.put(user.key_id, "help-invite", hid, invite)
    if note:
        cs.put(user.key_id, "help-note", hid, note)
    return {**_receipt(receipt), "help_id": hid}
