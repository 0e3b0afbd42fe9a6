"""A byte changed in one node's ``state`` table (blocks untouched) is flagged by every node:
peers compare digests of their live state tables taken at the same height."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from consortium.conftest import WRITERS, Consortium


def _rows(consortium: Consortium, index: int) -> dict[str, dict[str, Any]]:
    view = consortium.http.get(consortium.urls[index] + "/api/v1/peers").json()
    return {row["node_id"]: row for row in view["nodes"]}


def _wait(consortium: Consortium, check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        views = [_rows(consortium, i) for i in range(len(consortium.nodes))]
        if all(check(rows) for rows in views):
            return
        if time.monotonic() > deadline:
            raise AssertionError(views)
        time.sleep(0.5)


def _set(db: Path, ns: str, key: str, value: bytes) -> None:
    conn = sqlite3.connect(db, timeout=10)
    try:
        conn.execute("UPDATE state SET value = ? WHERE ns = ? AND key = ?", (value, ns, key))
        conn.commit()
    finally:
        conn.close()


def test_a_damaged_state_row_is_flagged_by_every_node(consortium: Consortium) -> None:
    consortium.wait_agree()
    damaged = consortium.nodes[1]
    others = [n["id"] for n in consortium.nodes if n is not damaged]

    def healthy(rows: dict[str, dict[str, Any]]) -> bool:
        return all(r.get("agrees") and r.get("state_differs_at") is None for r in rows.values())

    _wait(consortium, healthy)
    own = consortium.http.get(damaged["url"] + "/api/v1/consortium/self").json()
    assert own["state_digests"] and own["state_digest_ms"] >= 0

    db = Path(damaged["data_dir"]) / "chain.db"
    conn = sqlite3.connect(db, timeout=10)
    ns, key, value = conn.execute(
        "SELECT ns, key, value FROM state WHERE ns NOT LIKE 'identity%' ORDER BY ns, key LIMIT 1"
    ).fetchone()
    conn.close()
    value = bytes(value)
    _set(db, ns, key, value[:-2] + bytes([value[-2] ^ 1]) + value[-1:])
    try:

        def flagged(rows: dict[str, dict[str, Any]]) -> bool:
            row = rows[damaged["id"]]
            return (
                row["diverging"]
                and row["first_difference"] is None  # every block is still the same
                and isinstance(row["state_differs_at"], int)
                and all(rows[o]["agrees"] for o in others)
            )

        _wait(consortium, flagged)
        for url in consortium.urls:
            page = consortium.http.get(url + "/consortium?lang=en").text
            assert "State differs at height" in page, url
            assert "で状態が不一致" in consortium.http.get(url + "/consortium?lang=ja").text
        # Only the state table is damaged: the block check still passes on every block.
        assert consortium.status(1)["height"] == consortium.status(0)["height"]
        # The damaged node takes no writes (its blocks would make the others halt); the
        # others do, and it still follows them.
        refused = _write_until(consortium, 1, "diverged", lambda r: r.status_code == 503)
        assert refused.json()["code"] == "node_diverged" and refused.json()["detail_ja"]
        assert consortium.register(0, WRITERS[0], "while node 2 diverges").status_code == 201
    finally:
        _set(db, ns, key, value)
    _wait(consortium, healthy)
    _write_until(consortium, 1, "repaired", lambda r: r.status_code == 201)


def _write_until(consortium: Consortium, index: int, tag: str, done) -> httpx.Response:
    """Write through node ``index`` until ``done(response)`` (its monitor polls every 2 s)."""
    deadline = time.monotonic() + 20
    n = 0
    while True:
        n += 1
        response = consortium.register(index, WRITERS[index], f"{tag} {n} {time.time()}")
        if done(response) or time.monotonic() > deadline:
            assert done(response), response.text
            return response
        time.sleep(0.5)
