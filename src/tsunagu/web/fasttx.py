"""The write path for client-signed transactions, as plain ASGI.

``POST /api/v1/tx`` is the one route every write of a client-signing integration goes
through, at thousands of requests a second. Through FastAPI each request cost about 0.7 ms
of event-loop CPU (routing, middleware, dependency solving, body validation) for work that
is: read a small JSON body, decode the envelope, hand it to the node and wait for its block.
:class:`FastTx` does exactly that and nothing else; the application
(:class:`tsunagu.web.app.TsunaguAPI`) hands it these requests before its middleware stack.

It answers only requests it fully understands: a JSON object body (the envelope), sent as
``application/json``, within the API body limit. Anything else (another path, method or
media type, a body that is not a JSON object) is passed on unchanged, with the body it
already read, to the FastAPI route of the same path, which stays the documented one in
OpenAPI and gives the same answers and errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsunagu.errors import InternalError, TsunaguError
from tsunagu.ledger.tx import decode_tx
from tsunagu.web.deps import committed
from tsunagu.web.limits import DEFAULT_LIMIT, too_large

PATH = "/api/v1/tx"
PROBLEM = b"application/problem+json"
JSON = b"application/json"


class FastTx:
    def __init__(self, app: ASGIApp, node: Callable[[], Any]) -> None:
        self.app = app
        self.node = node  # a callable, so the node can be swapped (tests, restarts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media_type != JSON:
            await self.app(scope, receive, send)
            return
        ja = headers.get(b"accept-language", b"").startswith(b"ja")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > DEFAULT_LIMIT:
            await too_large(send, DEFAULT_LIMIT, ja)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > DEFAULT_LIMIT:
                await too_large(send, DEFAULT_LIMIT, ja)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            tx = decode_tx(envelope)
            receipt = await committed(self.node().submit_queued(tx))
        except TsunaguError as error:
            await _answer(send, error.status, PROBLEM, _problem_bytes(error, ja))
            return
        except Exception:
            await _answer(send, 500, PROBLEM, _problem_bytes(InternalError(), ja))
            return
        out = (
            f'{{"tx_id":"{receipt.tx_id}","height":{receipt.height},'
            f'"index":{receipt.index},"status":"{receipt.status}"}}'
        ).encode()
        await _answer(send, 201, JSON, out)


def _problem_bytes(error: TsunaguError, ja: bool) -> bytes:
    problem = error.problem("ja" if ja else "en", instance=PATH)
    return json.dumps(problem, ensure_ascii=False, separators=(",", ":")).encode()


async def _answer(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
