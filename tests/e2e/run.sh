#!/usr/bin/env bash
# End-to-end tests: the demo shop and the mobile example, in headless Debian Chromium and Node,
# against the real collector binary and a real ClickHouse. Everything is started here and stopped
# again on exit, failure included. Exits non-zero if a test fails.
#
#   bash tests/e2e/run.sh [test-file-filter]
#
# Ports (fixed, so parallel runs of `make run`, `make test` and the bench never collide):
#   ClickHouse 18126 (data .data/clickhouse-e2e), collector 18180, example pages localhost:18181.
# Environment: E2E_SKIP_BUILD=1 reuses npm/dist and the collector binary as they are;
#   E2E_KEEP=1 keeps the e2e database after a passing run (it is always kept after a failure).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E="$ROOT/tests/e2e"
cd "$ROOT"
started=$(date +%s)
step() { echo "=== e2e: $* ($(($(date +%s) - started)) s)"; }

CH_PORT=18126
CH_DATA="$ROOT/.data/clickhouse-e2e"
COLLECTOR_PORT=18180
EXAMPLES_PORT=18181
STATE="$ROOT/.data/e2e"
mkdir -p "$STATE"

export E2E_ROOT="$ROOT"
export E2E_CLICKHOUSE_URL="http://127.0.0.1:$CH_PORT"
export E2E_DATABASE="e2e_$(date +%Y%m%d_%H%M%S)_$$"
export E2E_COLLECTOR_URL="http://127.0.0.1:$COLLECTOR_PORT"
# localhost, not 127.0.0.1: the Online Store source admits the `localhost` domain only.
export E2E_EXAMPLES_URL="http://localhost:$EXAMPLES_PORT"
export E2E_PARTNER_FILE="$STATE/partner.json"
export E2E_COLLECTOR_BIN="$ROOT/target/debug/eventline-collector"
export E2E_COLLECTOR_PIDFILE="$STATE/collector.pid"
export E2E_COLLECTOR_LOG="$STATE/collector.log"
export E2E_CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
# The collector reads these; the tests restart it with the same environment.
export CLICKHOUSE_URL="$E2E_CLICKHOUSE_URL"
export CLICKHOUSE_DATABASE="$E2E_DATABASE"
export EVENTLINE_LISTEN="127.0.0.1:$COLLECTOR_PORT"
export EVENTLINE_ADMIN_TOKEN="e2e-admin-token-$$"
export EVENTLINE_WORKERS=2
# First-party serving (first-party.test.mjs): the tracker files and client ingest also under /x7k.
export EVENTLINE_TRACKER_DIR="$ROOT/npm/dist"
export EVENTLINE_PUBLIC_PATH_PREFIX=/x7k
export RUST_LOG="${RUST_LOG:-info}"

