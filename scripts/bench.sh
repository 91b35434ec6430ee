#!/usr/bin/env bash
# `make bench`: the ingest benchmark (collector vs raw JSONEachRow insert) on a private
# local ClickHouse, unless EVENTLINE_BENCH_CLICKHOUSE_URL names a server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${EVENTLINE_BENCH_CLICKHOUSE_URL:-}" ]]; then
  port=18125
  data="$ROOT/.data/clickhouse-bench"
  scripts/clickhouse.sh start --port "$port" --data-dir "$data"
  trap 'scripts/clickhouse.sh stop --port "$port" --data-dir "$data"; rm -rf "$data"' EXIT
  export EVENTLINE_BENCH_CLICKHOUSE_URL="http://127.0.0.1:$port"
fi
cargo bench -p eventline-collector --bench ingest -- "$@"
