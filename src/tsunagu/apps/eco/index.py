"""The off-chain index of readings behind a lot's trace.

The chain's state keeps only each device's counters and monthly totals, so that compiling a
report never scans readings. Tracing a lot back to its readings needs the readings
themselves: this index (``eco-index.db`` in the node's folder, rebuilt from the chain at any
time) reads the committed blocks it has not seen yet whenever a trace is asked for, and
recomputes each reading's grams with the same :mod:`rules` the contract used.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from typing import Any

from tsunagu.apps.eco import rules

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS device (id TEXT PRIMARY KEY, at TEXT, a INTEGER, b INTEGER,
  residual INTEGER, kind TEXT, rebase INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS reading (tx_id TEXT PRIMARY KEY, log_index INTEGER, height INTEGER,
  device TEXT, month TEXT, at TEXT, grams INTEGER);
CREATE INDEX IF NOT EXISTS reading_device_month ON reading (device, month);
"""
VERSION = "2"  # 2: a reinstated device's next reading is a new baseline (device.rebase)

_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class ReadingIndex:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.db = sqlite3.connect(node.data_dir / "eco-index.db", check_same_thread=False)
        if self._version() != VERSION:  # an index of an older shape: rebuild it from the chain
            self.db.executescript(
                "DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS device; "
                "DROP TABLE IF EXISTS reading;"
            )
        self.db.executescript(SCHEMA)
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
        self.db.commit()
        self.lock = threading.Lock()

    def _version(self) -> str | None:
        try:
            row = self.db.execute("SELECT v FROM meta WHERE k = 'version'").fetchone()
        except sqlite3.OperationalError:  # a new file: no tables yet
            return None
        return None if row is None else str(row[0])

    def height(self) -> int:
        row = self.db.execute("SELECT v FROM meta WHERE k = 'height'").fetchone()
        return -1 if row is None else int(row[0])

    def sync(self, _block: Any = None) -> None:
        """Index every committed block not indexed yet."""
        with self.lock:
            head = self.node.head
            if head is None:
                return
            done = self.height()
            state = self.node.store.state()
            for height in range(done + 1, head.height + 1):
                found = self.node.store.app_txs(height, "eco")  # only eco's are decoded
                if found is None:
                    break
                self._block(height, found[1], state)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('height', ?)", (str(height),))
            self.db.commit()

    def _block(self, height: int, txs: list[tuple[int, Any, Any]], state: Any) -> None:
        """Index a block's eco transactions (log index, transaction, result)."""
        for log_index, tx, result in txs:
            if result.status != "committed":  # app_txs gave only eco's
                continue
            if tx.type == "device.register":
                from tsunagu.apps.eco.devices import device_id

                base = tx.payload["baseline"]
                self.db.execute(
                    "INSERT OR REPLACE INTO device VALUES (?, ?, ?, ?, 0, ?, 0)",
                    (
                        device_id(tx.payload["public_key"]),
                        base["at"],
                        base["a"],
                        base["b"],
                        tx.payload["kind"],
                    ),
                )
            elif tx.type == "device.reinstate":
                self.db.execute(
                    "UPDATE device SET rebase = 1 WHERE id = ?", (tx.payload["device"],)
                )
            elif tx.type in ("reading.pv", "reading.ev"):
                self._reading(tx, height, log_index, state)

    def _reading(self, tx: Any, height: int, log_index: int, state: Any) -> None:
        p = tx.payload
        row = self.db.execute(
            "SELECT at, a, b, residual, kind, rebase FROM device WHERE id = ?", (p["device"],)
        ).fetchone()
        if row is None:
            return
        _, last_a, last_b, residual, kind, rebase = row
        if rebase:  # the contract took it as the new baseline and credited nothing
            a, b = (
                (p["generated_wh"], p["exported_wh"])
                if kind == "pv"
                else (p["charged_wh"], p["distance_m"])
            )
            self.db.execute(
                "UPDATE device SET at = ?, a = ?, b = ?, rebase = 0 WHERE id = ?",
                (p["at"], a, b, p["device"]),
            )
            return
        year = rules.fiscal_year(p["at"])
        grid = rules.factor_for(state.get("eco.factor", "grid"), year)
        if kind == "pv":
            a, b = p["generated_wh"], p["exported_wh"]
            effect = rules.pv_effect(a - last_a, b - last_b, grid[1], residual)  # type: ignore[index]
        else:
            a, b = p["charged_wh"], p["distance_m"]
            car = rules.factor_for(state.get("eco.factor", "car"), year)
            effect = rules.ev_effect(a - last_a, b - last_b, grid[1], car[1], residual)  # type: ignore[index]
        self.db.execute(
            "UPDATE device SET at = ?, a = ?, b = ?, residual = ? WHERE id = ?",
            (p["at"], a, b, effect.residual, p["device"]),
        )
        self.db.execute(
            "INSERT OR REPLACE INTO reading VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tx.id, log_index, height, p["device"], rules.month_of(p["at"]), p["at"], effect.grams),
        )

    def readings(self, devices: list[str], month_from: str, month_to: str) -> list[dict]:
        """The readings of ``devices`` stamped in the months ``month_from``..``month_to``."""
        self.sync()
        out: list[dict] = []
        with self.lock:
            for device in sorted(devices):
                rows = self.db.execute(
                    "SELECT tx_id, log_index, height, device, at, grams FROM reading "
                    "WHERE device = ? AND month BETWEEN ? AND ? ORDER BY log_index",
                    (device, month_from, month_to),
                ).fetchall()
                out.extend(
                    {
                        "tx_id": r[0],
                        "log_index": r[1],
                        "height": r[2],
                        "device": r[3],
                        "at": r[4],
                        "grams": r[5],
                    }
                    for r in rows
                )
        return out


def index_for(node: Any) -> ReadingIndex:
    """The node's reading index. It catches up with the chain when it is read (a trace), not
    on every commit, so the commit path never waits for it."""
    with _LOCK:
        index = _INDEXES.get(node)
        if index is None:
            index = ReadingIndex(node)
            _INDEXES[node] = index
    return index
