"""Document attestation (証明): a municipality records a document's SHA-256 so anyone can
later prove that a file is the one it published, when, and whether it still stands."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from tsunagu.contracts import Contract, Payload, TxContext

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Category = Literal[
    "notice",
    "budget",
    "plan",
    "minutes",
    "ordinance",
    "contract",
    "certificate",
    "disaster",
    "other",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
REGISTRAR_ROLES = ("staff",)


class Register(Payload):
    sha256: Sha256
    title: Title
    category: Category


class Withdraw(Payload):
    sha256: Sha256
    reason: Reason


class Supersede(Payload):
    sha256: Sha256
    new_sha256: Sha256
    title: Title
    category: Category
    reason: Reason


class DocumentsContract(Contract):
    app = "documents"
    types: ClassVar[dict[str, type[Payload]]] = {
        "register": Register,
        "withdraw": Withdraw,
        "supersede": Supersede,
    }

    def _may_register(self, ctx: TxContext) -> None:
        ctx.require_role(*REGISTRAR_ROLES)
        org = ctx.org(ctx.signer.org)
        if "admin" not in ctx.signer.roles and (org is None or org["type"] != "municipality"):
            ctx.reject(
                "not_municipality",
                "Only a municipality's staff may register documents.",
                "文書を登録できるのは自治体の職員だけです。",
            )

    def _new(self, ctx: TxContext, sha: str, title: str, category: str) -> dict:
        if ctx.get("doc", sha) is not None:
            ctx.reject(
                "already_registered",
                "A document with this SHA-256 is already registered.",
                "このSHA-256の文書は既に登録されています。",
            )
        return {
            "sha256": sha,
            "title": title,
            "category": category,
            "org": ctx.signer.org,
            "registered_by": ctx.signer.key_id,
            "registered_at": ctx.timestamp,
            "height": ctx.height,
            "tx_id": ctx.tx_id,
            "log_index": ctx.log_index,
            "status": "active",
            "superseded_by": None,
            "supersedes": None,
            "history": [self._event(ctx, "registered")],
        }

    @staticmethod
    def _event(ctx: TxContext, action: str, reason: str | None = None) -> dict:
        event = {"action": action, "tx_id": ctx.tx_id, "at": ctx.timestamp, "height": ctx.height}
        if reason is not None:
            event["reason"] = reason
        return event

    def _active_own(self, ctx: TxContext, sha: str) -> dict:
        doc = ctx.get("doc", sha)
        if doc is None:
            ctx.reject("unknown_document", "No such document.", "その文書は登録されていません。")
        if doc["status"] != "active":  # type: ignore[index]
            ctx.reject(
                "not_active",
                f"The document is already {doc['status']}.",  # type: ignore[index]
                "この文書は既に取り下げ済みか、差し替え済みです。",
            )
        if "admin" not in ctx.signer.roles and doc["org"] != ctx.signer.org:  # type: ignore[index]
            ctx.reject(
                "other_org",
                "Only the registering organisation may change this document.",
                "この文書を変更できるのは登録した組織だけです。",
            )
        return doc  # type: ignore[return-value]

    def prefetch(self, tx_type: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
        """Every type reads the documents its payload names."""
        names = (payload.get("sha256"), payload.get("new_sha256"))
        return [("documents.doc", name) for name in names if isinstance(name, str)]

    def on_register(self, ctx: TxContext, p: Register) -> None:
        self._may_register(ctx)
        ctx.put("doc", p.sha256, self._new(ctx, p.sha256, p.title, p.category))

    def on_withdraw(self, ctx: TxContext, p: Withdraw) -> None:
        self._may_register(ctx)
        doc = self._active_own(ctx, p.sha256)
        doc["status"] = "withdrawn"
        doc["history"].append(self._event(ctx, "withdrawn", p.reason))
        ctx.put("doc", p.sha256, doc)

    def on_supersede(self, ctx: TxContext, p: Supersede) -> None:
        self._may_register(ctx)
        if p.new_sha256 == p.sha256:
            ctx.reject(
                "same_document",
                "A document cannot supersede itself.",
                "同じ文書で差し替えることはできません。",
            )
        old = self._active_own(ctx, p.sha256)
        new = self._new(ctx, p.new_sha256, p.title, p.category)
        new["supersedes"] = p.sha256
        old["status"] = "superseded"
        old["superseded_by"] = p.new_sha256
        old["history"].append(self._event(ctx, "superseded", p.reason))
        ctx.put("doc", p.sha256, old)
        ctx.put("doc", p.new_sha256, new)
