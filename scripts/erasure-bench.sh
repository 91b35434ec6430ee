#!/usr/bin/env bash
# Times the erasure of one customer among N events (default 10 million), end to end through the
# admin API: DELETE /v1/admin/partners/{id}/customers/{customer} until the job reads `done`.
#
#   scripts/erasure-bench.sh [--rows N] [--clickhouse URL]
#
# Loads a fresh database (INSERT ... SELECT FROM numbers(N)): 100,000 customers with 2 devices
# (anonymous ids) each, one event in three anonymous only, spread over 30 days; 100,000
# rejected rows with JSON payloads. Starts a collector (debug build) on 127.0.0.1 against it,
# erases customer c-4242, prints the job and the time, then drops the database.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROWS=10000000
CH="${EVENTLINE_BENCH_CLICKHOUSE_URL:-http://127.0.0.1:18123}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --clickhouse) CH="$2"; shift 2 ;;
    *) sed -n 's/^#   //p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
  esac
done
DB="eventline_erasure_bench_$$"
TOKEN="erasure-bench-token"
PORT=$((20000 + $$ % 20000))
BASE="http://127.0.0.1:$PORT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

ch() { curl -fsS "$CH/?database=$DB" --data-binary "$1"; }

cargo build -q -p eventline-collector --manifest-path "$ROOT/Cargo.toml"
EVENTLINE_LISTEN="127.0.0.1:$PORT" CLICKHOUSE_URL="$CH" CLICKHOUSE_DATABASE="$DB" \
  EVENTLINE_ADMIN_TOKEN="$TOKEN" RUST_LOG=warn \
  "$TARGET_DIR/debug/eventline-collector" serve &
COLLECTOR=$!
cleanup() {
  kill "$COLLECTOR" 2>/dev/null || true
  wait "$COLLECTOR" 2>/dev/null || true
  curl -fsS "$CH/" --data-binary "DROP DATABASE IF EXISTS $DB" >/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
admin() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }
PARTNER=$(admin -X POST -H 'content-type: application/json' -d '{"name":"Bench"}' \
  "$BASE/v1/admin/partners" | jq -r .id)

echo "loading $ROWS events into $DB ..."
LOAD_START=$(date +%s.%N)
ch "INSERT INTO events (partner_id, event_id, kind, name, source, source_id, customer_id,
      anonymous_id, session_id, occurred_at, sent_at, received_at, event_time, ingest_path,
      user_agent, client_ip)
    SELECT toUUID('$PARTNER'), generateUUIDv4(number), 'customer',
      ['view', 'add_to_cart', 'purchase', 'login'][number % 4 + 1], 'online_store',
      generateUUIDv4(), if(number % 3 = 0, '', concat('c-', toString(number % 100000))),
      concat('a-', toString((number % 100000) * 2 + intDiv(number, 100000) % 2)),
      concat('s-', toString(intDiv(number, 20))),
      now64(3) - toIntervalSecond(number % 2592000), now64(3), now64(3),
      now64(3) - toIntervalSecond(number % 2592000), 'client', 'Mozilla/5.0', '203.0.113.0'
    FROM numbers($ROWS)"
ch "INSERT INTO rejected_events (received_at, partner_id, source, event_id, event_index,
      reason_code, reason_field, reason_message, payload, ingest_path, user_agent, client_ip)
    SELECT now64(3), toUUID('$PARTNER'), 'online_store', '', 0, 'invalid_name', 'name', 'bad',
      concat('{\"name\":\" x\",\"customer_id\":\"c-', toString(number % 100000),
             '\",\"anonymous_id\":\"a-', toString(number % 200000), '\"}'),
      'client', 'Mozilla/5.0', ''
    FROM numbers(100000)"
LOAD_END=$(date +%s.%N)
echo "loaded in $(echo "$LOAD_END - $LOAD_START" | bc) s; parts: $(ch "SELECT count() FROM system.parts WHERE database = '$DB' AND table = 'events' AND active")"
LINKED=$(ch "SELECT groupUniqArray(anonymous_id) FROM events WHERE customer_id = 'c-4242' AND anonymous_id != ''")
MATCH="customer_id = 'c-4242' OR has($LINKED, anonymous_id)"
echo "customer c-4242: $(ch "SELECT count() FROM events WHERE customer_id = 'c-4242'") own events; with the linked anonymous ids $LINKED: $(ch "SELECT count() FROM events WHERE $MATCH") events"

START=$(date +%s.%N)
JOB=$(admin -X DELETE "$BASE/v1/admin/partners/$PARTNER/customers/c-4242" | jq -r .job_id)
while true; do
  STATUS=$(admin "$BASE/v1/admin/erasure-jobs/$JOB")
  case "$(jq -r .status <<<"$STATUS")" in
    done) break ;;
    failed) echo "$STATUS"; exit 1 ;;
  esac
  sleep 0.2
done
END=$(date +%s.%N)
echo "$STATUS" | jq .
echo "erasure of one customer among $ROWS events: $(echo "$END - $START" | bc) s end to end (request to status done)"
echo "left: $(ch "SELECT count() FROM events WHERE $MATCH") events"
