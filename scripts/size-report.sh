#!/usr/bin/env bash
# Size report of the browser tracker: raw / gzip -9 / brotli bytes of the .wasm and the shipped JS,
# checked against the gzip budget (GZIP_BUDGET_BYTES in npm/scripts/size-report.mjs; exits 1 when
# over), then the same measure for other trackers installed into .cache/size-peers/ (reused when
# present; delete the folder to measure their newest versions).
#   scripts/size-report.sh [--no-peers] [--strict]   (--strict: fail above the budget itself, as `make size` does)
# Needs the Rust build (npm/dist/wasm/, from scripts/build-tracker.sh; run here when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -f npm/dist/wasm/eventline_tracker_bg.wasm ]] || { bash scripts/install-wasm-tools.sh && bash scripts/build-tracker.sh; }
(cd npm && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run --silent build >/dev/null)
exec node npm/scripts/size-report.mjs "$@"
