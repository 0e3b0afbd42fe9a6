"""The HTTP protocol ``tsunagu serve`` runs: uvicorn's, with client-signed writes answered
straight from the connection.

Through ASGI, every request costs an asyncio task, a dozen message dictionaries and the
middleware calls before :class:`~tsunagu.web.fasttx.FastTx` sees it: about half of the event
loop's time per ``POST /api/v1/tx``. :class:`TxProtocol` is uvicorn's httptools protocol
(every other request goes through it unchanged, to the FastAPI application) that takes the
requests :mod:`tsunagu.web.fasttx` would answer before any task is made: once the body is
complete it decodes the envelope, hands it to the node's admission, and writes the answer
when the block is durable, from a callback. The decisions and the answers are
:mod:`tsunagu.web.fasttx`'s own, so both paths answer alike.

Taken this way: ``POST /api/v1/tx`` as ``application/json`` with a ``Content-Length`` within
the API body limit, without ``Expect: 100-continue``. Anything else, and any body that is not
a JSON object, goes to the application as before, with the body already read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from tsunagu.errors import Unavailable
from tsunagu.web import bridge, fasttx
from tsunagu.web.deps import COMMIT_TIMEOUT


class TxProtocol(HttpToolsProtocol):
    """Set :attr:`node` (a callable giving the node) on a subclass: see :func:`protocol`."""

    node: Any = None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        scope = cycle.scope
        if (
            app is not self.app
            or scope["path"] != fasttx.PATH
            or scope["method"] != "POST"
            or cycle.waiting_for_100_continue
        ):
            super()._start_asgi_task(cycle, app)
            return
        media, ja, declared = fasttx.media_type(scope["headers"])
        if media != fasttx.JSON or declared is None or fasttx.too_long(declared):
            super()._start_asgi_task(cycle, app)
            return
        cycle.tx_ja = ja  # type: ignore[attr-defined]
        if cycle.more_body:
            cycle.tx_waiting = True  # type: ignore[attr-defined]  # until on_message_complete
        else:
            self._take(cycle)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and getattr(cycle, "tx_waiting", False):
            cycle.tx_waiting = False  # type: ignore[attr-defined]
            self._take(cycle)

    def _take(self, cycle: RequestResponseCycle) -> None:
        ja: bool = cycle.tx_ja  # type: ignore[attr-defined]
        envelope = fasttx.envelope_of(bytes(cycle.body))
        if envelope is None:  # the application's route explains what is wrong
            super()._start_asgi_task(cycle, self.app)
            return
        pending = fasttx.submit(self.node(), envelope, ja)
        if isinstance(pending, tuple):
            self._answer(cycle, *pending)
            return
        mirror = bridge.wait(pending.future)
        timer = self.loop.call_later(COMMIT_TIMEOUT, mirror.cancel)

        def done(mirror: asyncio.Future) -> None:
            timer.cancel()
            if mirror.cancelled():
                self._answer(cycle, *fasttx.refusal(Unavailable(), ja))
            elif (error := mirror.exception()) is not None:
                self._answer(cycle, *fasttx.refusal(error, ja))
            else:
                self._answer(cycle, *fasttx.outcome(mirror.result(), ja))

        mirror.add_done_callback(done)

    def _answer(self, cycle: RequestResponseCycle, status: int, media: bytes, body: bytes) -> None:
        if cycle.disconnected or self.transport.is_closing():
            return
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", media, b"\r\ncontent-length: ", str(len(body)).encode()]
        head.append(b"\r\n\r\n" if cycle.keep_alive else b"\r\nconnection: close\r\n\r\n")
        head.append(body)
        cycle.response_started = cycle.response_complete = True
        self.transport.write(b"".join(head))
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()


def protocol(app: Any) -> type[TxProtocol]:
    """The protocol class to serve ``app`` (from :func:`~tsunagu.web.app.create_app`) with:
    ``uvicorn.run(app, http=protocol(app))``."""
    return type(
        "TsunaguProtocol", (TxProtocol,), {"node": staticmethod(lambda: app.state.services.node)}
    )
