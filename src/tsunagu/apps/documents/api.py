"""Document attestation API."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.apps.documents.contract import CATEGORIES, REGISTRAR_ROLES, Category
from tsunagu.apps.documents.signer import member_indexes
from tsunagu.errors import NotFound, Unavailable
from tsunagu.identity.private import User
from tsunagu.ledger import merkle
from tsunagu.ledger.keys import key_id
from tsunagu.web.deps import require_roles, services
from tsunagu.web.writes import submit_as

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="lowercase hex SHA-256")]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: Sha256
    title: Annotated[str, Field(min_length=1, max_length=200)]
    category: Category


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class SupersedeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_sha256: Sha256
    title: Annotated[str, Field(min_length=1, max_length=200)]
    category: Category
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Committed(BaseModel):
    tx_id: str
    height: int
    index: int
    sha256: str


registrar = require_roles(*REGISTRAR_ROLES)


async def submit(request: Request, user: User, type_: str, payload: dict) -> Committed:
    receipt = await submit_as(request, user, "documents", type_, payload)
    sha = payload.get("new_sha256") or payload["sha256"]
    return Committed(tx_id=receipt.tx_id, height=receipt.height, index=receipt.index, sha256=sha)


def document_record(request: Request, sha256: str) -> dict[str, Any] | None:
    return services(request).node.store.state().get("documents.doc", sha256)


def proof_bundle(request: Request, doc: dict[str, Any]) -> dict[str, Any]:
    """Everything a browser needs to check the registration itself: the leaf, its audit
    path, the signed tree head the path leads to, the block that holds the leaf (its
    proposer-signed header, every result of the block, and the leaf's audit path to the
    header's own tree root), which proves the contract accepted the transaction, and the
    signer's member record (the identity transactions that registered the signing key for its
    organisation and roles, each proven the same way; see :mod:`.signer`)."""
    node = services(request).node
    sth = node.signed_tree_head()
    get = node.store.node_reader()
    size = sth["tree_size"]
    proven = _proven_tx(node, doc["log_index"], size, get)
    signer = json.loads(base64.b64decode(proven["leaf"]))["signer"]
    records = [
        _proven_tx(node, index, size, get)
        for index in member_indexes(node.store, signer, doc["log_index"])
    ]
    entry = node.store.state().get("identity.member", signer) or {}
    return {
        "leaf": proven["leaf"],
        "index": doc["log_index"],
        "tree_size": size,
        "leaf_hash": merkle.leaf_hash(base64.b64decode(proven["leaf"])).hex(),
        "audit_path": proven["audit_path"],
        "sth": sth,
        "node_public_key": node.key.public_key.hex(),
        "block": proven["block"],
        "member": {
            "key_id": signer,
            "org": doc["org"],
            "roles": _roles_at(records, signer, entry),
            "records": records,
        },
    }


def _roles_at(records: list[dict[str, Any]], signer: str, entry: dict[str, Any]) -> list[str]:
    """The signer's roles as its last record before the document set them."""
    roles = list(entry.get("roles", []))
    for record in records:
        tx = json.loads(base64.b64decode(record["leaf"]))
        payload = tx["payload"]
        if tx["type"] == "member.roles" or tx["type"] == "member.add":
            roles = list(payload["roles"])
        elif tx["type"] == "node.add":
            roles = ["node"]
        elif tx["type"] == "device.add":
            roles = ["device"]
        elif tx["type"] == "genesis":
            for member in payload["members"]:
                if key_id(bytes.fromhex(member["public_key"])) == signer:
                    roles = list(member["roles"])
    return roles


