"""Community pages. The routes live in three modules (activities, people, public); this one
holds what they share: who may post a form (:func:`form_user`, one place for the login, role
and CSRF preamble) and how a write's outcome is shown (:func:`outcome`).

Pages write through the API's own functions and models, so the contract decides and a refusal
is shown in the user's language, with nothing changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from tsunagu.apps.community import catalog, views
from tsunagu.errors import TsunaguError
from tsunagu.identity.private import User
from tsunagu.web.deps import check_csrf, language, optional_user, render, services


def state(request: Request) -> views.State:
    return views.State(services(request).node)


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def page_user(request: Request, roles: tuple[str, ...] = ()) -> User | Response:
    """The signed-in user (holding one of ``roles`` when given), or the page for others."""
    user = optional_user(request)
    if user is None:
        return login_redirect(request)
    if roles and not user.has_role(*roles):
        return render(request, "community/message.html", status_code=403, kind="forbidden")
    return user


async def form_user(
    request: Request, roles: tuple[str, ...] = ()
) -> tuple[User, dict[str, Any]] | Response:
    """For a form post: the user and the form's fields, after the login, role and CSRF checks."""
    user = page_user(request, roles)
    if isinstance(user, Response):
        return user
    form = dict(await request.form())
    check_csrf(request, str(form.pop("csrf", "")))
    return user, form


def parse(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return model.model_validate(values).model_dump(exclude_none=True)
    except ValidationError:
        return None


def invalid(request: Request, back: str) -> Response:
    return render(request, "community/message.html", status_code=422, kind="invalid", back=back)


async def outcome(
    request: Request, write: Awaitable[Any], done: str | Callable[[Any], str], back: str
) -> Response:
    """Run a write; on success go to ``done`` (or ``done(result)``), else show the refusal in
    the user's language."""
    try:
        result = await write
    except TsunaguError as exc:
        return render(
            request,
            "community/message.html",
            status_code=exc.status,
            kind="refused",
            message=exc.message(language(request)),
            code=exc.code,
            back=back,
        )
    return RedirectResponse(done if isinstance(done, str) else done(result), status_code=303)


def common(lang: str) -> dict[str, Any]:
    return {
        "categories": catalog.CATEGORIES,
        "skills": catalog.SKILLS,
        "visibilities": catalog.VISIBILITIES,
        "place_name": lambda mid: views.place_name(mid, lang),
    }


def router() -> APIRouter:
    from tsunagu.apps.community import pages_activities, pages_people, pages_public

    r = APIRouter(include_in_schema=False)
    r.include_router(pages_activities.router())
    r.include_router(pages_people.router())
    r.include_router(pages_public.router())
    return r
