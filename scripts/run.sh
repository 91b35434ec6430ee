#!/usr/bin/env bash
# `make run`: the whole local stack with no configuration. Starts ClickHouse, builds and starts
# the collector (which migrates the schema), creates a demo partner with its sources, demo
# customers' events and a few segments (scripts/demo-segments.py), builds the tracker (WebAssembly core + npm package) and serves the examples (demo shop, mobile app), prints
# how to send an event and see it, then keeps running until Ctrl-C and stops what it started.
# It also starts a local SMTP catcher (aiosmtpd, tests/smtp/sink.py, installed by
# scripts/smtp-sink.sh as `make test` does) that writes each mail to .data/mail/, points the
# collector at it, and gives the demo partner an active abandoned-cart campaign
# (scripts/demo-campaign.py).
# EXAMPLES_PORT (8081) moves the example pages; EVENTLINE_SKIP_TRACKER=1 skips the tracker build;
# EVENTLINE_DEMO_FILE (.data/demo-partner.json) is where the demo partner is remembered;
# EVENTLINE_MAIL_PORT (1025) is the catcher's port; an EVENTLINE_SMTP_URL of your own replaces
# the catcher.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CLICKHOUSE_URL="${CLICKHOUSE_URL:-http://127.0.0.1:18123}"
export EVENTLINE_LISTEN="${EVENTLINE_LISTEN:-127.0.0.1:8080}"
export EVENTLINE_ADMIN_TOKEN="${EVENTLINE_ADMIN_TOKEN:-eventline-local-admin-token}"
COLLECTOR="http://$EVENTLINE_LISTEN"
EXAMPLES_PORT="${EXAMPLES_PORT:-8081}"
DEMO_FILE="${EVENTLINE_DEMO_FILE:-$ROOT/.data/demo-partner.json}"
mkdir -p "$ROOT/.data"

started_clickhouse=0
if [[ "$CLICKHOUSE_URL" == "http://127.0.0.1:18123" ]] && ! curl -fsS --max-time 2 "$CLICKHOUSE_URL/ping" >/dev/null 2>&1; then
  scripts/clickhouse.sh start
  started_clickhouse=1
fi

# The mail catcher: campaign email lands in .data/mail/ as NNNNNN.eml files. Its stdin is a pipe
# this script holds, so it ends with the script however the script ends.
MAIL_DIR="$ROOT/.data/mail"
mail_pid=""
mail_line="not started (EVENTLINE_SMTP_URL is set: mail goes to ${EVENTLINE_SMTP_URL:-})"
if [[ -z "${EVENTLINE_SMTP_URL:-}" ]]; then
  MAIL_PORT="${EVENTLINE_MAIL_PORT:-1025}"
  export EVENTLINE_SMTP_URL="smtp://127.0.0.1:$MAIL_PORT"
  mail_line="NOT running: see .data/mail-catcher.log; campaign email waits (retried) for an SMTP server on port $MAIL_PORT"
  if aiosmtpd_path="$(scripts/smtp-sink.sh)"; then
    mkdir -p "$MAIL_DIR"
    coproc MAIL_CATCHER { PYTHONPATH="$aiosmtpd_path" exec python3 tests/smtp/sink.py --dir "$MAIL_DIR" --port "$MAIL_PORT" 2>"$ROOT/.data/mail-catcher.log"; }
    mail_pid="${MAIL_CATCHER_PID:-}"
    mail_out="${MAIL_CATCHER[0]:-}" # unset by bash once the catcher has ended
    if [[ -n "$mail_out" ]] && read -r -t 30 line <&"$mail_out" && [[ "$line" == "listening $MAIL_PORT" ]]; then
      mail_line="$EVENTLINE_SMTP_URL, every mail a file in .data/mail/"
    else
      echo "WARNING: the mail catcher did not start on port $MAIL_PORT (in use? EVENTLINE_MAIL_PORT moves it):" >&2
      tail -n 3 "$ROOT/.data/mail-catcher.log" >&2 || true
    fi
  else
    echo "WARNING: aiosmtpd could not be installed (scripts/smtp-sink.sh); no mail catcher" >&2
  fi
fi

cargo build --release --bin eventline-collector
# Where cargo put it: CARGO_TARGET_DIR when set (relative to the repository, where this runs).
COLLECTOR_BIN="${CARGO_TARGET_DIR:-target}/release/eventline-collector"

# The tracker for the example pages. The first build installs wasm-bindgen-cli (~140 s, cached
# under tools/). A failed tracker build does not stop the collector: the pages then say so.
tracker_ok=0
if [[ "${EVENTLINE_SKIP_TRACKER:-0}" == 1 ]]; then
  [[ -f npm/dist/eventline.js ]] && tracker_ok=1
