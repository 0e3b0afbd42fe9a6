"""Request body limits, enforced while the body streams in (not trusting Content-Length)."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 256 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
UPLOAD_PATHS = ("/api/v1/documents/file",)  # pages hash files in the browser and post a hash


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the limit. An HTTPException so that FastAPI's body parsing
    re-raises it instead of turning it into a generic 400."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = UPLOAD_LIMIT if scope["path"].startswith(UPLOAD_PATHS) else DEFAULT_LIMIT
        headers = dict(scope.get("headers") or [])
        ja = headers.get(b"accept-language", b"").startswith(b"ja")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_large(send, limit, ja)
            return
        seen = 0
        started = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if not started and not answered:
                        answered = True
                        await too_large(send, limit, ja)
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 is already sent; drop the app's own error response
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started and not answered:
                await too_large(send, limit, ja)


async def too_large(send: Send, limit: int, ja: bool = False) -> None:
    en = f"The request body is larger than {limit} bytes."
    jp = f"送信データが大きすぎます（上限 {limit} バイト）。"
    body = json.dumps(
        {
            "type": "https://tsunagu.example/problems/body_too_large",
            "title": "body too large",
            "status": 413,
            "code": "body_too_large",
            "detail": jp if ja else en,
            "detail_en": en,
            "detail_ja": jp,
        },
        ensure_ascii=False,
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
