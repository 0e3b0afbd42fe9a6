"""Issuing credentials for attested participation and milestones, and verifying them.

Issuing happens on the node (the organiser's custodial key signs); the credential is kept in
the resident's encrypted store and only its hash goes on the chain, in the same transaction as
the attestation. Verification answers four questions and says which one failed:

1. ``signature``  the eddsa-jcs-2022 proof verifies with the issuer's did:key;
2. ``issuer``     that key was a consortium organiser's on the date of issue;
3. ``ledger``     the credential's hash was anchored, with an RFC 9162 inclusion proof
                  checked against the node's current tree head;
4. ``revocation`` the issuing group has not revoked it.

A credential that cannot be read at all (not JSON-LD shaped, no usable proof) is ``malformed``:
its signature check fails with "could not be read", and the other three checks are marked
``ran: false`` (not run) and are not listed in ``failed``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from tsunagu.apps.community import catalog
from tsunagu.apps.community.contract import format_time
from tsunagu.apps.community.credentials import (
    CredentialError,
    check_signature,
    credential_hash,
    open_badge,
    sign,
    signer_key,
)
from tsunagu.apps.community.service import CommunityStore
from tsunagu.ledger import merkle
from tsunagu.ledger.keys import SigningKey, key_id
from tsunagu.node.node import Node


def now_time() -> str:
    return format_time(datetime.now(UTC))


def _org_name(node: Node, org: str) -> str:
    record = node.store.state().get("identity.org", org) or {}
    return record.get("name_ja", org)


def participation(
    node: Node,
    store: CommunityStore,
    key: SigningKey,
    org: str,
    activity: dict[str, Any],
    session: dict[str, Any],
    when: str | None = None,
) -> dict[str, Any]:
    """A signed credential for one attested session (not yet anchored)."""
    term = catalog.CATEGORIES[activity["category"]]
    when = when or now_time()
    hours, minutes = divmod(session["minutes"], 60)
    badge = open_badge(
        credential_id=f"urn:uuid:{uuid.uuid4()}",
        issuer_key=key.public_key,
        issuer_name=_org_name(node, org),
        recipient=session["volunteer"],
        salt=store.salt(session["volunteer"]),
        valid_from=when,
        achievement_id=f"urn:tsunagu:community:activity:{activity['id']}",
        name=f"{term.name_ja}: {activity['title']}",
        description=(
            f"{activity['title']}（{term.name_ja}）に{hours}時間{minutes}分参加しました。"
            f" Took part in {term.name_en} for {hours} h {minutes} min."
        ),
        criteria="主催団体が参加と活動時間を確認しました。The organiser attested the hours.",
        activity_start=session["check_in"],
        activity_end=session["check_out"],
    )
    return sign(badge, key, when)


def milestone(
    node: Node, store: CommunityStore, key: SigningKey, org: str, vid: str, minutes: int
) -> dict[str, Any]:
    when = now_time()
    hours = minutes // 60
    badge = open_badge(
        credential_id=f"urn:uuid:{uuid.uuid4()}",
        issuer_key=key.public_key,
        issuer_name=_org_name(node, org),
        recipient=vid,
        salt=store.salt(vid),
        valid_from=when,
        achievement_id=f"urn:tsunagu:community:milestone:{minutes}",
        name=f"地域貢献 {hours}時間",
        description=f"確認済みの地域活動が{hours}時間に達しました。 {hours} attested hours.",
        criteria="主催団体が確認した活動時間の合計。The sum of attested hours.",
    )
    return sign(badge, key, when)


def milestones_due(record: dict[str, Any], issued: set[int]) -> list[int]:
    return [m for m in catalog.MILESTONES if record["minutes"] >= m and m not in issued]


# -- verification -------------------------------------------------------------------------

MESSAGES = {
    "signature": {
        True: ("The signature is valid.", "署名は有効です。"),
        False: (
            "The signature does not match: the credential was changed or signed by another key.",
            "署名が一致しません。内容が改ざんされたか、別の鍵で署名されています。",
        ),
    },
    "issuer": {
        True: (
            "The issuer was a consortium organiser on the date of issue.",
            "発行者は発行日に協議会の活動主催者でした。",
        ),
        False: (
            "The issuer was not a consortium organiser on the date of issue.",
            "発行者は発行日に協議会の活動主催者ではありませんでした。",
        ),
    },
    "ledger": {
        True: (
            "The credential is recorded on the ledger (inclusion proof checked).",
            "証明書は台帳に記録されています（包含証明を確認）。",
        ),
        False: ("The credential is not on the ledger.", "証明書は台帳に記録されていません。"),
    },
    "revocation": {
        True: ("The credential has not been revoked.", "証明書は取り消されていません。"),
        False: ("The credential has been revoked.", "証明書は取り消されています。"),
    },
}


# Why the rules revoked a credential themselves (its ``cause`` on the chain).
CAUSES = {
    "corrected": (
        "The credential has been revoked: the times of its session were corrected.",
        "証明書は取り消されています。活動の時刻が訂正されたためです。",
    ),
    "below_milestone": (
        "The credential has been revoked: a correction lowered the attested hours below"
        " this milestone ({hours} h).",
        "証明書は取り消されています。訂正により確認済みの活動時間がこの節目（{hours}時間）を"
        "下回ったためです。",
    ),
}


def revocation_reason(anchored: dict[str, Any]) -> tuple[str, str] | None:
    """The revocation check's message for a credential the rules revoked, in both languages."""
    found = CAUSES.get(anchored.get("cause") or "")
    if found is None:
        return None
    subject = str(anchored.get("subject", ""))
    hours = int(subject) // 60 if subject.isdigit() else 0
    return found[0].format(hours=hours), found[1].format(hours=hours)


