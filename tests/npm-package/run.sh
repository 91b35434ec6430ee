#!/usr/bin/env bash
# Package test: packs npm/ like a release, installs the tarball into an empty folder and checks
#   - Node ESM `import` and CommonJS `require` (host storage, recording transport, wire body, codes),
#     once with WebAssembly and once under `node --noexpose_wasm` (the JavaScript core)
#   - a Vite 7, an esbuild and a webpack 5 build of a page that imports it, and the same page
#     served by the Vite dev server (`vite dev`), run in headless Chromium
#   - dist/eventline.js behind the loader snippet, in Chromium
# against a tiny local server on 127.0.0.1:18195 that answers /v1/events like the collector.
# Builds the npm package first; runs scripts/build-tracker.sh only when npm/dist/wasm is missing
# (CI should run it before, so the .wasm is fresh).
# Env: KEEP=1 keeps the temp folder; CHROMIUM=/path overrides /usr/bin/chromium;
#      NPM_PACKAGE_TEST_PORT overrides 18195.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
  echo "== installing Debian chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

echo "== build npm/ (npm ci + npm run build + typecheck)"
cd "$ROOT"
[[ -f npm/dist/wasm/eventline_tracker_bg.wasm ]] || { bash scripts/install-wasm-tools.sh && bash scripts/build-tracker.sh; }
cd "$ROOT/npm"
[[ -d node_modules ]] || npm ci --no-audit --no-fund
npm run --silent build
npm run --silent typecheck

echo "== test tools (tests/npm-package: vite, esbuild, webpack, playwright-core)"
cd "$HERE"
[[ -d node_modules ]] || npm ci --no-audit --no-fund

work="$(mktemp -d /tmp/eventline-npm-package.XXXXXX)"
if [[ "${KEEP:-}" == 1 ]]; then echo "   keeping $work"; else trap 'rm -rf "$work"' EXIT; fi

echo "== npm pack"
tarball="$(cd "$ROOT/npm" && npm pack --silent --pack-destination "$work" | tail -n 1)"
listing="$(tar -tzf "$work/$tarball" | sort)"
echo "   $tarball: $(echo "$listing" | tr '\n' ' ')"
for want in package/dist/index.js package/dist/node.mjs package/dist/node.cjs package/dist/eventline.js \
  package/dist/messages.js package/dist/native.js package/dist/core.wasm.js \
  package/dist/snippet.js package/dist/index.d.ts package/dist/wasm/eventline_tracker_bg.wasm package/README.md; do
  grep -qx "$want" <<<"$listing" || { echo "missing from the tarball: $want"; exit 1; }
done

echo "== install the tarball into an empty folder"
consumer="$work/consumer"
mkdir -p "$consumer"
(cd "$consumer" && npm install --no-audit --no-fund --silent "$work/$tarball")
cp "$HERE/wire.cjs" "$HERE/node-esm.test.mjs" "$HERE/node-cjs.test.cjs" "$HERE/node-tracker.test.mjs" "$consumer/"

echo "== node --test (ESM, CommonJS, types, Chromium)"
cd "$consumer"
CONSUMER_DIR="$consumer" node --test --test-concurrency=1 \
  node-esm.test.mjs node-cjs.test.cjs node-tracker.test.mjs "$HERE/types.test.mjs" "$HERE/browser.test.mjs"

# Runtimes without WebAssembly (React Native's Hermes): the same Node tests with WebAssembly
# switched off; the package must choose its JavaScript core (dist/core.wasm.js) by itself.
echo "== node --noexpose_wasm --test (ESM, CommonJS: the JavaScript core)"
EVENTLINE_NO_WASM=1 node --noexpose_wasm --test --test-concurrency=1 \
  node-esm.test.mjs node-cjs.test.cjs node-tracker.test.mjs