elif [[ -f scripts/build-tracker.sh && -f npm/package.json ]]; then
  first=""
  compgen -G "tools/wasm-bindgen-*/bin/wasm-bindgen" >/dev/null || first="; the first build installs wasm-bindgen-cli, about 3 minutes"
  echo "Building the tracker (WebAssembly core + npm package; log .data/tracker-build.log$first)..."
  if bash scripts/install-wasm-tools.sh >"$ROOT/.data/tracker-build.log" 2>&1 &&
    bash scripts/build-tracker.sh >>"$ROOT/.data/tracker-build.log" 2>&1 &&
    { [[ npm/node_modules/.package-lock.json -nt npm/package-lock.json ]] ||
      npm ci --prefix npm --no-audit --no-fund --loglevel=error >>"$ROOT/.data/tracker-build.log" 2>&1; } &&
    npm run --prefix npm --silent build >>"$ROOT/.data/tracker-build.log" 2>&1; then
    tracker_ok=1
  else
    echo "WARNING: the tracker build failed (log: .data/tracker-build.log); the example pages will not track." >&2
    tail -n 15 "$ROOT/.data/tracker-build.log" >&2
  fi
fi

# First-party serving: the collector also serves the tracker it was built with, at
# /tracker/latest/eventline.js (and under /t/ for a site that proxies that path to it).
if ((tracker_ok)); then
  export EVENTLINE_TRACKER_DIR="$ROOT/npm/dist"
  export EVENTLINE_PUBLIC_PATH_PREFIX="${EVENTLINE_PUBLIC_PATH_PREFIX:-/t}"
