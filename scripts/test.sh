#!/usr/bin/env bash
# `make test`: every test, on a fresh machine too (installs the wasm tools and Debian chromium
# when missing; slow installs are kept under tools/ and reused).
#   1. Rust: unit, property and integration tests (a private local ClickHouse on 18124, unless
#      EVENTLINE_TEST_CLICKHOUSE_URL names a server);
#   2. the container: the Dockerfile's build replayed from its context, its binary run
#      (tests/container/check.py; no container engine can build images on these machines);
#   3. the tracker: wasm build, wasm-bindgen-test suites in Node and headless Chromium, the size
#      budget, the npm package installed from its tarball;
#   4. end to end: headless Chromium → collector → ClickHouse (tests/e2e/run.sh).
# Arguments go to `cargo test`; EVENTLINE_TEST_ONLY=rust skips 2 to 4.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { echo; echo "=== make test: $*"; }

step "Rust tests"
(
  if [[ -z "${EVENTLINE_TEST_CLICKHOUSE_URL:-}" ]]; then
    port="${EVENTLINE_TEST_CLICKHOUSE_PORT:-18124}"
    data="$ROOT/.data/clickhouse-test"
    scripts/clickhouse.sh start --port "$port" --data-dir "$data"
    trap 'scripts/clickhouse.sh stop --port "$port" --data-dir "$data"' EXIT
    export EVENTLINE_TEST_CLICKHOUSE_URL="http://127.0.0.1:$port"
  fi
  # The campaign tests start a real SMTP server (aiosmtpd, tests/smtp/sink.py).
  EVENTLINE_TEST_AIOSMTPD_PATH="${EVENTLINE_TEST_AIOSMTPD_PATH:-$(scripts/smtp-sink.sh)}"
  export EVENTLINE_TEST_AIOSMTPD_PATH
  cargo test --workspace "$@"
  [[ "${EVENTLINE_TEST_ONLY:-}" == rust ]] && exit 0

  step "container: the Dockerfile's build stage replayed from its context, the image's binary serves"
  # A release build of its own (first run ~3 min); its target dir is kept in the cache.
  python3 tests/container/check.py --clickhouse-url "$EVENTLINE_TEST_CLICKHOUSE_URL" \
    --target-dir "${CACHE_DIR:-$ROOT/.cache}/container-target"
)
[[ "${EVENTLINE_TEST_ONLY:-}" == rust ]] && exit 0

step "tracker: tools and build"
WITH_BROWSER=1 bash scripts/install-wasm-tools.sh
bash scripts/build-tracker.sh

step "tracker: wasm-bindgen-test in Node and headless Chromium"
bash scripts/test-tracker-wasm.sh

step "tracker: size within the budget (16,000 B gzip a page loads; npm/scripts/size-report.mjs)"
bash scripts/size-report.sh --no-peers --no-build

step "npm package: pack, install, use from Node and bundlers"
bash tests/npm-package/run.sh

step "end to end: browser → collector → ClickHouse"
bash tests/e2e/run.sh

step "all passed"
