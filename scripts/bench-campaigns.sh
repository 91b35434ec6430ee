#!/usr/bin/env bash
# `make bench-campaigns`: campaign latency (event acknowledged -> message queued) at a steady
# rate, on a private local ClickHouse, unless EVENTLINE_BENCH_CLICKHOUSE_URL names a server.
# Arguments go to the benchmark: scripts/bench-campaigns.sh --rate 200 --secs 30
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${EVENTLINE_BENCH_CLICKHOUSE_URL:-}" ]]; then
  # Not 18123-18127 (dev server, tests, `make bench`) nor 18140 (`make bench-audience`).
  port="${EVENTLINE_BENCH_CAMPAIGNS_PORT:-18141}"
  data="$ROOT/.data/clickhouse-bench-campaigns"
  scripts/clickhouse.sh start --port "$port" --data-dir "$data"
  trap 'scripts/clickhouse.sh stop --port "$port" --data-dir "$data"; rm -rf "$data"' EXIT
  export EVENTLINE_BENCH_CLICKHOUSE_URL="http://127.0.0.1:$port"
fi
cargo bench -p eventline-collector --bench campaigns_latency -- "$@"