def _proven_tx(node: Any, index: int, tree_size: int, get: Any) -> dict[str, Any]:
    """Transaction ``index`` with its audit path in the tree of ``tree_size`` entries and its
    block: header, proposer's signature, every result, and its audit path to the header's
    own tree root."""
    stored = node.store.tx_at(index)
    block = None if stored is None else node.store.block(stored.height)
    if stored is None or block is None:  # the state points at what this copy lacks
        raise Unavailable(
            "This node's copy is incomplete; try another node.",
            "このノードの台帳は不完全です。別のノードでお試しください。",
        )
    header = block.header
    return {
        "leaf": base64.b64encode(stored.tx.leaf).decode(),
        "index": index,
        "audit_path": [h.hex() for h in merkle.inclusion_proof(index, tree_size, get)],
        "block": {
            "header": header.to_json(),
            "signature": block.signature,
            "results": [r.to_json() for r in block.results],
            "audit_path": [h.hex() for h in merkle.inclusion_proof(index, header.tree_size, get)],
        },
    }


def public_view(request: Request, doc: dict[str, Any]) -> dict[str, Any]:
    org = services(request).node.store.state().get("identity.org", doc["org"]) or {}
    return {
        **{k: v for k, v in doc.items() if k != "registered_by"},
        "org_name_ja": org.get("name_ja"),
        "org_name_en": org.get("name_en"),
    }


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1/documents", tags=["documents"])

    @r.post("", status_code=201, response_model=Committed)
    async def register(
        request: Request, body: RegisterIn, user: Annotated[User, Depends(registrar)]
    ) -> Committed:
        """Register a document by its SHA-256 (municipality staff or admin). Answers 201
        once the registration is committed in a durable block."""
        return await submit(request, user, "register", body.model_dump())

    @r.post("/file", status_code=201, response_model=Committed)
    async def register_file(
        request: Request,
        user: Annotated[User, Depends(registrar)],
        file: Annotated[UploadFile, File()],
        title: Annotated[str, Form(min_length=1, max_length=200)],
        category: Annotated[Category, Form()],
    ) -> Committed:
        """Register an uploaded file: only its SHA-256 is kept, never the file."""
        digest = hashlib.sha256()
        while chunk := await file.read(1 << 20):
            digest.update(chunk)
        payload = {"sha256": digest.hexdigest(), "title": title, "category": category}
        return await submit(request, user, "register", payload)

    @r.get("")
    def list_documents(
        request: Request,
        org: Annotated[str | None, Query(max_length=64)] = None,
        category: Category | None = None,
        status: Annotated[str | None, Query(pattern="^(active|withdrawn|superseded)$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """Registered documents, newest first (public)."""
        docs = [v for _, v in services(request).node.store.state().scan("documents.doc")]
        docs = [
            d
            for d in docs
            if (org is None or d["org"] == org)
            and (category is None or d["category"] == category)
            and (status is None or d["status"] == status)
        ]
        docs.sort(key=lambda d: d["log_index"], reverse=True)
        return {
            "documents": [public_view(request, d) for d in docs[:limit]],
            "categories": list(CATEGORIES),
        }

    @r.get("/{sha256}")
    def get_document(request: Request, sha256: Sha256) -> dict[str, Any]:
        """A document's record, history and an inclusion proof of its registration
        against the node's current signed tree head (public)."""
        doc = document_record(request, sha256)
        if doc is None:
            raise NotFound(
                "No document with this SHA-256 is registered.",
                "このSHA-256の文書は登録されていません。",
                sha256=sha256,
            )
        return {"document": public_view(request, doc), "proof": proof_bundle(request, doc)}

    @r.post("/{sha256}/withdraw", response_model=Committed)
    async def withdraw(
        request: Request,
        sha256: Sha256,
        body: WithdrawIn,
        user: Annotated[User, Depends(registrar)],
    ) -> Committed:
        """Withdraw a document; its history is kept."""
        return await submit(request, user, "withdraw", {"sha256": sha256, **body.model_dump()})

    @r.post("/{sha256}/supersede", status_code=201, response_model=Committed)
    async def supersede(
        request: Request,
        sha256: Sha256,
        body: SupersedeIn,
        user: Annotated[User, Depends(registrar)],
    ) -> Committed:
        """Replace a document with a new version; both keep their history."""
        return await submit(request, user, "supersede", {"sha256": sha256, **body.model_dump()})

    return r
