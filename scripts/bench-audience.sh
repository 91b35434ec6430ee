#!/usr/bin/env bash
# `make bench-audience`: the audience benchmark (segment counts, member pages, customer
# histories over generated data, 10M events by default) on a private local ClickHouse, unless
# EVENTLINE_BENCH_CLICKHOUSE_URL names a server. Arguments go to the benchmark:
#   scripts/bench-audience.sh --events 100000000 --runs 7
# The private server's data dir is removed at the end (the data is generated, never committed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${EVENTLINE_BENCH_CLICKHOUSE_URL:-}" ]]; then
  # Not 18123-18127 (the dev server, tests and `make bench`), so both benchmarks can coexist.
  port="${EVENTLINE_BENCH_AUDIENCE_PORT:-18140}"
  data="$ROOT/.data/clickhouse-bench-audience"
  scripts/clickhouse.sh start --port "$port" --data-dir "$data"
  trap 'scripts/clickhouse.sh stop --port "$port" --data-dir "$data"; rm -rf "$data"' EXIT
  export EVENTLINE_BENCH_CLICKHOUSE_URL="http://127.0.0.1:$port"
fi
cargo bench -p eventline-collector --bench audience -- "$@"
