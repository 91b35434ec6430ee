#!/usr/bin/env bash
# Runs the tracker's wasm-bindgen-test suites: tracker-wasm/tests/node.rs in Node and
# tracker-wasm/tests/browser.rs in headless Chromium (Debian chromium + chromedriver).
# Usage: scripts/test-tracker-wasm.sh [node|browser]   (default: both)
# Not `cargo test -q`: wasm-bindgen-test-runner rejects the --quiet it would pass on.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=wasm-tools.env
source "$ROOT/scripts/wasm-tools.env"
RUNNER_DIR="$ROOT/tools/wasm-bindgen-$WASM_BINDGEN_VERSION/bin"
if [[ ! -x "$RUNNER_DIR/wasm-bindgen-test-runner" ]]; then
  echo "wasm-bindgen-test-runner not found: run scripts/install-wasm-tools.sh" >&2
  exit 1
fi
export PATH="$RUNNER_DIR:$PATH"
# The runner's webdriver.json (browser flags) is read from the package directory.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"

suites=("${@:-node browser}")
for suite in ${suites[*]}; do
  case "$suite" in
    node)
      echo "== tracker wasm tests in Node"
      cargo test -p eventline-tracker --target wasm32-unknown-unknown --test node
      ;;
    browser)
      echo "== tracker wasm tests in headless Chromium"
      export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
      if [[ ! -x "$CHROMEDRIVER" ]]; then
        echo "chromedriver not found: WITH_BROWSER=1 scripts/install-wasm-tools.sh" >&2
        exit 1
      fi
      cargo test -p eventline-tracker --target wasm32-unknown-unknown --test browser
      ;;
    *)
      echo "unknown suite $suite (node|browser)" >&2
      exit 2
      ;;
  esac
done
