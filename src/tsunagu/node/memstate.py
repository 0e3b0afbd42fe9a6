"""Chain state held in memory, read and written the way the node's store does: what
``tsunagu verify`` replays the chain into (see :mod:`tsunagu.node.verify`)."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from typing import Any

from tsunagu.ledger.canonical import loads_json

_MISSING: Any = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})
FLAT_CACHE_ENTRIES = 10_000
_KEY_END = "\U0010ffff"  # the scan bound Store's StateStore uses


class MemoryState:
    """State held in memory: what a store's ``state`` table holds after the same writes, read
    the way the store reads it (a :class:`~tsunagu.contracts.StateReader` with ``get_raw``).

    :meth:`apply` takes an execution's writes (``(ns, key, bytes)`` puts, ``(ns, key, None)``
    deletes), as ``Store.write_block`` does. Scans return keys in the store's order (SQLite's
    BINARY collation of UTF-8 text, which is Python's order of ``str``) within the same bounds.
    """

    def __init__(self) -> None:
        self._values: dict[str, dict[str, Any]] = {}
        # Each scanned namespace's keys in order: built by its first scan, then kept in order.
        self._sorted: dict[str, list[str]] = {}
        # Decoded flat objects (members all scalars) by (ns, key), with the bytes they were
        # decoded from: a copy of one is the fresh value json.loads would give.
        self._flat: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}

    def get_raw(self, ns: str, key: str) -> Any:
        values = self._values.get(ns)
        return None if values is None else values.get(key)

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        values = self._values.get(ns)
        raw = None if values is None else values.get(key)
        if raw is None:
            return None
        known = self._flat.get((ns, key))
        if known is not None and known[0] is raw:
            return dict(known[1])  # callers may change what they get
        value = loads_json(raw)
        if type(value) is dict and all(type(v) in _SCALARS for v in value.values()):
            if len(self._flat) >= FLAT_CACHE_ENTRIES:
                self._flat.clear()
            self._flat[(ns, key)] = (raw, dict(value))
        return value

    def scan(self, ns: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        values = self._values.get(ns)
        if not values:
            return iter(())
        keys = self._sorted.get(ns)
        if keys is None:
            keys = self._sorted[ns] = sorted(values)
        chosen = keys[bisect_left(keys, prefix) : bisect_left(keys, prefix + _KEY_END)]
        return iter([(key, loads_json(values[key])) for key in chosen])

    def apply(self, writes: Sequence[tuple[str, str, Any]]) -> None:
        all_values = self._values
        for ns, key, value in writes:
            values = all_values.get(ns)
            if values is None:
                values = all_values[ns] = {}
            keys = self._sorted.get(ns)
            if value is None:
                if values.pop(key, _MISSING) is not _MISSING and keys is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if keys is not None and key not in values:
                    insort(keys, key)
                values[key] = value

    def __len__(self) -> int:
        return sum(map(len, self._values.values()))

    def rows(self) -> list[tuple[str, str, Any]]:
        """Every row, ordered by namespace and key."""
        return sorted(
            (ns, key, value) for ns, values in self._values.items() for key, value in values.items()
        )
