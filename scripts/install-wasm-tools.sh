#!/usr/bin/env bash
# Installs what scripts/build-tracker.sh and scripts/test-tracker-wasm.sh need, reusing what is
# already there: the pinned nightly (scripts/wasm-tools.env: TRACKER_NIGHTLY) with rust-src and
# the wasm32 target through rustup, the wasm32 target on the default toolchain (tests, clippy),
# wasm-bindgen-cli (pinned to the wasm-bindgen crate version, cached under tools/), wasm-opt (npm
# binaryen under tools/; Debian's is too old).
# Prints the tool it uses for each step and how long the step took.
# When the nightly cannot be installed, it says so loudly and scripts/build-tracker.sh then
# builds the larger stable fallback (which `make test`'s size check rejects).
# Env: WITH_BROWSER=1 also installs Debian chromium + chromium-driver (browser test suite).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=wasm-tools.env
source "$ROOT/scripts/wasm-tools.env"
pinned="$(grep -o 'wasm-bindgen = { version = "=[^"]*"' "$ROOT/Cargo.toml" | grep -o '[0-9][0-9.]*')"
if [[ "$pinned" != "$WASM_BINDGEN_VERSION" ]]; then
  echo "scripts/wasm-tools.env says wasm-bindgen $WASM_BINDGEN_VERSION, Cargo.toml pins =$pinned: make them equal" >&2
  exit 1
fi
WB_ROOT="$ROOT/tools/wasm-bindgen-$WASM_BINDGEN_VERSION"
BINARYEN_ROOT="$ROOT/tools/binaryen-$BINARYEN_NPM_VERSION"

t0=$(date +%s)
took() { echo "    ($(( $(date +%s) - t0 )) s)"; t0=$(date +%s); }

echo "== rust target wasm32-unknown-unknown (default toolchain: tests and clippy)"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
took

echo "== $TRACKER_NIGHTLY with rust-src and wasm32 (the tracker build)"
if bash "$ROOT/scripts/tracker-toolchain.sh" install; then
  echo "    $(rustup run "$TRACKER_NIGHTLY" rustc --version)"
else
  bash "$ROOT/scripts/tracker-toolchain.sh" warn
fi
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
# npm binaryen@132 first (wasm-opt and wasm2js): Debian's binaryen (108) broke the externref
# table wasm-bindgen 0.2.130 emitted with reference types on, so it is used only if it is new
# enough (>= 116).
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
