#!/usr/bin/env bash
# Builds the browser tracker into npm/dist/wasm/: eventline_tracker_bg.wasm (after wasm-opt -Oz,
# with minified import/export names), eventline_tracker_bg.wasm2js.js (the same translated to
# JavaScript by wasm2js, for runtimes without WebAssembly), names.json (that renaming, for
# npm/scripts/build.mjs) and
# wasm-bindgen's generated glue eventline_tracker.js (+ .d.ts, snippets/), which the package does
# not ship: npm/scripts/build.mjs only checks its hand-written bindings (npm/src/core.js) against
# it. Prints raw / gzip / brotli sizes. Run scripts/install-wasm-tools.sh first.
# Builds with the dated nightly of scripts/wasm-tools.env (installed here through rustup when
# missing); only when that cannot be installed, the stable fallback, with a loud warning.
# Honours CARGO_TARGET_DIR (default target/); records the toolchain used in
# $CARGO_TARGET_DIR/tracker-toolchain.txt for the size report, and leaves a names-kept copy of
# the .wasm there (tracker-named.wasm) for its per-function breakdown.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=wasm-tools.env
source "$ROOT/scripts/wasm-tools.env"
OUT="$ROOT/npm/dist/wasm"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WASM_BINDGEN="$ROOT/tools/wasm-bindgen-$WASM_BINDGEN_VERSION/bin/wasm-bindgen"
[[ -x "$WASM_BINDGEN" ]] || WASM_BINDGEN="$(command -v wasm-bindgen || true)"
if [[ -z "$WASM_BINDGEN" ]] || ! "$WASM_BINDGEN" --version | grep -qF "$WASM_BINDGEN_VERSION"; then
  echo "wasm-bindgen $WASM_BINDGEN_VERSION not found: run scripts/install-wasm-tools.sh" >&2
  exit 1
fi
# binaryen from npm (v132) first, for wasm-opt and wasm2js: its output is smaller, and Debian's
# binaryen 108 broke the externref table wasm-bindgen emitted while reference types were on.
if [[ -x "$ROOT/tools/binaryen-$BINARYEN_NPM_VERSION/node_modules/.bin/wasm-opt" ]]; then
  WASM_OPT=("$ROOT/tools/binaryen-$BINARYEN_NPM_VERSION/node_modules/.bin/wasm-opt")
  WASM2JS=("$ROOT/tools/binaryen-$BINARYEN_NPM_VERSION/node_modules/.bin/wasm2js")
elif command -v wasm-opt >/dev/null && [[ $(wasm-opt --version | grep -o '[0-9]\+' | head -1) -ge 116 ]]; then
  WASM_OPT=(wasm-opt)
  WASM2JS=(wasm2js)
else
  echo "wasm-opt (binaryen >= 116) not found: run scripts/install-wasm-tools.sh" >&2
  exit 1
fi

# Size-first settings for this build only (the collector's release profile is untouched):
# fat LTO and one codegen unit let LLVM drop more; panic=abort removes unwinding tables;
# opt-level z. Keep strip at "debuginfo": a full strip drops the target_features section and
# wasm-opt then rejects bulk-memory instructions.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
export CARGO_PROFILE_RELEASE_LTO=fat
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_PANIC=abort
export CARGO_PROFILE_RELEASE_STRIP=debuginfo
# No reference types and no multi-value: the interface passes only numbers and strings (see
# tracker-wasm/src/bindings/core.rs), so wasm-bindgen then adds no externref table, and the one
# .wasm can also be translated to JavaScript by wasm2js (which supports neither) for runtimes
# without WebAssembly.
NO_REFS="-Ctarget-feature=-reference-types,-multivalue"
# What the .wasm may use, given to every binaryen tool (the stable build's features section is
# dropped, see below): Rust 1.95's wasm32 defaults without those two.
FEATURES=(--mvp-features --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-bulk-memory-opt --enable-call-indirect-overlong)
# The size-first build: the pinned nightly rebuilds std for size with panic=immediate-abort, so
# no panic message formatting (core::fmt) ships. The -Z flags are unstable, which is why the
# nightly is pinned by date in scripts/wasm-tools.env; re-measure when changing it.
if bash "$ROOT/scripts/tracker-toolchain.sh" install; then
  TOOLCHAIN="$TRACKER_NIGHTLY"
  echo "== wasm build: $TRACKER_NIGHTLY, std rebuilt with panic=immediate-abort and optimize_for_size"
  # location-detail=none / fmt-debug=none: no source paths or Debug formatting in the .wasm.
  # cross-crate-inline-threshold=always: every function's MIR is available to other crates,
  # which changes how std/alloc/wasm-bindgen helpers are inlined and merged into our code:
  # 17,762 -> 14,398 B gzip (measured 2026-11-25; adding -Zinline-mir=yes, at any threshold,
  # was 540 B larger than this alone).
  RUSTFLAGS="$NO_REFS -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none -Zcross-crate-inline-threshold=always" \
    cargo "+$TRACKER_NIGHTLY" -Zpanic-immediate-abort build --release -p eventline-tracker \
    --target wasm32-unknown-unknown --target-dir "$TARGET/wasm-nightly" \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
  BUILT="$TARGET/wasm-nightly/wasm32-unknown-unknown/release/eventline_tracker.wasm"
