"""The platform API: auth, status, blocks, transactions and the RFC 6962-shaped log API."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.errors import InvalidInput, NotFound, Rejected
from tsunagu.identity.private import User
from tsunagu.ledger import merkle
from tsunagu.ledger.keys import key_id
from tsunagu.ledger.tx import decode_tx
from tsunagu.web.deps import committed, current_user, require_roles, services
from tsunagu.web.writes import Refusals, submit_as

MAX_ENTRIES = 1000


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    username: str
    display_name: str
    org: str
    roles: list[str]
    key_id: str


class ReceiptOut(BaseModel):
    tx_id: str
    height: int
    index: int
    status: str


class MemberIn(BaseModel):
    """A client's public key to register (``identity/member.add``, docs/protocol.md 8.1)."""

    model_config = ConfigDict(extra="forbid")
    public_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    org: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    roles: Annotated[list[str], Field(min_length=1, max_length=8)]


MEMBER_REFUSALS = Refusals(
    forbidden={"forbidden_role"}, unknown={"unknown_org"}, bad_input={"invalid_payload"}
)


class SignedTx(BaseModel):
    """A client-signed transaction envelope (see docs/protocol.md)."""

    model_config = ConfigDict(extra="allow")


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.post("/auth/token", response_model=Token, tags=["auth"])
    def token(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
    ) -> Token:
        """OAuth2 password flow: exchange a username and password for a bearer token."""
        private = services(request).private
        user = private.authenticate(username, password)
        from tsunagu.identity.private import SESSION_SECONDS

        return Token(access_token=private.issue_token(user), expires_in=SESSION_SECONDS)

    @r.get("/me", response_model=Me, tags=["auth"])
    def me(user: Annotated[User, Depends(current_user)]) -> Me:
        return Me(
            username=user.username,
            display_name=user.display_name,
            org=user.org,
            roles=list(user.roles),
            key_id=user.key_id,
        )

    @r.get("/status", tags=["ledger"])
    async def status(request: Request) -> dict[str, Any]:
        """This node's head: height, head hash, log size and root, state hash."""
        # async: it reads only the node's head in memory, so it needs no worker thread.
        return services(request).node.status()

    @r.get("/blocks", tags=["ledger"])
    def blocks(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        before: Annotated[int | None, Query(ge=0)] = None,
    ) -> dict[str, Any]:
        """Block headers, newest first."""
        headers = services(request).node.store.blocks_desc(limit, before)
        return {"blocks": [{**h.to_json(), "hash": h.hash} for h in headers]}

    @r.get("/blocks/{height}", tags=["ledger"])
    def block(request: Request, height: int) -> dict[str, Any]:
        """A whole block: header, hash, proposer signature, transactions and results."""
        found = services(request).node.store.block(height)
        if found is None:
            raise NotFound(
                f"No block at height {height}.", f"高さ {height} のブロックはありません。"
            )
        return found.to_json()

    @r.get("/tx/{tx_id}", tags=["ledger"])
    def tx(request: Request, tx_id: str) -> dict[str, Any]:
        """A transaction with its block height, log index and result."""
        stored = services(request).node.store.tx(tx_id.lower())
        if stored is None:
            raise NotFound("No such transaction.", "その取引は見つかりません。")
        return {
            "tx_id": stored.tx.id,
            "tx": stored.tx.to_json(),
            "height": stored.height,
            "index": stored.log_index,
            "result": stored.result.to_json(),
            "leaf_hash": merkle.leaf_hash(stored.tx.leaf).hex(),
        }

    @r.post("/tx", status_code=201, response_model=ReceiptOut, tags=["ledger"])
    async def submit(request: Request, envelope: Annotated[dict[str, Any], Body()]) -> Response:
        """Submit a transaction signed by the client. Answers 201 once its block is durable;
        a transaction the contract refuses is answered with a problem carrying its tx id."""
        tx = decode_tx(envelope)
        # The admission checks (signature included) run on the node's admission thread, so
        # this event loop goes on serving other requests meanwhile; refusals arrive through
        # the future as the same errors.
        receipt = await committed(services(request).node.submit_queued(tx))
        # The same bytes FastAPI would make from ReceiptOut (compact JSON, fields in order),
        # without validating our own four fields again on every write.
        body = {
            "tx_id": receipt.tx_id,
            "height": receipt.height,
            "index": receipt.index,
            "status": receipt.status,
        }
        return Response(_compact(body), status_code=201, media_type="application/json")

    @r.get("/log/sth", tags=["log"])
    def sth(request: Request) -> dict[str, Any]:
        """The signed tree head (see docs/protocol.md for the signed bytes)."""
        return services(request).node.signed_tree_head()

    @r.get("/log/entries", tags=["log"])
    def entries(
        request: Request,
        start: Annotated[int, Query(ge=0)],
        end: Annotated[int, Query(ge=0)],
    ) -> dict[str, Any]:
        """Leaves ``start`` to ``end`` inclusive; a response may hold fewer."""
        node = services(request).node
        size = node.head.tree_size if node.head else 0
        if end < start:
            raise InvalidInput("end must not be below start.", "end は start 以上にしてください。")
        if start >= size:
            raise InvalidInput(
                f"start must be below the tree size {size}.",
                f"start はツリーサイズ {size} 未満にしてください。",
            )
        end = min(end, size - 1, start + MAX_ENTRIES - 1)
        rows = node.store.leaves(start, end)
        return {
            "entries": [
                {"index": index, "leaf": base64.b64encode(bytes(leaf)).decode()}
                for index, leaf in rows
            ]
        }

    @r.get("/log/proof/inclusion", tags=["log"])
    def inclusion(
        request: Request,
        index: Annotated[int, Query(ge=0)],
        tree_size: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        """The audit path of leaf ``index`` in the tree of ``tree_size`` leaves."""
        node = services(request).node
        size = node.head.tree_size if node.head else 0
        if tree_size > size:
            raise InvalidInput(
                f"tree_size must be at most the current size {size}.",
                f"tree_size は現在のサイズ {size} 以下にしてください。",
            )
        if index >= tree_size:
            raise InvalidInput(
                "index must be below tree_size.", "index は tree_size 未満にしてください。"
            )
        get = node.store.node_reader()
        return {
            "index": index,
            "tree_size": tree_size,
            "leaf_hash": get(0, index).hex(),
            "audit_path": [h.hex() for h in merkle.inclusion_proof(index, tree_size, get)],
            "root_hash": merkle.root_at(tree_size, get).hex(),
        }

    @r.get("/log/proof/consistency", tags=["log"])
    def consistency(
        request: Request,
        first: Annotated[int, Query(ge=1)],
        second: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``."""
        node = services(request).node
        size = node.head.tree_size if node.head else 0
        if not first <= second <= size:
            raise InvalidInput(
                f"Need 1 <= first <= second <= {size}.",
                f"1 ≦ first ≦ second ≦ {size} にしてください。",
            )
        get = node.store.node_reader()
        return {
            "first": first,
            "second": second,
            "proof": [h.hex() for h in merkle.consistency_proof(first, second, get)],
        }

    @r.get("/identity/orgs", tags=["identity"])
    def orgs(request: Request) -> dict[str, Any]:
        """The consortium's organisations (public)."""
        state = services(request).node.store.state()
        return {"orgs": [value for _, value in state.scan("identity.org")]}

    @r.post("/identity/members", status_code=201, tags=["identity"])
    async def add_member(
        request: Request,
        body: MemberIn,
        user: Annotated[User, Depends(require_roles("admin"))],
    ) -> dict[str, Any]:
        """Register a public key whose private key a client keeps, so that it can sign its
        own transactions (``POST /api/v1/tx``): an ``identity/member.add`` signed by the
        consortium admin (``admin`` only). Answers the receipt and the new member's
        ``key_id`` (SHA-256 of the public key's 32 bytes)."""
        payload = body.model_dump()
        try:
            receipt = await submit_as(request, user, "identity", "member.add", payload)
        except Rejected as exc:
            exc.status = MEMBER_REFUSALS.status(exc.code)
            raise
        return {
            "tx_id": receipt.tx_id,
            "height": receipt.height,
            "index": receipt.index,
            "status": receipt.status,
            "key_id": key_id(bytes.fromhex(body.public_key)),
        }

    @r.get("/identity/nodes", tags=["identity"])
    def nodes(request: Request) -> JSONResponse:
        """The consortium's nodes and their public keys (public)."""
        state = services(request).node.store.state()
        return JSONResponse({"nodes": [value for _, value in state.scan("identity.node")]})

    return r
