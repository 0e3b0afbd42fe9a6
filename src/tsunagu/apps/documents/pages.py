"""Document pages: the public list, detail and in-browser verifier, and the staff forms.

Files are hashed in the browser (``static/sha256.js``); only the SHA-256 is ever posted.
The forms submit through :func:`tsunagu.apps.documents.api.submit`, so a page answers only
once the transaction is committed, and a contract's refusal is shown in the user's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from tsunagu.apps.documents.api import (
    Committed,
    RegisterIn,
    SupersedeIn,
    WithdrawIn,
    document_record,
    submit,
)
from tsunagu.apps.documents.contract import CATEGORIES, REGISTRAR_ROLES
from tsunagu.errors import TsunaguError
from tsunagu.identity.contract import Role
from tsunagu.identity.private import User
from tsunagu.web.deps import check_csrf, language, optional_user, render, services

STATUSES = ("active", "withdrawn", "superseded")
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
PAGE_SIZE = 50
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
FIELD_ERRORS = {
    "sha256": "Enter the SHA-256 as 64 hexadecimal characters (0-9, a-f), or choose a file.",
    "new_sha256": "Enter the SHA-256 as 64 hexadecimal characters (0-9, a-f), or choose a file.",
    "title": "Enter a title of 1 to 200 characters.",
    "category": "Choose a category.",
    "reason": "Enter a reason of 1 to 500 characters.",
}
# The verify page's script reads its words from the page, so they stay in messages.po.
VERIFY_MESSAGES = {
    "hashing": "Computing the file's SHA-256 in this browser…",
    "looking_up": "Looking up the ledger…",
    "registered": "Registered",
    "not_registered": "Not registered",
    "not_registered_help": (
        "No document with this SHA-256 is registered. If the file was registered, it has been "
        "changed since: even a one-byte change gives a different SHA-256."
    ),
    "lookup_failed": "The ledger could not be reached. Try again.",
    "read_failed": "The file could not be read. Choose it again.",
    "file_hash": "SHA-256 of your file",
    "given_hash": "SHA-256 you entered",
    "file": "File",
    "title": "Title",
    "organisation": "Registered by",
    "category": "Category",
    "registered_at": "Registered at",
    "status": "Status",
    "details": "Record on the ledger",
    "newer": "Newer version",
    "older": "Replaces",
    "withdrawn_reason": "Reason for withdrawal",
    "withdrawn_note": "This document was withdrawn on {date}. It no longer stands.",
    "superseded_note": "This document was replaced by a newer version on {date}.",
    "see_newer": "See the newer version",
    "checks": "Proof checked in this browser",
    "all_ok": "Every check passed: this exact file was registered on the ledger by {org}.",
    "some_failed": "A check failed: the proof does not hold. Do not rely on this result.",
    "checking": "Checking the proof…",
    "ok": "OK:",
    "failed": "Failed:",
    "check_leaf_ok": "The leaf hash, SHA-256(0x00 ‖ transaction), matches ({leaf}).",
    "check_leaf_bad": "The leaf hash does not match the transaction bytes.",
    "check_tx_ok": "The transaction ({type}) records exactly this SHA-256, title and category.",
    "check_tx_bad": (
        "The transaction does not register this SHA-256 with the title and category shown."
    ),
    "check_root_ok": (
        "The audit path from entry {index} leads to the tree root {root} of {size} entries."
    ),
    "check_root_bad": "The audit path does not lead to the signed tree root.",
    "check_sig_ok": "The tree head is signed by node {node} (Ed25519), signed at {time}.",
    "check_sig_bad": "The tree head's signature does not verify.",
    "check_node_ok": "The signing key is a registered key of the consortium node {node}.",
    "check_node_bad": "The signing key is not a registered consortium node key.",
    "check_block_ok": (
        "Block {height}, signed by node {node}, records this transaction as committed:"
        " the contract accepted it."
    ),
    "check_block_bad": "The block does not show that the contract accepted this transaction.",
    "check_member_ok": (
        "The signing key was registered for {org} ({slug}) with the role {roles}: the"
        " registration is entry {index} of the signed tree, accepted in block {height}."
    ),
    "check_member_bad": (
        "The signing key's registration (organisation and role) is missing or does not hold."
    ),
    "role_separator": "doc-role-separator",
    **{f"role:{role}": f"role:{role}" for role in ROLES},
    "status:active": "doc-status:active",
    "status:withdrawn": "doc-status:withdrawn",
    "status:superseded": "doc-status:superseded",
    **{f"category:{c}": f"doc-category:{c}" for c in CATEGORIES},
}


def _form(
    model: type[BaseModel], values: dict[str, str], translate: Callable[[str], str]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Validate form values with the API's own input model; errors come back per field."""
    try:
        return model.model_validate(values).model_dump(), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            errors.setdefault(field, translate(FIELD_ERRORS.get(field, "Check this field.")))
        return None, errors


