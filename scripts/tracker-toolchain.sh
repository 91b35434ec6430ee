#!/usr/bin/env bash
# The toolchain that builds the tracker: the dated nightly named in scripts/wasm-tools.env
# (TRACKER_NIGHTLY), with rust-src (to rebuild std for size) and the wasm32 target.
#   scripts/tracker-toolchain.sh ready     exit 0 when it is installed with both
#   scripts/tracker-toolchain.sh install   install what is missing through rustup (exit 1 if that fails)
#   scripts/tracker-toolchain.sh warn      print the loud stable-fallback warning (stderr)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=wasm-tools.env
source "$ROOT/scripts/wasm-tools.env"

ready() {
  local sysroot
  sysroot="$(rustup run "$TRACKER_NIGHTLY" rustc --print sysroot 2>/dev/null)" &&
    [[ -d "$sysroot/lib/rustlib/src/rust/library" && -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]]
}

case "${1:-ready}" in
  ready) ready ;;
  install)
    ready && exit 0
    # --profile minimal: rustc, cargo and rust-std only (no docs, no clippy); a few hundred MB.
    rustup toolchain install "$TRACKER_NIGHTLY" --profile minimal --component rust-src \
      --target wasm32-unknown-unknown >&2 || true
    ready
    ;;
  warn)
    cat >&2 <<TXT

##########################################################################################
##  WARNING: $TRACKER_NIGHTLY (with rust-src and wasm32-unknown-unknown) could not be
##  installed through rustup, so the tracker is built on the STABLE FALLBACK: it behaves
##  the same but its .wasm is several KB (gzip) larger than the size-first build the README
##  measures, and \`make test\` fails on its size. Install it with
##    rustup toolchain install $TRACKER_NIGHTLY --profile minimal --component rust-src --target wasm32-unknown-unknown
##  and build again.
##########################################################################################

TXT
    ;;
  *)
    echo "usage: $0 ready|install|warn" >&2
    exit 2
    ;;
esac