examples_pid=""
ch_started=0
cleanup() {
  local rc=$?
  set +e
  [[ -n "$examples_pid" ]] && kill "$examples_pid" 2>/dev/null && wait "$examples_pid" 2>/dev/null
  # The tests restart the collector, so its current pid is in the pid file.
  local pid
  pid="$(cat "$E2E_COLLECTOR_PIDFILE" 2>/dev/null)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$E2E_COLLECTOR_PIDFILE"
  if ((ch_started)); then
    if ((rc == 0)) && [[ "${E2E_KEEP:-0}" != 1 ]]; then
      curl -fsS "$E2E_CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS $E2E_DATABASE" >/dev/null
    else
      echo "e2e: kept database $E2E_DATABASE in $CH_DATA; logs in $STATE/" >&2
    fi
    "$ROOT/scripts/clickhouse.sh" stop --port "$CH_PORT" --data-dir "$CH_DATA" >/dev/null
  fi
  if ((rc != 0)); then
    echo "--- last lines of $E2E_COLLECTOR_LOG" >&2
    tail -n 25 "$E2E_COLLECTOR_LOG" 2>/dev/null >&2
  fi
  echo "=== e2e: finished with exit code $rc after $(($(date +%s) - started)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$COLLECTOR_PORT" "$EXAMPLES_PORT"; do
  port_free "$port" || { echo "e2e: port $port is in use (a leftover run?); free it first" >&2; exit 1; }
done

step "browser"
if [[ ! -x "$E2E_CHROMIUM" ]]; then
  if [[ "$(id -u)" == 0 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "e2e: $E2E_CHROMIUM is missing: sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
fi
"$E2E_CHROMIUM" --version 2>/dev/null | head -n 1

step "npm ci (tests/e2e)"
npm ci --prefix "$E2E" --no-audit --no-fund --loglevel=error

if [[ "${E2E_SKIP_BUILD:-0}" != 1 ]]; then
  step "build the tracker (wasm + npm package)"
  bash scripts/install-wasm-tools.sh # reuses what is there; the first run installs wasm-bindgen-cli (~140 s)
  bash scripts/build-tracker.sh
  [[ npm/node_modules/.package-lock.json -nt npm/package-lock.json ]] ||
    npm ci --prefix "$ROOT/npm" --no-audit --no-fund --loglevel=error
  npm run --prefix "$ROOT/npm" --silent build
  step "build the collector"
  cargo build --bin eventline-collector
fi
for f in npm/dist/eventline.js npm/dist/node.mjs "$E2E_COLLECTOR_BIN"; do
  [[ -e "$f" ]] || { echo "e2e: $f is missing (build it, or run without E2E_SKIP_BUILD)" >&2; exit 1; }
done
# The mobile example depends on the package by path (file:../../npm), as an app would by name.
npm install --prefix "$ROOT/examples/mobile" --no-audit --no-fund --loglevel=error

step "start ClickHouse on $CH_PORT, the collector on $COLLECTOR_PORT, the examples on $EXAMPLES_PORT"
scripts/clickhouse.sh start --port "$CH_PORT" --data-dir "$CH_DATA"
ch_started=1
# Databases of earlier failed runs (kept for a look) go now; this run makes its own.
for db in $(curl -fsS "$E2E_CLICKHOUSE_URL/" --data-binary "SELECT name FROM system.databases WHERE startsWith(name, 'e2e_')"); do
  curl -fsS "$E2E_CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS \`$db\`" >/dev/null
done
: >"$E2E_COLLECTOR_LOG"
"$E2E_COLLECTOR_BIN" serve >>"$E2E_COLLECTOR_LOG" 2>&1 &
echo $! >"$E2E_COLLECTOR_PIDFILE"
for i in $(seq 1 150); do
  curl -fsS "$E2E_COLLECTOR_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$E2E_COLLECTOR_PIDFILE")" 2>/dev/null || { echo "e2e: the collector exited" >&2; exit 1; }
  ((i < 150)) || { echo "e2e: the collector is not ready after 30 s" >&2; exit 1; }
  sleep 0.2
done

admin() {
  curl -fsS -H "Authorization: Bearer $EVENTLINE_ADMIN_TOKEN" -H 'Content-Type: application/json' "$@"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
admin -X POST "$E2E_COLLECTOR_URL/v1/admin/partners" -d '{"name":"E2E Shop"}' >"$E2E_PARTNER_FILE"
partner_id="$(json 'd["id"]' <"$E2E_PARTNER_FILE")"
store_id="$(json '[s["id"] for s in d["sources"] if s["code"] == "online_store"][0]' <"$E2E_PARTNER_FILE")"
admin -X PATCH "$E2E_COLLECTOR_URL/v1/admin/partners/$partner_id/sources/$store_id" -d '{"domain":"localhost"}' >/dev/null
admin -X POST "$E2E_COLLECTOR_URL/v1/admin/partners/$partner_id/sources" \
  -d '{"name":"Mobile application","code":"mobile_app","domain":""}' >/dev/null
export E2E_PARTNER_ID="$partner_id"

python3 scripts/serve-examples.py --port "$EXAMPLES_PORT" --collector "$E2E_COLLECTOR_URL" \
  --partner-file "$E2E_PARTNER_FILE" --quiet >"$STATE/examples.log" 2>&1 &
examples_pid=$!
for i in $(seq 1 50); do
  curl -fsS "$E2E_EXAMPLES_URL/healthz" >/dev/null 2>&1 && break
  ((i < 50)) || { echo "e2e: the example server did not start" >&2; cat "$STATE/examples.log" >&2; exit 1; }
  sleep 0.2
done
echo "partner $partner_id, database $E2E_DATABASE"

step "run the tests"
cd "$E2E"
files=(*.test.mjs)
if [[ $# -gt 0 ]]; then files=(*"$1"*.test.mjs); fi
# One file at a time: the outage test stops and restarts the shared collector.
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./lib/summary-reporter.mjs --test-reporter-destination=stdout \
  "${files[@]}"
