"""The write path for client-signed transactions, without the web framework.

``POST /api/v1/tx`` is the one route every write of a client-signing integration goes
through, at thousands of requests a second. Through FastAPI each request cost about 0.7 ms
of event-loop CPU (routing, middleware, dependency solving, body validation) for work that
is: read a small JSON body, decode the envelope, hand it to the node and wait for its block.

This module does exactly that and nothing else, in two forms that share every decision:

- :class:`FastTx`, plain ASGI: the application (:class:`tsunagu.web.app.TsunaguAPI`) hands it
  these requests before its middleware stack (any ASGI server, the test client);
- :mod:`tsunagu.web.fasthttp`, the HTTP protocol ``tsunagu serve`` runs, which answers them
  straight from the connection without an ASGI task at all.

It answers only requests it fully understands: a JSON object body (the envelope), sent as
``application/json``, within the API body limit. Anything else (another path, method or
media type, a body that is not a JSON object) is passed on unchanged, with the body it
already read, to the FastAPI route of the same path, which stays the documented one in
OpenAPI and gives the same answers and errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsunagu.errors import InternalError, Rejected, TsunaguError
from tsunagu.ledger.tx import decode_tx
from tsunagu.node.node import Receipt
from tsunagu.node.orderer import Pending
from tsunagu.web.deps import committed, rejection
from tsunagu.web.limits import DEFAULT_LIMIT, too_large

PATH = "/api/v1/tx"
PROBLEM = b"application/problem+json"
JSON = b"application/json"

log = logging.getLogger(__name__)

Answer = tuple[int, bytes, bytes]  # status, content type, body


def media_type(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bool, bytes | None]:
    """The request's media type, whether it prefers Japanese, and its declared length."""
    media, ja, declared = b"", False, None
    for name, value in headers:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
        elif name == b"accept-language":
            ja = value.startswith(b"ja")
        elif name == b"content-length":
            declared = value
    return media, ja, declared


def too_long(declared: bytes | None) -> bool:
    return declared is not None and declared.isdigit() and int(declared) > DEFAULT_LIMIT


def envelope_of(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or ``None`` (then the FastAPI route answers)."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    return envelope if isinstance(envelope, dict) else None


def submit(node: Any, envelope: dict[str, Any], ja: bool) -> Pending | Answer:
    """Hand the envelope to the node's admission, or the answer that refuses it."""
    try:
        return node.submit_queued(decode_tx(envelope))
    except Exception as error:  # a refusal (a TsunaguError), or a 500
        return refusal(error, ja)


def answer(receipt: Receipt) -> Answer:
    """The answer for a receipt: 201 with where the transaction is, or its refusal."""
    if receipt.status != "committed":
        raise rejection(receipt)
    out = (
        f'{{"tx_id":"{receipt.tx_id}","height":{receipt.height},'
        f'"index":{receipt.index},"status":"{receipt.status}"}}'
    ).encode()
    return 201, JSON, out


def refusal(error: BaseException, ja: bool) -> Answer:
    """The problem+json answer for ``error``; anything but a :class:`TsunaguError` is a 500,
    logged with its traceback."""
    if not isinstance(error, TsunaguError):
        log.error("POST %s failed", PATH, exc_info=error)
        error = InternalError()
    problem = error.problem("ja" if ja else "en", instance=PATH)
    body = json.dumps(problem, ensure_ascii=False, separators=(",", ":")).encode()
    return error.status, PROBLEM, body


def outcome(receipt: Receipt, ja: bool) -> Answer:
    try:
        return answer(receipt)
    except Rejected as error:
        return refusal(error, ja)


class FastTx:
    def __init__(self, app: ASGIApp, node: Callable[[], Any]) -> None:
        self.app = app
        self.node = node  # a callable, so the node can be swapped (tests, restarts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        media, ja, declared = media_type(scope.get("headers") or ())
        if media != JSON:
            await self.app(scope, receive, send)
            return
        if too_long(declared):
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
        envelope = envelope_of(body)
        if envelope is None:
            await self.app(scope, _replay(body, receive), send)
            return
        pending = submit(self.node(), envelope, ja)
        if isinstance(pending, tuple):
            await _answer(send, *pending)
            return
        try:
            result = answer(await committed(pending))
        except Exception as error:  # refused at admission or by the contract, or a timeout
            result = refusal(error, ja)
        await _answer(send, *result)


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
