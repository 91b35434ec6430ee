#!/usr/bin/env bash
# Builds the browser tracker into npm/dist/wasm/: eventline_tracker.js (ESM glue: default init(),
# initSync({module}), class Tracker), eventline_tracker_bg.wasm (after wasm-opt -Oz) and
# eventline_tracker.d.ts. Prints raw / gzip / brotli sizes. Run scripts/install-wasm-tools.sh first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WASM_BINDGEN_VERSION="0.2.130"
OUT="$ROOT/npm/dist/wasm"
WASM_BINDGEN="$ROOT/tools/wasm-bindgen-$WASM_BINDGEN_VERSION/bin/wasm-bindgen"
[[ -x "$WASM_BINDGEN" ]] || WASM_BINDGEN="$(command -v wasm-bindgen || true)"
if [[ -z "$WASM_BINDGEN" ]] || ! "$WASM_BINDGEN" --version | grep -qF "$WASM_BINDGEN_VERSION"; then
  echo "wasm-bindgen $WASM_BINDGEN_VERSION not found: run scripts/install-wasm-tools.sh" >&2
  exit 1
fi
# binaryen from npm (v132) first: Debian's binaryen 108 rewrites the externref table that
# wasm-bindgen 0.2.130 emits into a funcref table, and the module then fails at init.
if [[ -x "$ROOT/tools/binaryen-132/node_modules/.bin/wasm-opt" ]]; then
  WASM_OPT=("$ROOT/tools/binaryen-132/node_modules/.bin/wasm-opt")
elif command -v wasm-opt >/dev/null && [[ $(wasm-opt --version | grep -o '[0-9]\+' | head -1) -ge 116 ]]; then
  WASM_OPT=(wasm-opt)
else
  echo "wasm-opt (binaryen >= 116) not found: run scripts/install-wasm-tools.sh" >&2
  exit 1
fi

# Size-first settings for this build only (the collector's release profile is untouched):
# fat LTO and one codegen unit let LLVM drop more; panic=abort removes unwinding tables;
# opt-level z. Keep strip at "debuginfo": a full strip drops the target_features section and
# wasm-opt then rejects bulk-memory instructions (shared/WASM.md).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
export CARGO_PROFILE_RELEASE_LTO=fat
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_PANIC=abort
export CARGO_PROFILE_RELEASE_STRIP=debuginfo
# With a nightly toolchain and its rust-src, std is rebuilt for size with panic=immediate-abort:
# no panic message formatting (core::fmt) ships, about 2.3 KB gzip less. Otherwise (or with
# EVENTLINE_WASM_TOOLCHAIN=stable) the stable build, which is larger but behaves the same.
# The -Z flags below are unstable: sizes were measured with rustc 1.97.0-nightly (e50aa6fba
# 2026-05-19). For a reproducible CI build, install one dated nightly with rust-src and name it
# in EVENTLINE_NIGHTLY (e.g. nightly-YYYY-MM-DD; default: whatever `nightly` is).
TOOLCHAIN="${EVENTLINE_WASM_TOOLCHAIN:-auto}"
NIGHTLY="${EVENTLINE_NIGHTLY:-nightly}"
if [[ "$TOOLCHAIN" == auto ]]; then
  TOOLCHAIN=stable
  if sysroot="$(rustup run "$NIGHTLY" rustc --print sysroot 2>/dev/null)" \
    && [[ -d "$sysroot/lib/rustlib/src/rust/library" ]]; then
    TOOLCHAIN=nightly
  fi
fi
if [[ "$TOOLCHAIN" == nightly ]]; then
  echo "== wasm build: nightly, std rebuilt with panic=immediate-abort and optimize_for_size"
  # location-detail=none / fmt-debug=none: no source paths or Debug formatting in the .wasm.
  # cross-crate-inline-threshold=always: every function's MIR is available to other crates,
  # which changes how std/alloc/wasm-bindgen helpers are inlined and merged into our code:
  # 17,762 -> 14,398 B gzip (measured 2026-11-25; adding -Zinline-mir=yes, at any threshold,
  # was 540 B larger than this alone). Re-measure when the code or the nightly changes.
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none -Zcross-crate-inline-threshold=always" \
    cargo "+$NIGHTLY" -Zpanic-immediate-abort build --release -p eventline-tracker \
    --target wasm32-unknown-unknown --target-dir "$ROOT/target/wasm-nightly" \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
  BUILT="$ROOT/target/wasm-nightly/wasm32-unknown-unknown/release/eventline_tracker.wasm"
else
  echo "== wasm build: stable"
  cargo build --release -p eventline-tracker --target wasm32-unknown-unknown
  BUILT="$ROOT/target/wasm32-unknown-unknown/release/eventline_tracker.wasm"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
# The size report's no-regression ceiling depends on the toolchain (npm/scripts/size-report.mjs).
echo "$TOOLCHAIN" >"$ROOT/target/tracker-toolchain.txt"
"$WASM_BINDGEN" --target web --out-name eventline_tracker --out-dir "$OUT" \
  "$BUILT"
# --flatten --rereloop between two -Oz rounds re-derives the control flow of the inlined exports:
# 157 B gzip less on nightly, 90 B on stable (measured 2026-11-25).
"${WASM_OPT[@]}" -Oz --flatten --rereloop -Oz --converge --low-memory-unused --zero-filled-memory --strip-debug --strip-producers --strip-target-features \
  -o "$OUT/eventline_tracker_bg.wasm" "$OUT/eventline_tracker_bg.wasm"

size_line() {
  local f="$1" raw gz br=""
  raw=$(wc -c <"$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  if command -v brotli >/dev/null; then
    br=$(brotli -c -q 11 "$f" | wc -c)
  else
    br=$(node -e 'const z=require("zlib"),fs=require("fs");process.stdout.write(String(z.brotliCompressSync(fs.readFileSync(process.argv[1]),{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}}).length))' "$f" 2>/dev/null || echo "?")
  fi
  printf '%-28s raw %7d  gzip %6d  brotli %6s\n' "$(basename "$f")" "$raw" "$gz" "$br"
}
echo "== npm/dist/wasm (before any JS minification)"
size_line "$OUT/eventline_tracker_bg.wasm"
size_line "$OUT/eventline_tracker.js"
