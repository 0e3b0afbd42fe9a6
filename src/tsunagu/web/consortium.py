"""The consortium API and page: peers and their agreement, block digests, blocks for catch-up.

``GET /api/v1/peers`` and ``/consortium`` show every node of the chain, its head, and whether
its copy agrees with the consortium's; ``/api/v1/consortium/*`` is what nodes ask each other.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tsunagu.errors import InternalError, InvalidInput, TsunaguError
from tsunagu.ledger.canonical import loads_json
from tsunagu.ledger.tx import MalformedTransaction, decode_tx
from tsunagu.node.forward import MAX_FORWARD
from tsunagu.node.peers import DIGEST_CHUNK, NODE_NS, block_digests
from tsunagu.node.wire import block_to_wire
from tsunagu.web.deps import durable, render, services

MAX_BLOCKS = 200


def _monitor(request: Request) -> Any:
    return services(request).node.consortium


def _self_report(request: Request) -> dict[str, Any]:
    node = services(request).node
    monitor = _monitor(request)
    if monitor is not None:
        return monitor.self_report()
    return {
        **node.status(),
        "url": str(request.base_url).rstrip("/"),
        "role": "solo",
        "sth": node.signed_tree_head(),
        "orderer": {"engine": "solo"},
        "pairs": {},
    }


def peers_view(request: Request) -> dict[str, Any]:
    monitor = _monitor(request)
    if monitor is not None:
        return monitor.view()
    me = _self_report(request)
    state = services(request).node.store.state()
    ids = sorted({key for key, _ in state.scan(NODE_NS)} | {me["node_id"]})
    nodes = []
    for node_id in ids:
        row: dict[str, Any] = {"node_id": node_id, "self": node_id == me["node_id"]}
        row["reachable"] = row["self"]
        if row["self"]:
            row.update(
                {k: me[k] for k in ("url", "role", "height", "head_hash", "tree_size")},
                root_hash=me["root_hash"],
                state_hash=me["state_hash"],
                sth_ok=True,
                agrees=True,
                diverging=False,
                first_difference=None,
                orderer=me["orderer"],
            )
        nodes.append(row)
    return {"node_id": me["node_id"], "reference": me["node_id"], "nodes": nodes}


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/api/v1/peers", tags=["consortium"])
    def peers(request: Request) -> dict[str, Any]:
        """Every node of the chain: URL, role, height, head hash, tree size and root, state
        hash, whether its signed tree head verifies, whether its copy agrees with the
        consortium's, and for a diverging copy the first height where it differs."""
        return peers_view(request)

    @r.get("/api/v1/consortium/self", tags=["consortium"])
    def self_report(request: Request) -> dict[str, Any]:
        """This node's head, signed tree head, role, ordering engine and its comparisons
        with its peers (what peers poll)."""
        return _self_report(request)

    @r.get("/api/v1/consortium/digests", tags=["consortium"])
    def digests(
        request: Request,
        start: Annotated[int, Query(ge=0)],
        end: Annotated[int, Query(ge=0)],
    ) -> dict[str, Any]:
        """SHA-256 per stored block ``start..end`` (at most 2,000): the header bytes, then
        the SHA-256 of each transaction's leaf and its stored result; ``null`` for a block
        this node does not have. Recomputed from the database on every request."""
        if end < start or end - start >= DIGEST_CHUNK:
            raise InvalidInput(
                f"Need start <= end < start + {DIGEST_CHUNK}.",
                f"start ≦ end < start + {DIGEST_CHUNK} にしてください。",
            )
        conn = services(request).node.store.reader()
        return {"start": start, "digests": block_digests(conn, start, end)}

    @r.get("/api/v1/consortium/blocks", tags=["consortium"])
    def blocks(
        request: Request,
        start: Annotated[int, Query(ge=0)],
        limit: Annotated[int, Query(ge=1, le=MAX_BLOCKS)] = 50,
    ) -> dict[str, Any]:
        """Whole blocks from ``start`` on, in the form nodes exchange them (header,
        signature, base64 leaves, results), for a node catching up or being repaired."""
        node = services(request).node
        head = node.head
        found = []
        conn = node.store.reader()
        for height in range(start, min(start + limit, (head.height + 1) if head else 0)):
            block = node.store.block(height, conn)
            if block is None:
                break
            found.append(block_to_wire(block))
        return {"blocks": found}

    @r.post("/api/v1/consortium/forward", tags=["consortium"])
    async def forward(request: Request) -> dict[str, Any]:
        """Signed transactions another node admitted, handed to this node to order (it is
        the consortium's proposer; see docs/protocol.md 7.6): the leaves one per line
        (``application/x-ndjson``). Each is admitted as ``POST /api/v1/tx`` admits it and
        ordered here. Answered once every one is committed or refused: ``{"results": [...]}``,
        one per line in order, ``{"ok": true, "height": h, "status": s}`` or
        ``{"problem": {...}}``."""
        node = services(request).node
        lines = [line for line in (await request.body()).split(b"\n") if line.strip()]
        if len(lines) > MAX_FORWARD:
            raise InvalidInput(
                f"At most {MAX_FORWARD} transactions per request.",
                f"1 回に送れる取引は {MAX_FORWARD} 件までです。",
            )
        admitted: list[Any] = []
        for line in lines:
            try:
                tx = decode_tx(loads_json(line))
                admitted.append(node.submit_queued(tx, propose_here=True))
            except TsunaguError as exc:
                admitted.append(exc)
            except ValueError as exc:
                admitted.append(MalformedTransaction(f"The line is not JSON: {exc}"))
        results: list[dict[str, Any]] = []
        for item in admitted:
            if isinstance(item, TsunaguError):
                results.append({"problem": item.problem()})
                continue
            try:
                receipt = await durable(item)
            except TsunaguError as exc:  # refused at admission, no quorum, timed out, ...
                results.append({"problem": exc.problem()})
            except Exception:
                results.append({"problem": InternalError().problem()})
            else:
                results.append({"ok": True, "height": receipt.height, "status": receipt.status})
        return {"results": results}

    @r.get("/consortium", include_in_schema=False)
    def page(request: Request) -> Response:
        view = peers_view(request)
        diverging = [n for n in view["nodes"] if n.get("diverging")]
        return render(request, "consortium.html", view=view, diverging=diverging)

    return r
