"""A small etcd v3 client over its JSON gateway (``/v3/kv/*``, ``/v3/watch``) with httpx.

The gateway speaks the v3 API as JSON: keys and values are base64, 64-bit integers are
strings, and fields equal to their default (``false``, ``0``, empty lists) are left out. Using
it avoids the protobuf/gRPC problems of the old Python etcd clients.

Requests go to one endpoint at a time; a refused connection, a timeout or a server error moves
on to the next. When no endpoint answers, :class:`EtcdUnavailable` is raised: with the
majority of members down, a linearizable request cannot succeed anywhere.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

REQUEST_TIMEOUT = 2.0  # seconds per endpoint: etcd itself waits far longer without a quorum


class EtcdUnavailable(Exception):
    """No etcd endpoint could serve the request (no quorum, or every member down)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with ``prefix`` (etcd's range_end)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


@dataclass(frozen=True, slots=True)
class KV:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int


def _kv(raw: dict[str, Any]) -> KV:
    return KV(
        _unb64(raw.get("key")),
        _unb64(raw.get("value")),
        int(raw.get("create_revision", 0)),
        int(raw.get("mod_revision", 0)),
    )


class EtcdClient:
    """Thread-safe: each thread gets its own HTTP connection pool."""

    def __init__(self, endpoints: list[str], timeout: float = REQUEST_TIMEOUT) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self._current = 0
        self._local = threading.local()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self.timeout)
            self._local.client = client
        return client

    def rotate(self) -> None:
        """Use the next endpoint from now on (after a broken watch, for instance)."""
        self._current = (self._current + 1) % len(self.endpoints)

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()

    def _post(self, path: str, body: dict[str, Any], timeout: float | None = None) -> dict:
        errors = []
        start = self._current
        for step in range(len(self.endpoints)):
            index = (start + step) % len(self.endpoints)
            url = self.endpoints[index] + path
            try:
                response = self._client().post(url, json=body, timeout=timeout or self.timeout)
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {type(exc).__name__}")
                continue
            if response.status_code == 200:
                self._current = index
                return response.json()
            errors.append(f"{url}: HTTP {response.status_code} {response.text[:200]}")
        raise EtcdUnavailable("; ".join(errors))

    # -- key-value -----------------------------------------------------------------------

    def get(self, key: bytes, *, serializable: bool = False) -> KV | None:
        kvs, _ = self.range(key, serializable=serializable)
        return kvs[0] if kvs else None

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        *,
        limit: int = 0,
        serializable: bool = False,
        keys_only: bool = False,
        timeout: float | None = None,
    ) -> tuple[list[KV], int]:
        """Keys in ``[key, end)`` (or just ``key``), sorted; and the store's revision."""
        body: dict[str, Any] = {"key": _b64(key)}
        if end is not None:
            body["range_end"] = _b64(end)
        if limit:
            body["limit"] = limit
        if serializable:
            body["serializable"] = True
        if keys_only:
            body["keys_only"] = True
        raw = self._post("/v3/kv/range", body, timeout)
        revision = int(raw.get("header", {}).get("revision", 0))
        return [_kv(kv) for kv in raw.get("kvs", [])], revision

    def put(self, key: bytes, value: bytes) -> int:
        raw = self._post("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(raw.get("header", {}).get("revision", 0))

    def create(
        self, key: bytes, value: bytes, require: bytes | None = None
    ) -> tuple[bool, KV | None]:
        """Put ``key`` only if it does not exist yet (and ``require`` does), in one
        transaction.

        Returns ``(True, None)`` when this call created it, else ``(False, the existing kv
        or None)``.
        """
        compare = [
            {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        ]
        if require is not None:
            compare.append(
                {
                    "key": _b64(require),
                    "target": "CREATE",
                    "result": "GREATER",
                    "create_revision": "0",
                }
            )
        body = {
            "compare": compare,
            "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}],
            "failure": [{"request_range": {"key": _b64(key)}}],
        }
        raw = self._post("/v3/kv/txn", body)
        if raw.get("succeeded"):
            return True, None
        kvs = raw["responses"][0]["response_range"].get("kvs", [])
        return False, _kv(kvs[0]) if kvs else None

    def delete_range(self, key: bytes, end: bytes) -> int:
        raw = self._post("/v3/kv/deleterange", {"key": _b64(key), "range_end": _b64(end)})
        return int(raw.get("deleted", 0))

    def status(self, endpoint: str) -> dict[str, Any]:
        response = self._client().post(endpoint.rstrip("/") + "/v3/maintenance/status", json={})
        response.raise_for_status()
        return response.json()

    # -- watch ---------------------------------------------------------------------------

    def watch(self, key: bytes, end: bytes, start_revision: int) -> Iterator[list[KV] | None]:
        """Yield the kvs put under ``[key, end)`` from ``start_revision`` on, batch by batch,
        from the current endpoint; first ``None`` once etcd has created the watch (every put
        from then on arrives here). Ends (raising) when the stream breaks; the caller
        reconnects, possibly to another endpoint."""
        body = {
            "create_request": {
                "key": _b64(key),
                "range_end": _b64(end),
                "start_revision": str(start_revision),
            }
        }
        url = self.endpoints[self._current] + "/v3/watch"
        timeout = httpx.Timeout(self.timeout, read=None)
        with httpx.Client(timeout=timeout) as client, client.stream("POST", url, json=body) as r:
            if r.status_code != 200:
                raise EtcdUnavailable(f"{url}: HTTP {r.status_code}")
            for line in r.iter_lines():
                if not line.strip():
                    continue
                message = json.loads(line)
                if "error" in message:
                    raise EtcdUnavailable(f"{url}: {message['error']}")
                result = message.get("result", {})
                if result.get("canceled"):
                    raise EtcdUnavailable(f"{url}: watch canceled ({result})")
                if result.get("created"):
                    yield None
                    continue
                events = result.get("events") or []
                puts = [_kv(e["kv"]) for e in events if e.get("type", "PUT") == "PUT"]
                yield puts
