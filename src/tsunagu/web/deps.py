"""Request dependencies: services, language, the current user, roles, CSRF, rendering."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.security import OAuth2PasswordBearer

from tsunagu.errors import Forbidden, Rejected, TsunaguError, Unauthorized, Unavailable
from tsunagu.identity.private import User
from tsunagu.node.node import Receipt
from tsunagu.node.orderer import Pending
from tsunagu.web import bridge
from tsunagu.web.i18n import pick_language
from tsunagu.web.services import Services

SESSION_COOKIE = "tsunagu_session"
LANG_COOKIE = "lang"
COMMIT_TIMEOUT = 30.0


def services(request: Request) -> Services:
    return request.app.state.services


def language(request: Request) -> str:
    cached = getattr(request.state, "lang", None)
    if cached is None:
        cached = pick_language(
            request.query_params.get("lang"),
            request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language"),
        )
        request.state.lang = cached
    return cached


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def optional_user(request: Request) -> User | None:
    if hasattr(request.state, "user"):
        return request.state.user
    token = _token(request)
    user = services(request).private.user_for_token(token) if token else None
    request.state.user = user
    return user


# Declared so OpenAPI documents the password flow (the /docs "Authorize" button); the token
# itself is read by optional_user, which also accepts the page session cookie.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def current_user(request: Request, _token: str | None = Depends(oauth2_scheme)) -> User:
    user = optional_user(request)
    if user is None:
        raise Unauthorized()
    return user


def require_roles(*roles: str):
    """A dependency that admits only users holding one of ``roles`` (admin always)."""

    def dependency(request: Request, _token: str | None = Depends(oauth2_scheme)) -> User:
        user = current_user(request)
        if not user.has_role(*roles):
            raise Forbidden()
        return user

    return dependency


ANON_COOKIE = "tsunagu_visitor"


def _csrf_subject(request: Request) -> str:
    """What a CSRF token is bound to: the session, or a visitor's own random cookie."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return "s:" + session
    visitor = request.cookies.get(ANON_COOKIE) or getattr(request.state, "new_visitor", None)
    if visitor is None:
        visitor = secrets.token_urlsafe(16)
        request.state.new_visitor = visitor
    return "v:" + visitor


def csrf_token(request: Request) -> str:
    """A per-session (or per-visitor) token for page forms, keyed with a node secret."""
    secret = services(request).private.web_secret
    subject = _csrf_subject(request).encode()
    return hmac.new(secret, subject, hashlib.sha256).hexdigest()[:32]


def check_csrf(request: Request, submitted: str | None) -> None:
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    if not submitted or not hmac.compare_digest(submitted, csrf_token(request)):
        raise Forbidden(
            "The form expired. Reload the page and try again.",
            "フォームの有効期限が切れました。ページを再読み込みしてもう一度お試しください。",
            code="csrf",
        )


async def durable(pending: Pending) -> Receipt:
    """Wait until the transaction's block is durable (its receipt, committed or refused);
    raise what admission or the engine refused it with, or 503 after COMMIT_TIMEOUT."""
    try:
        async with asyncio.timeout(COMMIT_TIMEOUT):
            return await bridge.wait(pending.future)
    except TimeoutError as exc:
        raise Unavailable() from exc


async def committed(pending: Pending) -> Receipt:
    """Wait until the transaction's block is durable; raise if the contract refused it."""
    receipt = await durable(pending)
    if receipt.status != "committed":
        raise rejection(receipt)
    return receipt


def rejection(receipt: Receipt) -> TsunaguError:
    """The error for a refused transaction, carrying where the refusal is recorded."""
    return Rejected(
        receipt.reason or "The transaction was rejected.",
        receipt.reason_ja or receipt.reason or "取引は拒否されました。",
        code=receipt.code or "rejected",
        tx_id=receipt.tx_id,
        height=receipt.height,
        index=receipt.index,
    )


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    svc = services(request)
    lang = language(request)
    user = optional_user(request)
    nav = [
        link
        for app in svc.apps
        for link in app.nav
        if not link.roles or (user is not None and user.has_role(*link.roles))
    ]
    html = svc.templates.get_template(template).render(
        request=request,
        lang=lang,
        # An app's templates live under "<app>/": its own catalogue words them first.
        _=svc.catalog.translator(lang, template.split("/", 1)[0] if "/" in template else ""),
        user=user,
        nav=nav,
        csrf=csrf_token(request),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    visitor = getattr(request.state, "new_visitor", None)
    if visitor is not None:
        response.set_cookie(ANON_COOKIE, visitor, httponly=True, samesite="lax")
    return response