UNREADABLE = (
    "The credential could not be read: it is not a signed Open Badges 3.0 credential.",
    "証明書を読み取れませんでした。署名付きの Open Badges 3.0 証明書ではありません。",
)
NOT_RUN = (
    "Not checked: the credential could not be read.",
    "証明書を読み取れなかったため、確認していません。",
)


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def _was_organiser(member: dict[str, Any] | None, org: str | None, at: datetime | None) -> bool:
    if member is None or at is None or "organiser" not in member.get("roles", ()):
        return False
    since = _parse(member.get("since", "")) if member.get("since") else None
    # validFrom has whole seconds while chain times have milliseconds: an organiser added at
    # 10:00:05.300 signed a credential stamped 10:00:05 in that same second.
    if since is not None and since.replace(microsecond=0) > at:
        return False
    revoked = member.get("revoked_at")
    if revoked and (_parse(revoked) or at) <= at:
        return False
    return org is None or member.get("org") == org


def verify(node: Node, credential: Any) -> dict[str, Any]:
    """Every check's outcome, for the API and the public page. Never raises for bad input."""
    results: dict[str, bool] = {}
    try:
        results["signature"] = check_signature(credential)
        public = signer_key(credential)
    except (CredentialError, TypeError, AttributeError, KeyError):
        return _report({"signature": False}, None, None, malformed=True)
    digest = credential_hash(credential)
    state = node.store.state()
    anchored = state.get("community.credential", digest)
    kid = key_id(public)
    member = state.get("identity.member", kid)
    issued = _parse(anchored["issued_at"]) if anchored else _parse(credential.get("validFrom"))
    results["issuer"] = _was_organiser(member, anchored["org"] if anchored else None, issued)
    proof = None
    if anchored is not None and anchored["issuer"] == kid:
        proof = _inclusion(node, anchored["tx_id"])
    results["ledger"] = proof is not None
    # Only a revocation recorded on the chain fails this check; an unknown credential fails
    # the ledger check instead.
    results["revocation"] = not (anchored is not None and anchored["revoked"])
    return _report(results, digest, proof, anchored=anchored)


def _inclusion(node: Node, tx_id: str) -> dict[str, Any] | None:
    stored = node.store.tx(tx_id)
    head = node.head
    if stored is None or head is None or stored.result.status != "committed":
        return None
    get = node.store.node_reader()
    size = head.tree_size
    leaf = merkle.leaf_hash(stored.tx.leaf)
    path = merkle.inclusion_proof(stored.log_index, size, get)
    root = merkle.root_at(size, get)
    try:
        merkle.verify_inclusion(leaf, stored.log_index, size, path, root)
    except merkle.ProofError:
        return None
    return {
        "tx_id": tx_id,
        "height": stored.height,
        "index": stored.log_index,
        "tree_size": size,
        "leaf_hash": leaf.hex(),
        "audit_path": [h.hex() for h in path],
        "root_hash": root.hex(),
    }


def _report(
    results: dict[str, bool],
    digest: str | None,
    proof: dict[str, Any] | None,
    anchored: dict[str, Any] | None = None,
    malformed: bool = False,
) -> dict[str, Any]:
    checks = []
    for name in MESSAGES:
        if name not in results:  # could not run: the credential was unreadable
            en, ja = NOT_RUN
            checks.append(
                {"check": name, "ok": False, "ran": False, "detail_en": en, "detail_ja": ja}
            )
            continue
        en, ja = UNREADABLE if malformed else MESSAGES[name][results[name]]
        if name == "revocation" and not results[name] and anchored is not None:
            en, ja = revocation_reason(anchored) or (en, ja)
        checks.append(
            {"check": name, "ok": results[name], "ran": True, "detail_en": en, "detail_ja": ja}
        )
    return {
        "valid": not malformed and all(results.values()),
        "failed": [name for name, ok in results.items() if not ok],
        "not_run": [name for name in MESSAGES if name not in results],
        "checks": checks,
        "hash": digest,
        "inclusion_proof": proof,
        "issued_at": anchored["issued_at"] if anchored else None,
        "revoked_at": anchored.get("revoked_at") if anchored else None,
        "revoked_reason": anchored.get("reason") if anchored else None,
        "malformed": malformed,
    }