def _sha(value: str) -> str:
    return value.strip().lower()


def _translator(request: Request):
    return services(request).catalog.translator(language(request), "documents")


def _orgs(request: Request) -> dict[str, dict[str, Any]]:
    state = services(request).node.store.state()
    return dict(state.scan("identity.org"))


def _org(request: Request, org_id: str) -> dict[str, Any] | None:
    return services(request).node.store.state().get("identity.org", org_id)


def _documents(request: Request) -> list[dict[str, Any]]:
    docs = [v for _, v in services(request).node.store.state().scan("documents.doc")]
    docs.sort(key=lambda d: d["log_index"], reverse=True)
    return docs


def _org_name(org: dict[str, Any] | None, fallback: str, lang: str) -> str:
    if not org:
        return fallback
    return org.get("name_ja" if lang == "ja" else "name_en") or fallback


def _may_change(user: User | None, doc: dict[str, Any]) -> bool:
    # Only decides which forms to show; the contract decides what is allowed.
    return (
        user is not None
        and user.has_role(*REGISTRAR_ROLES)
        and ("admin" in user.roles or user.org == doc["org"])
        and doc["status"] == "active"
    )


def _registrar(request: Request) -> User | Response:
    """The signed-in registrar, or the response to give anyone else."""
    user = optional_user(request)
    if user is None:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
    if not user.has_role(*REGISTRAR_ROLES):
        return render(request, "documents/not_allowed.html", status_code=403)
    return user


def _register_page(
    request: Request,
    user: User,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: TsunaguError | None = None,
) -> Response:
    lang = language(request)
    return render(
        request,
        "documents/register.html",
        status_code=status_code,
        org_name=_org_name(_org(request, user.org), user.org, lang),
        categories=CATEGORIES,
        values=values or {},
        errors=errors or {},
        error=error.message(lang) if error else None,
        existing=error is not None and error.code == "already_registered",
    )


def _done(request: Request, action: str, result: Committed) -> Response:
    doc = document_record(request, result.sha256)
    return render(request, "documents/done.html", action=action, result=result, doc=doc)


def _failed(request: Request, sha256: str, error: TsunaguError, **forms: Any) -> Response:
    """The detail page again, with the refusal above everything (the form may be gone)."""
    return _detail(
        request,
        sha256,
        status_code=error.status,
        form_error=error.message(language(request)),
        **forms,
    )


