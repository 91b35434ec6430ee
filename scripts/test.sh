#!/usr/bin/env bash
# `make test`: every test. Starts a private local ClickHouse for the integration tests (unless
# EVENTLINE_TEST_CLICKHOUSE_URL names a server), runs the whole workspace's tests, stops it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${EVENTLINE_TEST_CLICKHOUSE_URL:-}" ]]; then
  port="${EVENTLINE_TEST_CLICKHOUSE_PORT:-18124}"
  data="$ROOT/.data/clickhouse-test"
  scripts/clickhouse.sh start --port "$port" --data-dir "$data"
  trap 'scripts/clickhouse.sh stop --port "$port" --data-dir "$data"' EXIT
  export EVENTLINE_TEST_CLICKHOUSE_URL="http://127.0.0.1:$port"
fi
cargo test --workspace "$@"
