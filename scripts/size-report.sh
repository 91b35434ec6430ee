#!/usr/bin/env bash
# Size report of the browser tracker: raw / gzip -9 / brotli bytes of the .wasm and the shipped JS,
# checked against the gzip budget (GZIP_BUDGET_BYTES in npm/scripts/size-report.mjs; exits 1 when
# over, in `make size` and `make test` alike), the files a page does not load (the embed's words
# for error codes, the JavaScript core for runtimes without WebAssembly) on their own, where the
# bytes go (twiggy's largest functions of the .wasm, and the JS wrapper's share beside the
# bindings), then the same measure for other trackers installed into .cache/size-peers/ (reused
# when present; delete the folder to measure their newest versions).
#   scripts/size-report.sh [--no-peers] [--no-build]
#     --no-peers: no peers, and twiggy is not installed (only used when already in tools/)
#     --no-build: measure npm/dist as it is (`make test` builds just before)
# Otherwise it builds first (scripts/build-tracker.sh, incremental), so it measures exactly what
# `make tracker` and `make run` build, with the pinned toolchain of scripts/wasm-tools.env.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=wasm-tools.env
source "$ROOT/scripts/wasm-tools.env"
args=()
build=1
peers=1
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --no-peers) peers=0; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done
if ((build)); then
  bash scripts/install-wasm-tools.sh >/dev/null
  bash scripts/build-tracker.sh
fi
(cd npm && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run --silent build >/dev/null)

# twiggy for the breakdown, cached under tools/ like wasm-bindgen-cli (a first install ~4 min).
TWIGGY="$ROOT/tools/twiggy-$TWIGGY_VERSION/bin/twiggy"
if ((peers)) && [[ ! -x "$TWIGGY" ]]; then
  echo "installing twiggy $TWIGGY_VERSION into tools/ (once; log tools/twiggy-install.log) ..."
  cargo install twiggy --version "=$TWIGGY_VERSION" --locked --root "$ROOT/tools/twiggy-$TWIGGY_VERSION" \
    >"$ROOT/tools/twiggy-install.log" 2>&1 || echo "    could not install twiggy: no per-function breakdown" >&2
fi
[[ -x "$TWIGGY" ]] && export EVENTLINE_TWIGGY="$TWIGGY"
exec node npm/scripts/size-report.mjs "${args[@]}"