def _detail(
    request: Request,
    sha256: str,
    status_code: int = 200,
    form_error: str | None = None,
    **forms: Any,
) -> Response:
    doc = document_record(request, sha256)
    if doc is None:
        return render(request, "documents/not_found.html", status_code=404, sha256=sha256)
    return render(
        request,
        "documents/detail.html",
        status_code=status_code,
        doc=doc,
        org_name=_org_name(_org(request, doc["org"]), doc["org"], language(request)),
        may_change=_may_change(optional_user(request), doc),
        categories=CATEGORIES,
        form_error=form_error,
        withdraw=forms.get("withdraw", {}),
        supersede=forms.get("supersede", {}),
    )


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/documents")
    def list_page(
        request: Request,
        org: str = "",
        category: str = "",
        status: str = "",
        page: str = "1",
    ) -> Response:
        lang = language(request)
        orgs = _orgs(request)
        docs = _documents(request)
        registering = sorted({d["org"] for d in docs})
        # Unknown filter values are ignored rather than refused: they come from old links.
        org = org if org in registering else ""
        category = category if category in CATEGORIES else ""
        status = status if status in STATUSES else ""
        shown = [
            d
            for d in docs
            if (not org or d["org"] == org)
            and (not category or d["category"] == category)
            and (not status or d["status"] == status)
        ]
        pages = max(1, -(-len(shown) // PAGE_SIZE))
        number = min(max(int(page), 1), pages) if page.isdigit() and len(page) < 7 else 1
        filters = {k: v for k, v in (("org", org), ("category", category), ("status", status)) if v}

        def page_url(number: int) -> str:
            return "/documents?" + urlencode({**filters, "page": number})

        return render(
            request,
            "documents/list.html",
            docs=shown[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
            total=len(shown),
            page=number,
            pages=pages,
            prev_url=page_url(number - 1) if number > 1 else None,
            next_url=page_url(number + 1) if number < pages else None,
            org_names={o: _org_name(orgs.get(o), o, lang) for o in registering},
            org_choices=registering,
            categories=CATEGORIES,
            statuses=STATUSES,
            selected={"org": org, "category": category, "status": status},
            filtered=bool(filters),
        )

    @r.get("/documents/register")
    def register_form(request: Request) -> Response:
        user = _registrar(request)
        if isinstance(user, Response):
            return user
        return _register_page(request, user)

    @r.post("/documents/register")
    async def register(
        request: Request,
        csrf: Annotated[str, Form()] = "",
        sha256: Annotated[str, Form()] = "",
        title: Annotated[str, Form()] = "",
        category: Annotated[str, Form()] = "",
    ) -> Response:
        user = _registrar(request)
        if isinstance(user, Response):
            return user
        check_csrf(request, csrf)
        _ = _translator(request)
        values = {"sha256": _sha(sha256), "title": title.strip(), "category": category}
        payload, errors = _form(RegisterIn, values, _)
        if payload is None:
            return _register_page(request, user, 422, values, errors)
        try:
            result = await submit(request, user, "register", payload)
        except TsunaguError as exc:
            return _register_page(request, user, exc.status, values, error=exc)
        return _done(request, "register", result)

    @r.get("/documents/verify")
    def verify_page(request: Request, sha256: str = "") -> Response:
        _ = _translator(request)
        sha256 = _sha(sha256) if SHA256.fullmatch(sha256.strip()) else ""
        return render(
            request,
            "documents/verify.html",
            messages={key: _(msgid) for key, msgid in VERIFY_MESSAGES.items()},
            sha256=sha256,
        )

    @r.get("/documents/{sha256}")
    def detail_page(request: Request, sha256: str) -> Response:
        if not SHA256.fullmatch(sha256):
            return render(request, "documents/not_found.html", status_code=404, sha256=None)
        if sha256 != sha256.lower():
            return RedirectResponse(f"/documents/{sha256.lower()}", status_code=301)
        return _detail(request, sha256)

    @r.post("/documents/{sha256}/withdraw")
    async def withdraw(
        request: Request,
        sha256: str,
        csrf: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
    ) -> Response:
        if not SHA256.fullmatch(sha256):
            return render(request, "documents/not_found.html", status_code=404, sha256=None)
        user = _registrar(request)
        if isinstance(user, Response):
            return user
        check_csrf(request, csrf)
        _ = _translator(request)
        sha256 = sha256.lower()
        values = {"reason": reason.strip()}
        body, errors = _form(WithdrawIn, values, _)
        if body is None:
            form = {"values": values, "errors": errors}
            return _detail(request, sha256, status_code=422, withdraw=form)
        try:
            result = await submit(request, user, "withdraw", {"sha256": sha256, **body})
        except TsunaguError as exc:
            form = {"values": values, "errors": {}}
            return _failed(request, sha256, exc, withdraw=form)
        return _done(request, "withdraw", result)

    @r.post("/documents/{sha256}/supersede")
    async def supersede(
        request: Request,
        sha256: str,
        csrf: Annotated[str, Form()] = "",
        new_sha256: Annotated[str, Form()] = "",
        title: Annotated[str, Form()] = "",
        category: Annotated[str, Form()] = "",
        reason: Annotated[str, Form()] = "",
    ) -> Response:
        if not SHA256.fullmatch(sha256):
            return render(request, "documents/not_found.html", status_code=404, sha256=None)
        user = _registrar(request)
        if isinstance(user, Response):
            return user
        check_csrf(request, csrf)
        _ = _translator(request)
        sha256 = sha256.lower()
        values = {
            "new_sha256": _sha(new_sha256),
            "title": title.strip(),
            "category": category,
            "reason": reason.strip(),
        }
        body, errors = _form(SupersedeIn, values, _)
        if body is None:
            form = {"values": values, "errors": errors}
            return _detail(request, sha256, status_code=422, supersede=form)
        try:
            result = await submit(request, user, "supersede", {"sha256": sha256, **body})
        except TsunaguError as exc:
            form = {"values": values, "errors": {}}
            return _failed(request, sha256, exc, supersede=form)
        return _done(request, "supersede", result)

    return r
