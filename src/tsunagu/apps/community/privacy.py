"""Who may see what of another resident: a stored credential (its owner, the issuing group's
organisers, or a share link's holder); a help request that invites a neighbour found by
handle without putting their key id on the chain, which only they can accept; a resident's
export and erasure. See docs/community.md, "Who sees whom".
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request

from tsunagu.apps.community import views
from tsunagu.apps.community.contract import ORGANISER_ROLES
from tsunagu.apps.community.payloads import invite_commitment
from tsunagu.apps.community.service import CommunityStore
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
    the request carries only the commitment SHA-256(salt ‖ their key id), and only this node
    knows whom it invites (and the salt, kept in the requester's encrypted store), so asking
    does not show the asker the neighbour's key id (it appears once they accept), and only
    that neighbour can accept: this node hands them the salt when they do. A client that
    already knows a key id may name it on the chain (``named``)."""
    payload: dict[str, Any] = {"skill": skill}
    if named:
        payload["helper"] = named
    salt = None
    if invite:
        try:  # the contract's rules (not yourself, a known skill) for the invited neighbour
            precheck(request, user, "help.request", {**payload, "helper": invite})
        except Rejected as exc:
            raise http_error(exc) from None
        salt = secrets.token_hex(32)
        payload["invite"] = invite_commitment(salt, invite)
    (receipt,) = await submit(request, user, [("help.request", payload)])
    hid = f"h-{receipt.tx_id[:16]}"
    cs = store(request)
    if invite:
        cs.put(user.key_id, "help-invite", hid, {"vid": invite, "salt": salt})
    if note:
        cs.put(user.key_id, "help-note", hid, note)
    return {**_receipt(receipt), "help_id": hid}


def invitee(cs: CommunityStore, hid: str) -> tuple[str | None, str | None]:
    """Whom this node's resident invited to help request ``hid``, and the salt of its
    commitment; ``(None, None)`` when it is no invitation made here."""
    found = cs.by_ref("help-invite", hid)
    return _invitation(found[1] if found else None)


def _invitation(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, dict):
        return value.get("vid"), value.get("salt")
    return value, None  # an invitation stored before commitments: no salt


def help_payload(
    request: Request, user: User, hid: str, action: str, salt: str | None = None
) -> dict[str, Any]:
    """The payload of ``help.<action>``. Accepting a request this node's resident invited
    ``user`` to carries the salt that opens its commitment (the invitation handed over); a
    client may bring a salt it was given (``salt``). Anyone else gets no salt, and the
    contract refuses them (``not_invited``)."""
    payload: dict[str, Any] = {"help": hid}
    if action == "accept":
        vid, kept = invitee(store(request), hid)
        salt = kept if vid == user.key_id and kept else salt
        if salt:
            payload["salt"] = salt
    return payload


async def erase_resident(request: Request, user: User) -> dict[str, Any]:
    """Record the erasure on the chain, then shred the resident's key and private data."""
    (receipt,) = await submit(request, user, [("volunteer.erase", {})])
    store(request).erase(user.key_id)
    return {**_receipt(receipt), "erased": True}


def export_of(request: Request, user: User) -> dict[str, Any]:
    st = views.State(services(request).node)
    vid = user.key_id
    cs = store(request)
    private = cs.export(vid)
    if "help-invite" in private:  # whom one invited, by handle: not their key id, no salt
        private["help-invite"] = {
            hid: {"neighbour": cs.handle(_invitation(value)[0] or "")}
            for hid, value in private["help-invite"].items()
        }
    return {
        "volunteer_id": vid,
        "display_name": user.display_name,
        "username": user.username,
        "organisation": user.org,
        "private": private,
        "ledger": {
            "volunteer": st.volunteer(vid),
            "signups": [s for s in st.all("signup") if s["volunteer"] == vid],
            "sessions": views.sessions_of(st, vid),
            "skills": st.all("skill", f"{vid}/"),
            "help": [
                views.help_for(st, store(request), h, vid)
                for h in st.all("help")
                if vid in (h["requester"], h["helper"])
            ],
            "credentials": [c for c in st.all("credential") if c["recipient"] == vid],
        },
    }
