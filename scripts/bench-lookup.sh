#!/usr/bin/env bash
# The duplicate look-up over a table of N events (3M by default): rows read and ClickHouse time
# of the collector's look-up in `event_keys` beside the one it made in `events` before migration
# 0017, for fresh and stored ids. On a private local ClickHouse unless
# EVENTLINE_BENCH_CLICKHOUSE_URL names a server. Arguments go to scripts/bench_lookup.py:
#   scripts/bench-lookup.sh --events 10000000 --runs 5
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${EVENTLINE_BENCH_CLICKHOUSE_URL:-}" ]]; then
  # Not 18123-18127 (dev server, tests, `make bench`) nor 18140 (`make bench-audience`).
  port="${EVENTLINE_BENCH_LOOKUP_PORT:-18141}"
  data="$ROOT/.data/clickhouse-bench-lookup"
  scripts/clickhouse.sh start --port "$port" --data-dir "$data"
  trap 'scripts/clickhouse.sh stop --port "$port" --data-dir "$data"; rm -rf "$data"' EXIT
  export EVENTLINE_BENCH_CLICKHOUSE_URL="http://127.0.0.1:$port"
fi
database=eventline_bench_lookup
curl -sSf "$EVENTLINE_BENCH_CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS $database" >/dev/null
CLICKHOUSE_URL="$EVENTLINE_BENCH_CLICKHOUSE_URL" CLICKHOUSE_DATABASE="$database" RUST_LOG=warn \
  cargo run -q -p eventline-collector -- migrate
python3 scripts/bench_lookup.py --url "$EVENTLINE_BENCH_CLICKHOUSE_URL" --database "$database" "$@"
curl -sSf "$EVENTLINE_BENCH_CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS $database" >/dev/null
