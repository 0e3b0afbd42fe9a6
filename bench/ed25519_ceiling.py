"""This machine's Ed25519 verifications per second on one core (``cryptography``).

The ceiling the other targets refer to: every benchmark measures it again in its own run
(:func:`common.ed25519_ceiling`) and reports its figures as a ratio to it. Best of several
short single-threaded runs, 64 keys, 400-byte messages, public keys decoded beforehand.
Also reported: two threads at once (``cryptography`` releases the GIL while it verifies),
which is what a node can get from both cores.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import common


def two_threads(seconds: float = 1.0) -> float:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    items = []
    for _ in range(256):
        message = os.urandom(400)
        items.append((key.public_key(), key.sign(message), message))
    counts = [0, 0]

    def run(slot: int, deadline: float) -> None:
        while time.perf_counter() < deadline:
            for public, signature, message in items:
                public.verify(signature, message)
            counts[slot] += len(items)

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i, start + seconds)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    machine = common.machine()
    ceiling = common.ed25519_ceiling(runs=args.runs, seconds=args.seconds)
    both = two_threads()
    metrics = [
        common.metric(
            "Ed25519 verify, one core (the ceiling)", float(ceiling["verifies_per_s"]), "verifies/s"
        ),
        common.metric(
            "Ed25519 verify, median of the runs", float(ceiling["median_per_s"]), "verifies/s"
        ),
        common.metric(
            "Ed25519 verify, two threads", both, "verifies/s", ceiling=ceiling["verifies_per_s"]
        ),
    ]
    common.print_metrics("ed25519_ceiling", ceiling, metrics)
    common.write_result("ed25519_ceiling", machine, ceiling, metrics, vars(args))


if __name__ == "__main__":
    main()
