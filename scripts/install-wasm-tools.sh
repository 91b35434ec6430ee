#!/usr/bin/env bash
# Installs what scripts/build-tracker.sh and scripts/test-tracker-wasm.sh need, reusing what is
# already there: the wasm32 target, wasm-bindgen-cli (pinned to the wasm-bindgen crate version,
# cached under tools/), and wasm-opt (npm binaryen@132 under tools/; Debian's is too old).
# Prints the tool it uses for each step and how long the step took.
# Env: WITH_BROWSER=1 also installs Debian chromium + chromium-driver (browser test suite).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Must equal the `wasm-bindgen = "=…"` pin in Cargo.toml: the CLI refuses a mismatched library.
WASM_BINDGEN_VERSION="0.2.130"
BINARYEN_NPM_VERSION="132"
WB_ROOT="$ROOT/tools/wasm-bindgen-$WASM_BINDGEN_VERSION"
BINARYEN_ROOT="$ROOT/tools/binaryen-$BINARYEN_NPM_VERSION"

t0=$(date +%s)
took() { echo "    ($(( $(date +%s) - t0 )) s)"; t0=$(date +%s); }

echo "== rust target wasm32-unknown-unknown"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
took

echo "== wasm-bindgen-cli $WASM_BINDGEN_VERSION"
if [[ -x "$WB_ROOT/bin/wasm-bindgen" ]] \
  && "$WB_ROOT/bin/wasm-bindgen" --version | grep -qF "$WASM_BINDGEN_VERSION"; then
  echo "    reused $WB_ROOT/bin/wasm-bindgen"
else
  # No --locked: the CLI's own lockfile pins a webpki-roots version this registry lacks.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --root "$WB_ROOT" --force
  echo "    installed $WB_ROOT/bin/wasm-bindgen"
fi
took

echo "== wasm-opt"
# npm binaryen@132 first: Debian's binaryen (108) breaks the externref table wasm-bindgen
# 0.2.130 emits (the module fails at init), so it is used only if it is new enough (>= 116).
system_opt_version() { wasm-opt --version 2>/dev/null | grep -o '[0-9]\+' | head -1; }
if [[ -x "$BINARYEN_ROOT/node_modules/.bin/wasm-opt" ]]; then
  echo "    reused npm binaryen@$BINARYEN_NPM_VERSION under $BINARYEN_ROOT"
elif command -v npm >/dev/null; then
  mkdir -p "$BINARYEN_ROOT"
  npm install --silent --no-audit --no-fund --prefix "$BINARYEN_ROOT" "binaryen@$BINARYEN_NPM_VERSION"
  echo "    installed npm binaryen@$BINARYEN_NPM_VERSION under $BINARYEN_ROOT"
elif command -v wasm-opt >/dev/null && [[ $(system_opt_version) -ge 116 ]]; then
  echo "    using $(command -v wasm-opt) ($(wasm-opt --version))"
elif command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq binaryen >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq binaryen >/dev/null; }
  echo "    installed Debian binaryen: $(wasm-opt --version)"
  if [[ $(system_opt_version) -lt 116 ]]; then
    echo "    binaryen $(system_opt_version) is too old for wasm-bindgen 0.2.130 output; install node/npm" >&2
    exit 1
  fi
else
  echo "    no npm and no usable wasm-opt: install node/npm (binaryen@$BINARYEN_NPM_VERSION)" >&2
  exit 1
fi
took

if [[ "${WITH_BROWSER:-0}" == 1 ]]; then
  echo "== chromium + chromedriver (browser tests)"
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "    using $(command -v chromium), $(command -v chromedriver)"
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }
    echo "    installed Debian chromium: $(chromium --version 2>/dev/null || true)"
  fi
  took
fi
