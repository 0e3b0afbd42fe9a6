"""Watching the other nodes: heads, signed tree heads, and whether their copies agree.

Each node polls its peers (``GET /api/v1/consortium/self``) every few seconds: height, head
hash, tree size and root, state hash, the peer's signed tree head (checked against the node
key the genesis registered) and the peer's own view of who agrees with whom.

Two copies *agree* when every block they both hold is byte-for-byte the same: each node serves
a digest per block (``GET /api/v1/consortium/digests``), SHA-256 over the stored header bytes
and the stored leaves and results of its transactions, recomputed from SQLite on every request,
so a copy damaged on disk shows up even if its head looks fine. A quick check compares the
digest at the highest common height on every poll; a full audit compares every height every
``audit_interval`` seconds and whenever a peer restarts or the quick check fails, and finds
the first height where the copies differ.

Copies also agree on their ``state`` tables: each node publishes digests of its live state
table taken at matching heights (see :mod:`tsunagu.node.state_digest`), and a pair whose
digests differ at the highest height both hold disagrees ("state differs at height H") even
when every block is the same.

A node is flagged as diverging when it disagrees with the node most others agree with (each
node's report of its own comparisons is merged), so every node's page flags the same node,
the damaged one included.

Each node's report also says whether etcd can order now (``orderer.quorum``). The orderer
itself learns that it lost the quorum only when a write fails, so the monitor asks etcd on
every poll (a linearizable read of one key, which needs the quorum), and ``view`` (the peers
API and page) asks again when the last answer is older than ``QUORUM_FRESH`` seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
import time
from typing import Any

import httpx

from tsunagu.ledger.canonical import canonical
from tsunagu.ledger.keys import verify_signature
from tsunagu.node import state_digest

log = logging.getLogger(__name__)

POLL_EVERY = 2.0
QUORUM_FRESH = 1.0  # seconds a quorum probe's answer stays current for view()
QUORUM_TIMEOUT = 0.5  # seconds per etcd endpoint: a read with a quorum takes milliseconds
DIGEST_CHUNK = 2000
NODE_NS = "identity.node"


def block_digests(conn: sqlite3.Connection, start: int, end: int) -> list[str | None]:
    """SHA-256 of each stored block ``start..end`` (header bytes, then for each transaction
    the SHA-256 of its leaf and its stored result); ``None`` for a missing block."""
    rows = conn.execute(
        "SELECT height, header, first_index FROM blocks WHERE height BETWEEN ? AND ?",
        (start, end),
    ).fetchall()
    headers = {h: bytes(header) for h, header, _ in rows}
    digests: dict[int, Any] = {}
    for h, header, _ in rows:
        digests[h] = hashlib.sha256(bytes(header))
    if rows:
        low = min(first for _, _, first in rows)
        after = conn.execute(
            "SELECT first_index FROM blocks WHERE height > ? ORDER BY height LIMIT 1", (end,)
        ).fetchone()
        query = "SELECT height, leaf, result FROM txs WHERE log_index >= ?"
        args: tuple[int, ...] = (low,)
        if after is not None:
            query += " AND log_index < ?"
            args = (low, after[0])
        for h, leaf, result in conn.execute(query + " ORDER BY log_index", args):
            digest = digests.get(h)
            if digest is not None:
                digest.update(hashlib.sha256(bytes(leaf)).digest())
                digest.update(result.encode() if isinstance(result, str) else bytes(result))
    return [digests[h].hexdigest() if h in headers else None for h in range(start, end + 1)]


def _first_difference(mine: list[str | None], theirs: list[str | None], start: int) -> int | None:
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        if a is None or b is None or a != b:
            return start + i
    return None


class PeerMonitor:
    """Polls the peers of one node in a background thread; :meth:`view` is the result."""

    def __init__(
        self,
        node: Any,
        url: str,
        role: str,
        peer_urls: list[str],
        engine: Any = None,
        *,
        interval: float = POLL_EVERY,
        audit_interval: float = 30.0,
        state_every_blocks: int = 100,
    ) -> None:
        self.node = node
        self.url = url.rstrip("/")
        self.role = role
        self.static = [u.rstrip("/") for u in peer_urls]
        self.engine = engine
        self.interval = interval
        self.audit_interval = audit_interval
        self.started = time.time()
        self.registry: dict[str, dict[str, Any]] = {}  # node id -> {"url", "role"} from etcd
        self.peers: dict[str, dict[str, Any]] = {}  # url -> what was last learnt
        self.pairs: dict[str, dict[str, Any]] = {}  # node id -> my comparison with it
        self._audited: dict[str, tuple[float, float]] = {}  # url -> (when, peer start)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=3.0)
        # This node's copy differs from the one most nodes agree with (set by each poll): it
        # then takes no writes (see EtcdOrderer.submit) until it is repaired.
        self.diverging = False
        self._quorum: bool | None = None  # the last probe's answer (None: not asked yet)
        self._quorum_at = float("-inf")  # time.monotonic() of that answer
        self._probing = threading.Lock()
        store = node.store
        self.state = state_digest.StateDigests(
            store.path, store.path.parent, state_every_blocks, min(audit_interval, 10.0)
        )

    def _state_refresh(self, force: bool = False) -> None:
        try:
            self.state.refresh(force)
        except sqlite3.Error:
            log.exception("state digest")

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        try:
            checked = self.state.check_at_startup()
        except sqlite3.Error:
            log.exception("state digest at start-up")
            checked = None
        if checked is None:
            self._state_refresh(force=True)
        self.node.listeners.append(self.state.on_block)
        self._thread = threading.Thread(target=self._loop, name="peer-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(ValueError):
            self.node.listeners.remove(self.state.on_block)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def urls(self) -> list[str]:
        found = list(self.static)
        for entry in self.registry.values():
            url = str(entry.get("url", "")).rstrip("/")
            if url and url not in found:
                found.append(url)
        return [u for u in found if u != self.url]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:
                log.exception("peer monitor")

    # -- what this node says about itself ------------------------------------------------------

    def self_report(self) -> dict[str, Any]:
        node = self.node
        status = node.status()
        info = getattr(node.orderer, "info", None)
        orderer = info() if info else {"engine": "solo"}
        if "quorum" in orderer:
            orderer["quorum"] = self.quorum(probe=False)
        return {
            **status,
            "url": self.url,
            "role": self.role,
            "started": self.started,
            "sth": node.signed_tree_head(),
            "orderer": orderer,
            "pairs": self.pairs,
            "state_digests": self.state.published(),
            "state_digest_ms": round(self.state.last_ms, 1),
            "state_startup_check": self.state.startup,
        }

    # -- polling -----------------------------------------------------------------------------

    def quorum(self, probe: bool = True) -> bool | None:
        """Whether etcd can order now: ``False`` while the orderer knows it cannot (it then
        probes every half second itself); otherwise the answer of a linearizable read, asked
        again (when ``probe``) once the last one is older than ``QUORUM_FRESH`` seconds."""
        engine = self.engine
        healthy = getattr(engine, "healthy", None)
        if engine is None or getattr(engine, "keys", None) is None or not healthy:
            return healthy
        fresh = time.monotonic() - self._quorum_at < QUORUM_FRESH
        # One probe at a time: a caller that finds one running takes the last answer.
        if probe and not fresh and self._probing.acquire(blocking=False):
            try:
                self._probe_quorum()
            finally:
                self._probing.release()
        return bool(engine.healthy) and self._quorum is not False

    def _probe_quorum(self) -> None:
        engine = self.engine
        try:
            engine.client.range(engine.keys.chain, keys_only=True, timeout=QUORUM_TIMEOUT)
            answer = True
        except Exception:  # no endpoint could serve a linearizable read: no quorum
            answer = False
        self._quorum, self._quorum_at = answer, time.monotonic()

    def refresh(self) -> None:
        self._state_refresh()
        engine = self.engine
        if engine is not None and engine.keys is not None:
            with self._probing:
                self._probe_quorum()
            with contextlib.suppress(Exception):
                self.registry = engine.registry(timeout=1.0)
        for url in self.urls():
            self.peers[url] = self._poll(url)
        # Only a located difference counts here: a comparison that failed (a peer too slow
        # to answer) also leaves a copy "not agreeing", and must not stop this node's writes.
        self.diverging = any(
            row["self"]
            and row.get("diverging")
            and (row.get("first_difference") is not None or row.get("state_differs_at") is not None)
            for row in self.view()["nodes"]
        )

    def _poll(self, url: str) -> dict[str, Any]:
        try:
            response = self._client.get(url + "/api/v1/consortium/self")
            response.raise_for_status()
            report = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return {"url": url, "reachable": False, "error": type(exc).__name__, "at": time.time()}
        report["reachable"] = True
        report["sth_ok"] = self._check_sth(report)
        node_id = report.get("node_id")
        if isinstance(node_id, str):
            previous = self.pairs.get(node_id, {})
            pair = self._compare(url, report)
            found = state_digest.compare(self.state.published(), report.get("state_digests"))
            if found is not None:
                pair["state_height"], pair["state_agrees"] = found
            else:  # no common height yet: keep the last comparison
                pair["state_height"] = previous.get("state_height")
                pair["state_agrees"] = previous.get("state_agrees")
            self.pairs[node_id] = pair
        return report

    def _check_sth(self, report: dict[str, Any]) -> bool:
        sth = report.get("sth") or {}
        entry = self.node.store.state().get(NODE_NS, str(sth.get("node_id")))
        try:
            body = {
                k: sth[k] for k in ("chain_id", "node_id", "tree_size", "root_hash", "timestamp")
            }
            key = bytes.fromhex(entry["public_key"]) if entry else b""
            return bool(entry) and verify_signature(
                key, bytes.fromhex(sth["signature"]), canonical(body)
            )
        except (KeyError, TypeError, ValueError):
            return False

    def _digests(self, url: str, start: int, end: int) -> list[str | None]:
        response = self._client.get(
            url + "/api/v1/consortium/digests", params={"start": start, "end": end}
        )
        response.raise_for_status()
        return response.json()["digests"]

    def _compare(self, url: str, report: dict[str, Any]) -> dict[str, Any]:
        """Do my copy and the peer's agree on every block both hold? Where do they differ?"""
        head = self.node.head
        common = min(head.height if head else -1, int(report.get("height", -1)))
        previous = self.pairs.get(report.get("node_id", ""), {})
        if common < 0:
            return {"agrees": False, "first_difference": 0, "checked": time.time()}
        conn = self.node.store.reader()
        try:
            quick_ok = block_digests(conn, common, common) == self._digests(url, common, common)
            when, their_start = self._audited.get(url, (0.0, -1.0))
            due = (
                not quick_ok
                or not previous.get("agrees", False)
                or their_start != report.get("started")
                or time.time() - when > self.audit_interval
            )
            first = previous.get("first_difference")
            if due:
                first = None
                for start in range(0, common + 1, DIGEST_CHUNK):
                    end = min(common, start + DIGEST_CHUNK - 1)
                    first = _first_difference(
                        block_digests(conn, start, end), self._digests(url, start, end), start
                    )
                    if first is not None:
                        break
                self._audited[url] = (time.time(), report.get("started", 0.0))
            elif not quick_ok:
                first = common
        except (httpx.HTTPError, ValueError, KeyError, sqlite3.DatabaseError) as exc:
            return {"agrees": False, "first_difference": None, "error": str(exc)[:200]}
        return {"agrees": first is None, "first_difference": first, "checked": time.time()}

    # -- the picture -------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """Every node of the chain with its head and whether its copy agrees with the
        consortium's (the copy most nodes agree with)."""
        self.quorum()  # this node's own answer is then at most QUORUM_FRESH seconds old
        me = self.self_report()
        reports: dict[str, dict[str, Any]] = {me["node_id"]: me}
        for report in list(self.peers.values()):
            if report.get("reachable") and isinstance(report.get("node_id"), str):
                reports[report["node_id"]] = report
        registered = [key for key, _ in self.node.store.state().scan(NODE_NS)]
        ids = sorted(set(registered) | set(reports) | set(self.registry))

        def pair(a: str, b: str) -> dict[str, Any] | None:
            found = reports.get(a, {}).get("pairs", {}).get(b)
            return found if found is not None else reports.get(b, {}).get("pairs", {}).get(a)

        def agrees(a: str, b: str) -> bool:
            if a == b:
                return True
            found = pair(a, b)
            return bool(found and found.get("agrees") and found.get("state_agrees") is not False)

        live = [i for i in ids if i in reports]
        reference = max(
            live, key=lambda i: (sum(agrees(i, j) for j in live), i == me["node_id"], i)
        )
        nodes = []
        for node_id in ids:
            report = reports.get(node_id)
            entry = self.registry.get(node_id, {})
            row: dict[str, Any] = {
                "node_id": node_id,
                "url": (report or {}).get("url") or entry.get("url"),
                "role": (report or {}).get("role") or entry.get("role"),
                "self": node_id == me["node_id"],
                "reachable": report is not None,
            }
            if report is not None:
                found = pair(reference, node_id)
                agree = agrees(reference, node_id)
                blocks_agree = bool(found and found.get("agrees"))
                row.update(
                    height=report.get("height"),
                    head_hash=report.get("head_hash"),
                    tree_size=report.get("tree_size"),
                    root_hash=report.get("root_hash"),
                    state_hash=report.get("state_hash"),
                    sth_ok=True if node_id == me["node_id"] else report.get("sth_ok"),
                    agrees=agree,
                    diverging=not agree and found is not None,
                    first_difference=None
                    if agree or found is None or blocks_agree
                    else found.get("first_difference"),
                    state_differs_at=found.get("state_height")
                    if found is not None and found.get("state_agrees") is False
                    else None,
                    state_startup_check=report.get("state_startup_check"),
                    orderer=report.get("orderer"),
                )
            nodes.append(row)
        return {"node_id": me["node_id"], "reference": reference, "nodes": nodes}