else
  bash "$ROOT/scripts/tracker-toolchain.sh" warn
  TOOLCHAIN="stable (fallback)"
  echo "== wasm build: STABLE FALLBACK (larger; see the warning above)"
  RUSTFLAGS="$NO_REFS" cargo build --release -p eventline-tracker --target wasm32-unknown-unknown --target-dir "$TARGET/wasm-stable"
  # Stable's prebuilt std is compiled with reference types, and the .wasm's target_features
  # section says so: wasm-bindgen would then expect an externref table the interface does not
  # use. The section goes (binaryen gets the features from FEATURES instead).
  "${WASM_OPT[@]}" "${FEATURES[@]}" --strip-target-features -o "$TARGET/tracker-stable.wasm" \
    "$TARGET/wasm-stable/wasm32-unknown-unknown/release/eventline_tracker.wasm"
  BUILT="$TARGET/tracker-stable.wasm"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
# The size report names the toolchain that built what it measures (npm/scripts/size-report.mjs).
mkdir -p "$TARGET"
echo "$TOOLCHAIN" >"$TARGET/tracker-toolchain.txt"
"$WASM_BINDGEN" --target web --out-name eventline_tracker --out-dir "$OUT" \
  "$BUILT"
# --flatten --rereloop between two -Oz rounds re-derives the control flow of the inlined exports:
# 157 B gzip less on nightly, 90 B on stable (measured 2026-11-25); --merge-similar-functions and
# a third -Oz after them: 24 B less (2026-11-30).
OPT_FLAGS=(-Oz --flatten --rereloop -Oz --merge-similar-functions -Oz --converge --low-memory-unused --zero-filled-memory --strip-producers)
# The same optimisation keeping the function names, for `make size`'s per-function breakdown.
"${WASM_OPT[@]}" "${FEATURES[@]}" "${OPT_FLAGS[@]}" --strip-target-features --debuginfo -o "$TARGET/tracker-named.wasm" "$OUT/eventline_tracker_bg.wasm"
"${WASM_OPT[@]}" "${FEATURES[@]}" "${OPT_FLAGS[@]}" --strip-debug -o "$OUT/eventline_tracker_bg.wasm" "$OUT/eventline_tracker_bg.wasm"
# Then one- or two-letter import, export and module names (wasm-bindgen's import names carry
# 16-hex-digit hashes): about 330 B gzip. A run of its own, since --converge would repeat it. The
# mapping (JSON, printed by wasm-opt) goes beside the .wasm for npm/scripts/build.mjs, which writes
# the short names into the package's bindings (npm/src/core.js); the generated glue beside it keeps
# the long names, is read only by that build's check, and is not shipped.
"${WASM_OPT[@]}" "${FEATURES[@]}" --minify-imports-and-exports-and-modules --strip-target-features \
  -o "$OUT/eventline_tracker_bg.wasm" "$OUT/eventline_tracker_bg.wasm" >"$OUT/names.json"
# The same core for runtimes without WebAssembly (React Native's Hermes): binaryen's wasm2js
# translates this very .wasm (short names and all) to JavaScript; npm/scripts/build.mjs turns it
# into dist/core.wasm.js. Not loaded by browsers.
# wasm2js has no saturating float-to-int conversions of i64: they are lowered first to the
# range-checked MVP instructions LLVM would emit without them (same results).
"${WASM_OPT[@]}" "${FEATURES[@]}" --llvm-nontrapping-fptoint-lowering -o "$TARGET/tracker-mvp.wasm" "$OUT/eventline_tracker_bg.wasm"
"${WASM2JS[@]}" "${FEATURES[@]}" -Oz -o "$OUT/eventline_tracker_bg.wasm2js.js" "$TARGET/tracker-mvp.wasm"

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
echo "== npm/dist/wasm"
size_line "$OUT/eventline_tracker_bg.wasm"
size_line "$OUT/eventline_tracker_bg.wasm2js.js"
