"""Shared helpers for the benchmarks: machine description, the Ed25519 ceiling, results files.

Every benchmark measures the ceiling (this machine's single-core Ed25519 verifications per
second with ``cryptography``) in the same run, because the targets are stated relative to it
and because the machine's speed drifts (other work on it, CPU frequency, noisy neighbours).

Results are written to ``bench/results/<name>.json``::

    {
      "name": "commit_inprocess",
      "machine": {"cpu_model", "cores", "python", "date", "loadavg_start", ...},
      "ceiling": {"verifies_per_s", "runs", "seconds_per_run", "message_bytes"},
      "metrics": [
        {"metric", "value", "unit", "target", "target_text", "ok", "ratio_to_ceiling"}
      ],
      "params": {...},      # what was run (counts, block sizes, ...)
      "notes": [...]
    }
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WORK = BENCH / "work"  # scratch data (gitignored)

# Run from a checkout without installing; TSUNAGU_BENCH_SRC points at another source tree
# (for instance a copy of an older revision) to compare the same benchmark across versions.
SRC = Path(os.environ.get("TSUNAGU_BENCH_SRC", ROOT / "src")).resolve()
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    import cryptography

    return {
        "cpu_model": cpu_model(),
        "cores": cores(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cryptography": cryptography.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "loadavg_start": loadavg(),
    }


def ed25519_ceiling(runs: int = 5, seconds: float = 0.6, message_bytes: int = 400) -> dict:
    """Ed25519 verifications per second on one core (one thread), with ``cryptography``.

    Verifies distinct, valid signatures from 64 keys over messages of a transaction's size,
    with the public key objects built beforehand (as the node caches them). Several short
    runs are made and the best is the ceiling: the machine is shared, and the slower runs
    measure the neighbours rather than the machine.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    keys = [Ed25519PrivateKey.generate() for _ in range(64)]
    items = []
    for i in range(1024):
        key = keys[i % len(keys)]
        message = os.urandom(message_bytes)
        items.append((key.public_key(), key.sign(message), message))
    rates = []
    for _ in range(runs):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for public, signature, message in items:
                public.verify(signature, message)
            done += len(items)
            now = time.perf_counter()
            if now >= deadline:
                break
        rates.append(done / (now - start))
    return {
        "verifies_per_s": round(max(rates)),
        "median_per_s": round(statistics.median(rates)),
        "runs": runs,
        "seconds_per_run": seconds,
        "message_bytes": message_bytes,
    }


def metric(
    name: str,
    value: float,
    unit: str,
    *,
    target: float | None = None,
    target_text: str | None = None,
    higher_is_better: bool = True,
    ceiling: float | None = None,
) -> dict[str, Any]:
    """One figure. ``target`` is absolute (already multiplied out when relative)."""
    ok = None
    if target is not None:
        ok = value >= target if higher_is_better else value < target
    row: dict[str, Any] = {
        "metric": name,
        "value": round(value, 3) if isinstance(value, float) else value,
        "unit": unit,
        "target": None if target is None else round(target, 3),
        "target_text": target_text,
        "higher_is_better": higher_is_better,
        "ok": ok,
    }
    if ceiling:
        row["ratio_to_ceiling"] = round(value / ceiling, 3)
    return row


def write_result(
    name: str,
    machine_info: dict[str, Any],
    ceiling: dict[str, Any],
    metrics: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine_info = {**machine_info, "loadavg_end": loadavg()}
    body = {
        "name": name,
        "machine": machine_info,
        "ceiling": ceiling,
        "metrics": metrics,
        "params": params or {},
        "notes": notes or [],
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    return path


def print_metrics(name: str, ceiling: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    print(f"== {name}")
    print(f"   ceiling: {ceiling['verifies_per_s']:,} Ed25519 verifies/s on one core")
    for m in metrics:
        value = m["value"]
        shown = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
        verdict = "" if m["ok"] is None else ("  PASS" if m["ok"] else "  FAIL")
        ratio = f"  ({m['ratio_to_ceiling']:.2f} x ceiling)" if "ratio_to_ceiling" in m else ""
        target = f"  target {m['target_text']}" if m.get("target_text") else ""
        print(f"   {m['metric']}: {shown} {m['unit']}{ratio}{target}{verdict}")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
