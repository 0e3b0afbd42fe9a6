"""A 3-node local consortium over a real etcd cluster: committed tx/s, latency, catch-up.

The consortium is the real thing (``tsunagu.cluster.launch``: three etcd members and three
``tsunagu serve --orderer etcd`` processes on loopback) on a fresh benchmark chain whose
genesis registers the three node keys and ``--signers`` staff keys. ``--clients`` concurrent
clients (asyncio, one keep-alive connection each) are spread over all three nodes, client c
posting to node c % 3 pre-signed ``documents/register`` envelopes to ``POST /api/v1/tx`` and
waiting for the ``201`` (the block is ordered in etcd and durable on that node).

Figures:

* committed tx/s: acknowledged transactions over the measured phase, **and** the same count
  over the time until all three nodes hold every one of them (committed on all three);
* p50/p99 latency of the acknowledged writes;
* catch-up: node 3 is killed (``kill -9``), a second load runs on nodes 1 and 2, node 3 is
  restarted, and the blocks and transactions it applies per second (each one checked: proposer
  signature, every transaction signature, re-execution, state hash, log root) are measured from
  its first answer to the moment it reaches the others' head; compared with the node's own
  verify rate (``verify_chain`` on its data after the run, transactions per second).

Targets: >= 2,000 tx/s committed on all three; catch-up >= 0.5 x the verify rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import chain
import common
import httpx
from commit_http import children_cpu, cpu_seconds, load, request

from tsunagu import cluster
from tsunagu.ledger.keys import SigningKey
from tsunagu.ledger.tx import build_tx

NODES = 3


def node_keys() -> list[tuple[str, SigningKey]]:
    import hashlib

    return [(chain.NODE_ID, chain.node_key())] + [
        (f"bench-node-{i}", SigningKey.from_seed(hashlib.sha256(f"node {i}".encode()).digest()))
        for i in range(2, NODES + 1)
    ]


def create_chain(root: Path, signers: int) -> list[Path]:
    """The benchmark chain with three registered nodes, copied to three data folders."""
    from tsunagu.node.node import Node, write_node_key

    if root.exists():
        shutil.rmtree(root)
    first = root / "node-1"
    keys = node_keys()
    write_node_key(first, keys[0][0], keys[0][1])
    node = Node(first, chain.contracts())
    staff = chain.signer_keys(signers)
    payload = chain.genesis_payload(staff[: chain.GENESIS_SIGNERS])
    payload["nodes"] += [
        {"id": ident, "public_key": key.public_key.hex(), "org": chain.OPERATOR}
        for ident, key in keys[1:]
    ]
    try:
        genesis = build_tx(chain.CHAIN_ID, "identity", "genesis", payload, chain.admin_key(), 1)
        node.create_chain(chain.CHAIN_ID, genesis)
        node.start()
        pending = [
            node.submit_signed(
                chain.admin_key(),
                "identity",
                "member.add",
                {"public_key": k.public_key.hex(), "org": chain.MUNICIPALITY, "roles": ["staff"]},
            )
            for k in staff[chain.GENESIS_SIGNERS :]
        ]
        for p in pending:
            assert p.future.result(60).status == "committed"
    finally:
        node.stop()
    dirs = [first]
    for i, (ident, key) in enumerate(keys[1:], start=2):
        target = root / f"node-{i}"
        target.mkdir()
        cluster._copy_db(first / "chain.db", target / "chain.db")
        write_node_key(target, ident, key)
        dirs.append(target)
    return dirs


def free_base() -> int:
    for base in range(20000, 32400, 400):  # below Linux's ephemeral ports (32768 and up)
        try:
            for port in [base + i for i in range(NODES)] + [base + 100 + i for i in range(NODES)]:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            for port in [base + 200 + i for i in range(NODES)]:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise SystemExit("no free ports")


def lanes_for(bodies: list[dict[str, Any]], clients: int, signers: int) -> list[list[bytes]]:
    lanes: list[list[bytes]] = [[] for _ in range(clients)]
    for n, body in enumerate(bodies):
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        lanes[(n % signers) % clients].append(request(raw))
    return lanes


# One client for every poll: httpx.get() builds a new client (and its TLS context) per call,
# about 30 ms of CPU, which the catch-up measurement's polling every 20 ms would take from
# the node it measures.
HTTP = httpx.Client(timeout=10)


def status(url: str) -> dict[str, Any]:
    return HTTP.get(url + "/api/v1/status").json()


def wait_tree_size(urls: list[str], size: int, timeout: float = 600) -> float:
    """Seconds (perf_counter) at which every node's log holds at least ``size`` leaves."""
    deadline = time.monotonic() + timeout
    while True:
        if all(status(u)["tree_size"] >= size for u in urls):
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise SystemExit("nodes did not converge")
        time.sleep(0.02)


