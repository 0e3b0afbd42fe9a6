"""Writes on behalf of a logged-in user (custodial keys): checked, submitted, awaited.

Every page and API route that writes for its user goes through :func:`submit_as`. It first
runs the application's own contract on the committed state, as if the transaction came
next (:func:`precheck`): input the contract refuses is answered at once with the contract's
reason and never reaches a block, so bad input changes nothing and no rule is written twice.
A transaction that passes can still be refused inside its block when another write changed
the state in between; that refusal is recorded there like any other.

Client-signed transactions (``POST /api/v1/tx``) are not prechecked: the client asked for
exactly that transaction to be ordered, and its refusal is recorded (docs/protocol.md).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from tsunagu.contracts import TxContext
from tsunagu.errors import Forbidden
from tsunagu.identity.private import User
from tsunagu.ledger.block import format_timestamp
from tsunagu.node.node import Node, Receipt
from tsunagu.web.deps import committed, services

PRECHECK_TX_ID = "0" * 64  # what a precheck's context calls the transaction


@dataclass(frozen=True)
class Refusals:
    """Which of an application's refusal codes answer with which HTTP status: 403 for who may
    not, 404 for what does not exist, 422 for input that can never be accepted, and 409 (the
    state does not allow it now) for every other code."""

    forbidden: Collection[str] = ()
    unknown: Collection[str] = ()
    bad_input: Collection[str] = ()

    def status(self, code: str) -> int:
        if code in self.forbidden:
            return 403
        if code in self.unknown:
            return 404
        if code in self.bad_input:
            return 422
        return 409


def precheck(node: Node, key_id: str, app: str, tx_type: str, payload: dict[str, Any]) -> None:
    """Run ``app``'s contract on committed state as if this transaction were next; raise its
    refusal (:class:`~tsunagu.errors.Rejected`). Nothing is written."""
    member = node.member(key_id)
    if member is None or not member.active:
        raise Forbidden()
    contract = node.executor.contracts[app]
    parsed = contract.parse(tx_type, payload)
    head = node.head
    ctx = TxContext(
        app=app,
        tx_id=PRECHECK_TX_ID,
        tx_type=tx_type,
        signer=member,
        height=(head.height if head else 0) + 1,
        timestamp=format_timestamp(datetime.now(UTC)),
        log_index=head.tree_size if head else 0,
        _state=node.store.state(),
    )
    contract.apply(ctx, parsed)


async def submit_as(
    request: Request, user: User, app: str, tx_type: str, payload: dict[str, Any]
) -> Receipt:
    """Precheck, sign with ``user``'s custodial key, submit, and wait until the block is
    durable; raises the contract's refusal either way."""
    svc = services(request)
    precheck(svc.node, user.key_id, app, tx_type, payload)
    key = svc.private.signing_key(user)
    return await committed(svc.node.submit_signed(key, app, tx_type, payload))
