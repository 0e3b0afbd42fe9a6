#!/usr/bin/env bash
# Run every benchmark, then print the table of figures (bench/report.py).
#
#   bench/run_all.sh            # everything (the first run builds the 100k-tx and 1M-leaf
#                               # chains in bench/work/, a few minutes; later runs reuse them)
#   bench/run_all.sh --quick    # smaller runs, for a smoke test
#
# Each script writes bench/results/<name>.json. The machine should be otherwise idle: the
# figures are CPU-bound and every script records the load average before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

if [ "${1:-}" = "--quick" ]; then
  "$PY" bench/ed25519_ceiling.py --runs 3 --seconds 0.5
  "$PY" bench/commit_inprocess.py --count 4000 --warmup 1000
  "$PY" bench/commit_http.py --per-client 60 --warmup 10
  "$PY" bench/verify_speed.py --count 100000
  "$PY" bench/proof_latency.py --samples 500 --warmup 100
  "$PY" bench/eco_ingest.py --small
  "$PY" bench/eco_report.py --small
  "$PY" bench/consortium.py --clients 48 --per-client 20 --catch-up-txs 1000
else
  "$PY" bench/ed25519_ceiling.py
  "$PY" bench/commit_inprocess.py
  "$PY" bench/commit_http.py
  "$PY" bench/verify_speed.py
  "$PY" bench/proof_latency.py
  "$PY" bench/eco_ingest.py
  "$PY" bench/eco_report.py     # builds 1,000,000 readings' state first: ~10 minutes
  "$PY" bench/consortium.py
fi
echo
"$PY" bench/report.py