def consortium_cpu(info: dict[str, Any]) -> dict[str, float]:
    """CPU seconds so far of the nodes (with their worker processes) and the etcd members."""
    out = {"nodes": 0.0, "etcd": 0.0}
    for group, entries in (("nodes", info["nodes"]), ("etcd", info["etcd"])):
        for entry in entries:
            try:
                out[group] += cpu_seconds(entry["pid"]) + children_cpu(entry["pid"])
            except OSError:
                continue
    return out


def orderer(url: str) -> dict[str, Any]:
    return HTTP.get(url + "/api/v1/consortium/self").json()["orderer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=96)
    parser.add_argument("--per-client", type=int, default=100, help="measured requests each")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--signers", type=int, default=960)
    parser.add_argument("--catch-up-txs", type=int, default=20000)
    parser.add_argument("--block-max-txs", type=int, default=500)
    parser.add_argument("--block-max-wait-ms", type=int, default=10)
    parser.add_argument(
        "--catch-up-only",
        action="store_true",
        help="skip the measured load: only the catch-up part, printed and not recorded",
    )
    parser.add_argument(
        "--profile-catch-up",
        metavar="FILE",
        help="record the restarted node with py-spy (--threads, raw format) into FILE",
    )
    args = parser.parse_args()
    if args.signers % args.clients:
        raise SystemExit("--signers must be a multiple of --clients")

    machine = common.machine()
    ceiling = common.ed25519_ceiling()
    root = common.WORK / "consortium"
    print("creating the chain ...", flush=True)
    dirs = create_chain(root, args.signers)
    ids = [(ident, "voting") for ident, _ in node_keys()]
    per_client = args.warmup + args.per_client
    rounds = 0 if args.catch_up_only else -(-(per_client * args.clients) // args.signers)
    bodies = chain.presign(rounds * args.signers, args.signers, tag="consortium") if rounds else []
    lanes = [lane[:per_client] for lane in lanes_for(bodies, args.clients, args.signers)]
    extra = ["--block-max-txs", str(args.block_max_txs)]
    extra += ["--block-max-wait-ms", str(args.block_max_wait_ms)]
    base = free_base()
    print("starting 3 etcd members and 3 nodes ...", flush=True)
    info = cluster.launch(root, dirs, ids, base, extra)
    urls = [n["url"] for n in info["nodes"]]
    ports = [int(u.rsplit(":", 1)[1]) for u in urls]
    try:
        if args.catch_up_only:
            result = {"statuses": {}, "seconds": 1.0, "start": 0.0, "errors": []}
            ok, all_three, engines, lat_ms = 0, 0.0, [], [0.0]
        else:
            snaps: list[dict[str, float]] = []

            def cpu_total() -> float:  # called when the measured phase starts and as each
                snaps.append(consortium_cpu(info))  # client finishes: the last is its end
                return sum(snaps[-1].values())

            result = asyncio.run(load(ports, lanes, args.warmup, cpu_total))
            cpu = {group: snaps[-1][group] - snaps[0][group] for group in snaps[0]}
            ok = result["statuses"].get(201, 0)
            # Every acknowledged transaction is in its node's log by now: wait for all three.
            everywhere = wait_tree_size(urls, max(status(u)["tree_size"] for u in urls))
            all_three = ok / (everywhere - result["start"])
            engines = [orderer(u) for u in urls]
            lat_ms = [x * 1000 for x in result["latencies"]]

        # Catch-up: node 3 is killed, nodes 1 and 2 take more writes, node 3 restarts.
        victim = info["nodes"][2]
        os.kill(victim["pid"], signal.SIGKILL)
        time.sleep(0.5)
        seq_next = rounds + 1
        more = chain.presign(args.catch_up_txs, args.signers, first_seq=seq_next, tag="catch-up")
        catch_lanes = lanes_for(more, args.clients, args.signers)
        asyncio.run(load(ports[:2], catch_lanes, 0))
        target = status(urls[0])
        victim["pid"] = cluster._spawn(victim["argv"], root / "node-3.log")
        cluster.write(root, info)  # so that cluster.down stops the restarted node too
        spy = None
        if args.profile_catch_up:
            py_spy = str(Path(sys.executable).parent / "py-spy")
            # Only samples that hold the GIL (the node's threads share one), sampled without
            # pausing the node: what each thread spends of the one core Python code gets.
            options = ["--threads", "--gil", "--nonblocking", "-f", "raw", "-r", "100"]
            options += ["-o", args.profile_catch_up]
            spy = subprocess.Popen(
                [py_spy, "record", *options, "-p", str(victim["pid"])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        began_h = None
        while True:
            try:
                got = status(urls[2])
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            now = time.perf_counter()
            if began_h is None:
                began_h, began_t, began_size = got["height"], now, got["tree_size"]
            if got["height"] >= target["height"]:
                break
            time.sleep(0.02)
        catching_engine = orderer(urls[2])
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            spy.wait(timeout=60)
        caught_blocks = target["height"] - began_h
        caught_txs = target["tree_size"] - began_size
        caught_s = max(now - began_t, 1e-6)
    finally:
        cluster.down(root)

    from tsunagu.node.verify import verify_chain

    report = verify_chain(dirs[2], chain.contracts())
    verify_rate = report.transactions / report.seconds
    blocks_per_s = caught_blocks / caught_s if caught_blocks else 0.0
    txs_per_s = caught_txs / caught_s if caught_txs else 0.0
    metrics = [
        common.metric(
            "committed on all three nodes (clients over all nodes)",
            all_three,
            "tx/s",
            target=2000,
            target_text=">= 2,000 tx/s",
            ceiling=ceiling["verifies_per_s"],
        ),
        common.metric("acknowledged by the answering node", ok / result["seconds"], "tx/s"),
        common.metric("latency p50", common.percentile(lat_ms, 50), "ms", higher_is_better=False),
        common.metric("latency p99", common.percentile(lat_ms, 99), "ms", higher_is_better=False),
        common.metric("catch-up of a node that was down", blocks_per_s, "blocks/s"),
        common.metric(
            "catch-up of a node that was down (transactions)",
            txs_per_s,
            "tx/s",
            target=0.5 * verify_rate,
            target_text=f">= 0.5 x its verify rate = {0.5 * verify_rate:,.0f} tx/s",
        ),
        common.metric("verify rate of that node (verify_chain)", verify_rate, "tx/s"),
    ]
    if not args.catch_up_only:
        # Where the machine's time went while the measured load ran: CPU seconds of every
        # consortium process per acknowledged transaction (the load generator apart). With
        # ``cores`` cores, no run can commit more than cores / (this) transactions a second.
        per_tx = {group: seconds * 1000 / max(ok, 1) for group, seconds in cpu.items()}
        metrics += [
            common.metric(
                "CPU per committed tx: 3 nodes + 3 etcd members",
                sum(per_tx.values()),
                "ms",
                higher_is_better=False,
            ),
            common.metric("CPU per committed tx: of which etcd", per_tx["etcd"], "ms"),
            common.metric(
                "CPU per committed tx: load generator",
                result["client_cpu"] * 1000 / max(sum(map(len, lanes)), 1),  # warm-up too
                "ms",
                higher_is_better=False,
            ),
        ]
    params = {
        **vars(args),
        "nodes": NODES,
        "etcd_members": NODES,
        "statuses": result["statuses"],
        "orderers_after_load": engines,
        "errors": result["errors"],
        "catch_up": {
            "blocks": caught_blocks,
            "transactions": caught_txs,
            "seconds": round(caught_s, 3),
            "from_height": began_h,
            "orderer": catching_engine,
        },
    }
    notes = [
        "All processes (3 etcd members, 3 nodes, the load generator) share this machine's cores.",
        "Catch-up is timed from the restarted node's first answer, so process start-up is not "
        "counted; blocks it applied before answering are not counted either.",
    ]
    if args.catch_up_only:
        metrics = metrics[4:]
        print(json.dumps(params["catch_up"], indent=1))
    common.print_metrics("consortium", ceiling, metrics)
    if not args.catch_up_only:
        common.write_result("consortium", machine, ceiling, metrics, params, notes)


if __name__ == "__main__":
    main()
