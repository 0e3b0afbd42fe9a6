"""The relief notification inbox: off the chain, one list per organisation, filled from blocks.

The node calls :meth:`Inbox.on_block` on its commit path after every block; the inbox only
queues the block there. Its own thread, the one writer of ``<data>/relief.db``, turns committed
relief transactions into notifications (⑥ the shelter hears a package is on its way, ⑧ the
sender hears it arrived) and pushes each to live subscribers (the SSE stream) with
``loop.call_soon_threadsafe``. It remembers the last height it read, so on start it catches up
with blocks committed before it ran (the demo's, or while the node was down), exactly once.

Who hears what:

=================  =============================  ==========================
transaction        notification kind              organisations
=================  =============================  ==========================
``match.confirm``  ``matched``                    destination shelter, sender
``shipment.report````shipped``                    destination shelter
``receipt.report`` ``received``                   sender
``match.cancel``   ``cancelled``                  destination shelter, sender
=================  =============================  ==========================
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from tsunagu.apps.relief import catalog
from tsunagu.apps.relief.contract import match_id
from tsunagu.ledger.block import Block, BlockHeader, TxResult
from tsunagu.ledger.tx import Transaction
from tsunagu.node.node import Node

log = logging.getLogger(__name__)

RELIEF_DB = "relief.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS relief_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT NOT NULL,
    kind TEXT NOT NULL,
    match_id TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    height INTEGER NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org, tx_id, match_id, kind)
);
CREATE INDEX IF NOT EXISTS relief_notifications_org ON relief_notifications (org, id);
CREATE TABLE IF NOT EXISTS relief_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""
SAVE_EVERY = 1000  # blocks without notifications between two saves of the height read
QUEUE_LIMIT = 200  # per live subscriber; a stalled browser loses the oldest, never the inbox
KINDS = {
    "match.confirm": "matched",
    "shipment.report": "shipped",
    "receipt.report": "received",
    "match.cancel": "cancelled",
}
MESSAGES = {
    "matched": (
        "Matched: {item} {quantity} {unit_en} from {sender_en} to {shelter_en}",
        "マッチングが確定しました: {item_ja} {quantity}{unit}（{sender_ja} → {shelter_ja}）",
    ),
    "shipped": (
        "Shipped to you: {item} {quantity} {unit_en} from {sender_en}",
        "支援物資が発送されました: {item_ja} {quantity}{unit}（{sender_ja}より）",
    ),
    "received": (
        "Arrived at {shelter_en}: {item} {received} of {quantity} {unit_en} ({outcome}).",
        "{shelter_ja}に到着しました: {item_ja} {quantity}{unit}中 {received}{unit}を受領"
        "（{outcome_ja}）",
    ),
    "cancelled": (
        "Match cancelled: {item} {quantity} {unit_en} from {sender_en} to {shelter_en}",
        "マッチングが取り消されました: {item_ja} {quantity}{unit}（{sender_ja} → {shelter_ja}）",
    ),
}
OUTCOME_JA = {"full": "全数", "partial": "一部", "damaged": "破損あり"}


def _connect(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _row(row: tuple) -> dict[str, Any]:
    ident, org, kind, match, tx_id, height, at, body, read = row
    return {
        "id": ident,
        "org": org,
        "kind": kind,
        "match_id": match,
        "tx_id": tx_id,
        "height": height,
        "at": at,
        "read": bool(read),
        **json.loads(body),
    }


class Inbox:
    """Notifications of one node, with live subscribers. Use :func:`service_for`."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.path = node.data_dir / RELIEF_DB
        self._writer = _connect(self.path)
        self._writer.executescript(SCHEMA)
        self._local = threading.local()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = (
            defaultdict(set)
        )
        self._lock = threading.Lock()
        self._height: int | None = None  # the last block read (saved lazily, see _read_blocks)
        self._thread = threading.Thread(target=self._run, name="relief-inbox", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.node.listeners.append(self.on_block)
        self._thread.start()
        self._jobs.put(("catch_up", None))

    def close(self) -> None:
        if self.on_block in self.node.listeners:
            self.node.listeners.remove(self.on_block)
        self._jobs.put(("stop", None))
        self._thread.join(timeout=10)
        self._writer.close()

    def on_block(self, block: Block) -> None:
        """The node's listener: called on the commit path, so it only queues the block."""
        self._jobs.put(("block", block))

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every block committed before this call is in the inbox; ``False`` if
        that takes longer than ``timeout`` (a first catch-up on a long chain)."""
        try:
            self._call(lambda: None).result(timeout)
        except TimeoutError:
            return False
        return True

    def _call(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        self._jobs.put(("call", (fn, future)))
        return future

    def _run(self) -> None:
        while True:
            op, arg = self._jobs.get()
            if op == "stop":
                return
            try:
                if op == "call":
                    fn, future = arg
                    try:
                        future.set_result(fn())
                    except Exception as exc:
                        future.set_exception(exc)
                    continue
                head = self.node.head
                upto = arg.height if op == "block" else (head.height if head else -1)
                self._read_blocks(upto, arg if op == "block" else None)
            except Exception:  # never let one bad block stop the inbox
                log.exception("relief inbox: %s failed", op)

    # -- turning blocks into notifications ---------------------------------------------------

    def _last_height(self) -> int:
        if self._height is None:
            row = self._writer.execute("SELECT v FROM relief_meta WHERE k = 'height'").fetchone()
            self._height = -1 if row is None else int(row[0])
        return self._height

    def _read_blocks(self, upto: int, given: Block | None) -> None:
        """Turn blocks up to ``upto`` into notifications. Most blocks carry none: those cost
        no write at all; the height read so far is saved with the next notifications, and
        every ``SAVE_EVERY`` blocks (re-reading a few blocks after a restart is harmless, the
        inserts are idempotent)."""
        for height in range(self._last_height() + 1, upto + 1):
            if given is not None and given.height == height:
                header, items = given.header, list(zip(given.txs, given.results, strict=True))
            else:  # only the relief transactions of a stored block are read and decoded
                found = self.node.store.app_txs(height, "relief")
                if found is None:
                    return
                header, items = found[0], [(tx, result) for _, tx, result in found[1]]
            rows = self._notifications(header, items)
            self._height = height
            if not rows and height % SAVE_EVERY:
                continue
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                fresh = []
                for row in rows:
                    cursor = conn.execute(
                        "INSERT OR IGNORE INTO relief_notifications "
                        "(org, kind, match_id, tx_id, height, at, body) VALUES (?,?,?,?,?,?,?)",
                        row,
                    )
                    if cursor.rowcount:
                        fresh.append(cursor.lastrowid)
                conn.execute(
                    "INSERT OR REPLACE INTO relief_meta (k, v) VALUES ('height', ?)", (str(height),)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._height = None  # read it again from the file
                raise
            if fresh:
                self._publish(fresh)

    def _notifications(
        self, header: BlockHeader, items: list[tuple[Transaction, TxResult]]
    ) -> list[tuple]:
        state = None
        rows = []
        for tx, result in items:
            kind = KINDS.get(tx.type) if tx.app == "relief" else None
            if kind is None or result.status != "committed":
                continue
            state = state or self.node.store.state()
            if tx.type == "match.confirm":
                ids = [match_id(tx.id, i) for i in range(len(tx.payload["allocations"]))]
            else:
                ids = [tx.payload["match"]]
            for ident in ids:
                match = state.get("relief.match", ident)
                if match is None:
                    continue
                body = json.dumps(self._body(state, kind, match), ensure_ascii=False)
                for org in self._audience(kind, match):
                    rows.append((org, kind, ident, tx.id, header.height, header.timestamp, body))
        return rows

    @staticmethod
    def _audience(kind: str, match: dict[str, Any]) -> list[str]:
        if kind == "shipped":
            return [match["shelter"]]
        if kind == "received":
            return [match["sender"]]
        return [match["shelter"], match["sender"]]

    @staticmethod
    def _body(state: Any, kind: str, match: dict[str, Any]) -> dict[str, Any]:
        item = catalog.item(match["item"])
        shelter = state.get("identity.org", match["shelter"]) or {}
        sender = state.get("identity.org", match["sender"]) or {}
        receipt = match.get("receipt") or {}
        outcome = receipt.get("outcome", "")
        fields = {
            "item": item.name_en if item else match["item"],
            "item_ja": item.name_ja if item else match["item"],
            "quantity": match["quantity"],
            "unit": match["unit"],
            "unit_en": item.unit_en if item else match["unit"],
            "sender_en": sender.get("name_en", match["sender"]),
            "sender_ja": sender.get("name_ja", match["sender"]),
            "shelter_en": shelter.get("name_en", match["shelter"]),
            "shelter_ja": shelter.get("name_ja", match["shelter"]),
            "received": receipt.get("quantity", 0),
            "outcome": outcome,
            "outcome_ja": OUTCOME_JA.get(outcome, ""),
        }
        en, ja = MESSAGES[kind]
        return {
            "item": match["item"],
            "item_name": {"ja": fields["item_ja"], "en": fields["item"]},
            "quantity": match["quantity"],
            "unit": match["unit"],
            "shelter": match["shelter"],
            "sender": match["sender"],
            "message_en": en.format(**fields),
            "message_ja": ja.format(**fields),
        }

    # -- live subscribers ----------------------------------------------------------------

    def subscribe(self, org: str) -> asyncio.Queue:
        """A queue that receives ``org``'s new notifications; call from the event loop."""
        q: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        with self._lock:
            self._subscribers[org].add((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, org: str, q: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers[org] = {s for s in self._subscribers[org] if s[1] is not q}

    def _publish(self, ids: list[int]) -> None:
        placeholders = ",".join("?" * len(ids))
        rows = self._writer.execute(
            f"SELECT * FROM relief_notifications WHERE id IN ({placeholders}) ORDER BY id", ids
        ).fetchall()
        for row in rows:
            note = _row(row)
            with self._lock:
                targets = list(self._subscribers.get(note["org"], ()))
            for loop, q in targets:
                try:
                    loop.call_soon_threadsafe(_offer, q, note)
                except RuntimeError:  # the subscriber's loop is gone
                    self.unsubscribe(note["org"], q)

    # -- reads and marks -------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
        return conn

    def notifications(
        self, org: str, *, unread_only: bool = False, after_id: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """``org``'s notifications, newest first (or, with ``after_id``, oldest first after it)."""
        query = "SELECT * FROM relief_notifications WHERE org = ? AND id > ?"
        if unread_only:
            query += " AND read = 0"
        query += " ORDER BY id " + ("ASC" if after_id else "DESC") + " LIMIT ?"
        return [_row(r) for r in self._reader().execute(query, (org, after_id, limit))]

    def unread(self, org: str) -> int:
        row = (
            self._reader()
            .execute("SELECT count(*) FROM relief_notifications WHERE org = ? AND read = 0", (org,))
            .fetchone()
        )
        return row[0]

    def mark_read(self, org: str, ident: int | None = None) -> int:
        """Mark one of ``org``'s notifications (or all of them) read; return how many changed."""

        def mark() -> int:
            if ident is None:
                sql, args = "UPDATE relief_notifications SET read = 1 WHERE org = ?", (org,)
            else:
                sql = "UPDATE relief_notifications SET read = 1 WHERE org = ? AND id = ?"
                args = (org, ident)
            return self._writer.execute(sql, args).rowcount

        return self._call(mark).result(10)

    def exists(self, org: str, ident: int) -> bool:
        row = (
            self._reader()
            .execute("SELECT 1 FROM relief_notifications WHERE org = ? AND id = ?", (org, ident))
            .fetchone()
        )
        return row is not None


def _offer(q: asyncio.Queue, note: dict[str, Any]) -> None:
    if q.full():
        q.get_nowait()
    q.put_nowait(note)


_inboxes: weakref.WeakKeyDictionary[Node, Inbox] = weakref.WeakKeyDictionary()
_inboxes_lock = threading.Lock()


def service_for(node: Node) -> Inbox:
    """This node's inbox, started (and caught up) on first use."""
    with _inboxes_lock:
        inbox = _inboxes.get(node)
        if inbox is None:
            inbox = _inboxes[node] = Inbox(node)
            inbox.start()
        return inbox
