"""Print the benchmark figures in bench/results/*.json as one markdown table.

.venv/bin/python bench/report.py            # the table, for the README
.venv/bin/python bench/report.py --details  # plus each run's machine, load and notes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ["ed25519_ceiling", "commit_inprocess", "commit_http", "verify_speed", "proof_latency"]


def fmt(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return ""
    small = isinstance(value, float) and abs(value) < 100
    text = f"{value:,.2f}" if small else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def load() -> list[dict]:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(runs, key=lambda r: (rank.get(r["name"], len(ORDER)), r["name"]))


def table(runs: list[dict]) -> str:
    lines = [
        "| benchmark | figure | value | ceiling (1 core) | ratio | target | result | load |",
        "|---|---|---:|---:|---:|---|:---:|---:|",
    ]
    for run in runs:
        ceiling = run.get("ceiling", {}).get("verifies_per_s")
        machine = run.get("machine", {})
        start, end = machine.get("loadavg_start"), machine.get("loadavg_end")
        load = f"{start[0]:.1f}-{end[0]:.1f}" if start and end else ""
        for m in run["metrics"]:
            ratio = m.get("ratio_to_ceiling")
            result = "" if m["ok"] is None else ("**pass**" if m["ok"] else "**FAIL**")
            target = m.get("target_text") or ""
            if target and m.get("target") is not None and "ceiling" in target:
                target = f"{target} = {fmt(m['target'], m['unit'])}"
            lines.append(
                f"| {run['name']} | {m['metric']} | {fmt(m['value'], m['unit'])} | "
                f"{fmt(ceiling, '/s')} | {'' if ratio is None else f'{ratio:.2f}'} | "
                f"{target} | {result} | {load} |"
            )
    return "\n".join(lines)


def details(runs: list[dict]) -> str:
    out = []
    for run in runs:
        m = run["machine"]
        out.append(
            f"- **{run['name']}**: {m['date']}, {m['cpu_model']} x {m['cores']}, Python "
            f"{m['python']}, cryptography {m.get('cryptography', '?')}, load average "
            f"{m.get('loadavg_start')} -> {m.get('loadavg_end')}"
        )
        for note in run.get("notes", []):
            out.append(f"  - {note}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--details", action="store_true")
    args = parser.parse_args()
    runs = load()
    if not runs:
        print("no results in bench/results/: run bench/run_all.sh", file=sys.stderr)
        return 1
    first = runs[0]["machine"]
    print(f"Measured on {first['cpu_model']} ({first['cores']} cores), Python {first['python']}.")
    print("load: the machine's 1-minute load average at the start and end of each benchmark")
    print("(2 cores: anything well above 1 means neighbours were competing for the CPU).")
    print()
    print(table(runs))
    if args.details:
        print()
        print(details(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
