"""A real uvicorn server in a thread, serving an application the way ``tsunagu serve`` does
(its HTTP protocol, :func:`tsunagu.web.fasthttp.protocol`), for tests that speak HTTP."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def serving(app: Any, port: int = 0, **options: Any) -> Iterator[int]:
    """Serve ``app`` on loopback ``port`` (0: a free one); yields the port, stops the server
    after. ``options`` are more ``uvicorn.Config`` settings."""
    import uvicorn

    from tsunagu.web.fasthttp import protocol

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", http=protocol(app), **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