fi
"$COLLECTOR_BIN" serve >"$ROOT/.data/collector.log" 2>&1 &
collector_pid=$!
examples_pid=""
cleanup() {
  [[ -n "$examples_pid" ]] && { kill "$examples_pid" 2>/dev/null && wait "$examples_pid" 2>/dev/null || true; }
  kill "$collector_pid" 2>/dev/null && wait "$collector_pid" 2>/dev/null || true
  [[ -n "$mail_pid" ]] && { kill "$mail_pid" 2>/dev/null && wait "$mail_pid" 2>/dev/null || true; }
  if ((started_clickhouse)); then scripts/clickhouse.sh stop; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

for _ in $(seq 1 100); do
  curl -fsS "$COLLECTOR/readyz" >/dev/null 2>&1 && break
  kill -0 "$collector_pid" 2>/dev/null || { tail -n 30 "$ROOT/.data/collector.log"; exit 1; }
  sleep 0.2
done

admin() { curl -fsS -H "Authorization: Bearer $EVENTLINE_ADMIN_TOKEN" -H 'Content-Type: application/json' "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# The demo partner is created once and remembered: its API key is shown only at creation.
partner_id=""
if [[ -f "$DEMO_FILE" ]]; then
  partner_id="$(json 'd["id"]' <"$DEMO_FILE")"
  admin "$COLLECTOR/v1/admin/partners/$partner_id" >/dev/null 2>&1 || partner_id=""
fi
if [[ -z "$partner_id" ]]; then
  admin -X POST "$COLLECTOR/v1/admin/partners" -d '{"name":"Demo Shop"}' >"$DEMO_FILE"
  partner_id="$(json 'd["id"]' <"$DEMO_FILE")"
  store_id="$(json 'd["sources"][0]["id"]' <"$DEMO_FILE")"
  # Pages served from localhost may send events for the Online Store.
  admin -X PATCH "$COLLECTOR/v1/admin/partners/$partner_id/sources/$store_id" -d '{"domain":"localhost"}' >/dev/null
  admin -X POST "$COLLECTOR/v1/admin/partners/$partner_id/sources" \
    -d '{"name":"Mobile application","code":"mobile_app","domain":""}' >/dev/null
fi
api_key="$(json 'd["api_key"]' <"$DEMO_FILE")"
# A demo customer profile (an upsert that changes nothing stores nothing, so this is safe to repeat).
curl -fsS -X PUT -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \
  "$COLLECTOR/v1/server/customers/demo-customer-1" \
  -d '{"first_name":"Ann","last_name":"Lee","email":"ann@example.com","birthday":"1990-05-01","consents":{"email":true},"attributes":{"tier":"gold"}}' >/dev/null ||
  echo "WARNING: the demo customer profile could not be written" >&2
# Seed events of three demo customers (sent through /v1/server/events; fixed event ids, so
# stored once) and the demo segments (created when missing); prints the segment list and curls.
segments_banner="$(python3 scripts/demo-segments.py --collector "$COLLECTOR" \
  --partner-file "$DEMO_FILE" --admin-token "$EVENTLINE_ADMIN_TOKEN")" ||
  segments_banner="  (the demo segments could not be set up; see the warning above)"
# The demo shop's accounts with an email, the partner's email From, and the active campaign
# "Abandoned cart (demo)" (created when missing).
campaign_banner="$(python3 scripts/demo-campaign.py --collector "$COLLECTOR" \
  --partner-file "$DEMO_FILE" --admin-token "$EVENTLINE_ADMIN_TOKEN" --mail-dir .data/mail)" ||
  campaign_banner="$campaign_banner
  (the demo campaign could not be fully set up; see the warning above)"

# The example pages: the demo shop (and the tracker under /eventline/), config from $DEMO_FILE.
python3 scripts/serve-examples.py --port "$EXAMPLES_PORT" --collector "$COLLECTOR" \
  --partner-file "$DEMO_FILE" --quiet >"$ROOT/.data/examples.log" 2>&1 &
examples_pid=$!
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$EXAMPLES_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$examples_pid" 2>/dev/null || { echo "WARNING: the example server did not start:" >&2; tail -n 5 "$ROOT/.data/examples.log" >&2; examples_pid=""; break; }
  sleep 0.1
done
tracker_note=""
((tracker_ok)) || tracker_note="   (tracker not built: see .data/tracker-build.log)"
first_party="not served (tracker not built)"
((tracker_ok)) && first_party="$COLLECTOR/tracker/latest/eventline.js, and ingest + tracker under ${EVENTLINE_PUBLIC_PATH_PREFIX}/ for a reverse proxy"

cat <<TXT

Eventline is running.
  collector    $COLLECTOR   (log: .data/collector.log)
  tracker      $first_party
  ClickHouse   $CLICKHOUSE_URL   database: eventline
  mail         $mail_line
  admin token  $EVENTLINE_ADMIN_TOKEN
  demo partner $partner_id   (API key for /v1/server/events: $api_key)

Sources of the demo partner:
$(admin "$COLLECTOR/v1/admin/partners/$partner_id/sources" | python3 "$ROOT/scripts/list-sources.py")

Send an event (as an app: the mobile_app source has no domain, so it takes requests without Origin;
the Online Store has a domain and takes only browser requests from it):
  curl -sS $COLLECTOR/v1/events -H 'Content-Type: application/json' -d '{"partner_id":"$partner_id","sent_at":"'\$(date -u +%FT%T.000Z)'","events":[{"event_id":"'\$(cat /proc/sys/kernel/random/uuid)'","kind":"customer","name":"product_viewed","source":"mobile_app","customer_id":"42","occurred_at":"'\$(date -u +%FT%T.000Z)'","context":{"category":"Jacket","price":99.5}}]}'

See it in ClickHouse:
  curl -sS '$CLICKHOUSE_URL/?database=eventline' --data-binary "SELECT event_time, name, source, customer_id, context_strings, context_numbers FROM events ORDER BY received_at DESC LIMIT 5 FORMAT PrettyCompactMonoBlock"

The demo customer's card and history (profile upserted at start; see README "Customers and event types"):
  curl -sS -H 'Authorization: Bearer $EVENTLINE_ADMIN_TOKEN' $COLLECTOR/v1/admin/partners/$partner_id/customers/demo-customer-1
  curl -sS -H 'Authorization: Bearer $EVENTLINE_ADMIN_TOKEN' $COLLECTOR/v1/admin/partners/$partner_id/customers/demo-customer-1/events

Segments of the demo partner (its seed events were sent at its first start; README "Segments"):
$segments_banner

Campaign of the demo partner (README "Campaigns"; campaign email lands in .data/mail/):
$campaign_banner

Rejected events (a hyphen in a context key, an unknown source, ...):
  curl -sS '$CLICKHOUSE_URL/?database=eventline' --data-binary "SELECT received_at, reason_code, reason_message FROM rejected_events ORDER BY received_at DESC LIMIT 5 FORMAT PrettyCompactMonoBlock"

Try the tracker:
  demo shop    http://localhost:$EXAMPLES_PORT/shop/$tracker_note
               (open it as localhost, not 127.0.0.1: the Online Store source admits the domain localhost)
  mobile app   cd examples/mobile && npm install --no-audit --no-fund && \\
                 EVENTLINE_COLLECTOR_URL=$COLLECTOR EVENTLINE_PARTNER_FILE=$DEMO_FILE node app.mjs
               (an app session from Node, source mobile_app; add a customer id, e.g. 1043, as argument)

Press Ctrl-C to stop.
TXT
wait "$collector_pid"
