"""Relief API: each organisation's notifications, as a list and as a server-sent event stream."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from tsunagu.apps.relief.api import inbox
from tsunagu.apps.relief.view import in_relief
from tsunagu.errors import Forbidden, NotFound
from tsunagu.identity.private import User
from tsunagu.web.deps import current_user

KEEPALIVE_SECONDS = 15.0  # a comment line on an idle event stream, so proxies keep it open


def relief_member(user: Annotated[User, Depends(current_user)]) -> User:
    """The signed-in user, if they act for their organisation in relief (see
    :func:`tsunagu.apps.relief.view.acts_for`): a resident reads no notifications of the town."""
    if not in_relief(user):
        raise Forbidden(
            "Only the relief staff of an organisation may read its notifications.",
            "組織の通知を読めるのは、その組織の支援物資の担当者だけです。",
        )
    return user


def notification_routes(r: APIRouter) -> None:
    @r.get("/notifications")
    def notifications(
        request: Request,
        user: Annotated[User, Depends(relief_member)],
        unread: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """⑥ ⑧ The inbox of the user's organisation, newest first."""
        box = inbox(request)
        box.sync()  # include the blocks committed before this request
        return {
            "notifications": box.notifications(user.org, unread_only=unread, limit=limit),
            "unread": box.unread(user.org),
        }

    @r.post("/notifications/read-all")
    def read_all(request: Request, user: Annotated[User, Depends(relief_member)]) -> dict[str, Any]:
        return {"marked": inbox(request).mark_read(user.org)}

    @r.post("/notifications/{ident}/read")
    def read_one(
        request: Request, ident: int, user: Annotated[User, Depends(relief_member)]
    ) -> dict[str, Any]:
        box = inbox(request)
        if not box.exists(user.org, ident):
            raise NotFound("No such notification.", "その通知はありません。")
        box.mark_read(user.org, ident)
        return {"id": ident, "read": True}

    @r.get("/notifications/stream", response_class=StreamingResponse)
    async def stream(
        request: Request,
        user: Annotated[User, Depends(relief_member)],
        last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    ) -> StreamingResponse:
        """Live notifications as server-sent events (``event: notification``, the id is the
        notification's). A reconnecting client sends ``Last-Event-ID`` and gets what it
        missed first."""
        box = inbox(request)
        queue = box.subscribe(user.org)
        # ASCII digits only: "③".isdigit() is true, but int("③") fails.
        given = last_event_id or ""
        after = int(given) if re.fullmatch(r"[0-9]{1,18}", given) else 0
        missed = box.notifications(user.org, after_id=after, limit=500) if after else []

        async def events():
            sent = after
            try:
                yield "retry: 5000\n\n"
                for note in missed:
                    sent = note["id"]
                    yield _sse(note)
                while True:
                    try:
                        note = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if note["id"] > sent:
                        sent = note["id"]
                        yield _sse(note)
            finally:
                box.unsubscribe(user.org, queue)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _sse(note: dict[str, Any]) -> str:
    data = json.dumps(note, ensure_ascii=False, separators=(",", ":"))
    return f"id: {note['id']}\nevent: notification\ndata: {data}\n\n"
