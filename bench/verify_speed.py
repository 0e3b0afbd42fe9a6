"""``tsunagu verify`` speed: transactions re-checked per second on a chain of >= 100,000.

The chain is built in-process through a real node (solo orderer, blocks of 500): 1,000
signers registered at genesis and by ``member.add``, then pre-signed ``documents/register``
transactions handed to ``node.submit`` (signatures, hash chain, Merkle log, state: all real).
It is kept in ``bench/work/verify_speed`` and reused while it holds the requested count.

Measured: :func:`tsunagu.node.verify.verify_chain` (what ``tsunagu verify`` runs, default
workers: one process per CPU) over the whole chain, ``--repeat`` times. Right before each run
the Ed25519 ceiling is measured again, so that each run's ratio compares the verifier with
the machine as it was at that moment (the machine is shared and its speed drifts). Each run
records transactions / its reported seconds, its ratio, the load average, and the CPU time
spent per transaction by the replaying process and by the signature workers (CPU time is far
less disturbed by neighbours than wall time, so it shows where the time goes). The reported
run is the one with the best ratio; every run is in ``params.runs``.
Also timed: the ``tsunagu verify`` command itself, start-up included.

Target: >= 0.7 x the Ed25519 ceiling (signatures are checked on every core while one process
decodes and replays).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import chain
import common


def _cpu(before: resource.struct_rusage, after: resource.struct_rusage) -> float:
    """Microseconds of CPU time (user and system) between two ``getrusage`` readings."""
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used * 1e6


def build(data: Path, count: int, signers: int) -> None:
    from tsunagu.node.node import Node
    from tsunagu.node.orderer import SoloOrderer

    chain.create_chain(data, signers)
    step = 20000
    node = Node(data, chain.contracts(), SoloOrderer())
    node.start()
    try:
        started = time.perf_counter()
        done = 0
        while done < count:
            n = min(step, count - done)
            bodies = chain.presign(n, signers, start=done, tag="verify")
            txs = chain.decode_all(bodies)
            pending = [node.submit(tx) for tx in txs]
            for p in pending:
                receipt = p.future.result(120)
                assert receipt.status == "committed", receipt
            done += n
            print(
                f"   built {done:,} transactions ({done / (time.perf_counter() - started):,.0f}/s)",
                flush=True,
            )
    finally:
        node.stop()
    (data / "bench-built.json").write_text(json.dumps({"count": count, "signers": signers}))


def ensure(data: Path, count: int, signers: int) -> None:
    marker = data / "bench-built.json"
    if marker.exists() and json.loads(marker.read_text()) == {"count": count, "signers": signers}:
        return
    print(f"   building a chain of {count:,} transactions in {data} ...", flush=True)
    build(data, count, signers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--signers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None, help="verify_chain workers")
    parser.add_argument("--no-cli", action="store_true", help="skip timing the command")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best ratio is reported")
    args = parser.parse_args()

    machine = common.machine()
    data = common.WORK / "verify_speed"
    ensure(data, args.count, args.signers)

    from tsunagu.node.verify import verify_chain

    runs = []
    for i in range(args.repeat):
        ceiling = common.ed25519_ceiling()  # the machine right before this run
        load = common.loadavg()
        before_self = resource.getrusage(resource.RUSAGE_SELF)
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = verify_chain(data, chain.contracts(), workers=args.workers)
        after_self = resource.getrusage(resource.RUSAGE_SELF)
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if not report.ok:
            raise SystemExit(f"the bench chain does not verify: {report}")
        rate = report.transactions / report.seconds
        c = ceiling["verifies_per_s"]
        run = {
            "seconds": round(report.seconds, 3),
            "tx_per_s": round(rate),
            "ceiling_per_s": c,
            "ratio": round(rate / c, 3),
            "loadavg_before": load,
            "loadavg_after": common.loadavg(),
            # The workers are this process's children: their time counts once they are joined.
            "cpu_us_per_tx_replay": round(_cpu(before_self, after_self) / report.transactions),
            "cpu_us_per_tx_workers": round(
                _cpu(before_children, after_children) / report.transactions
            ),
            "ceiling": ceiling,
            "report": report,
        }
        runs.append(run)
        print(
            f"   run {i + 1}: {rate:,.0f} tx/s, ceiling {c:,}/s right before: "
            f"{rate / c:.2f} x (load {load}); CPU per tx: replay "
            f"{run['cpu_us_per_tx_replay']} us, workers {run['cpu_us_per_tx_workers']} us",
            flush=True,
        )
    # The machine is shared: the run least disturbed by its neighbours is the best ratio.
    best = max(runs, key=lambda r: r["ratio"])
    report, ceiling = best["report"], best["ceiling"]
    rate = report.transactions / report.seconds
    c = ceiling["verifies_per_s"]
    metrics = [
        common.metric(
            "verify_chain (tsunagu verify)",
            rate,
            "tx/s",
            target=0.7 * c,
            target_text=">= 0.7 x ceiling",
            ceiling=c,
        ),
    ]
    params = {
        **vars(args),
        "transactions": report.transactions,
        "blocks": report.blocks,
        "seconds": round(report.seconds, 3),
        "runs": [{k: v for k, v in r.items() if k != "report"} for r in runs],
    }
    if not args.no_cli:
        env = dict(__import__("os").environ)
        env["PYTHONPATH"] = str(common.SRC)
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "tsunagu.cli", "verify", "--data", str(data)],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        match = re.search(r"(\d+) transactions verified", done.stdout)
        transactions = int(match.group(1)) if match else report.transactions
        metrics.append(
            common.metric(
                "tsunagu verify command, start-up included", transactions / wall, "tx/s", ceiling=c
            )
        )
        params["cli_output"] = done.stdout.strip()
        params["cli_seconds"] = round(wall, 3)
    common.print_metrics("verify_speed", ceiling, metrics)
    print(
        f"   {report.blocks:,} blocks, {report.transactions:,} transactions "
        f"in {report.seconds:.2f} s"
    )
    common.write_result("verify_speed", machine, ceiling, metrics, params)


if __name__ == "__main__":
    main()
