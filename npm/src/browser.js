// Entry for browsers and bundlers ("browser" / "import" conditions).
//
// The .wasm is referenced as `new URL('./wasm/…', import.meta.url)` on purpose: Vite, webpack 5,
// Parcel and Rollup's URL plugins recognise that exact pattern and emit the file with the bundle.
import { instantiate } from './core.js';
import { creator, once } from './entry.js';

export { Tracker } from './tracker.js';

/**
 * `loadWasm(source)` instantiates the WebAssembly core once per page. `source` may be a URL
 * (string or URL), a Response, bytes or a compiled WebAssembly.Module; default: the .wasm shipped
 * beside this file. `createTracker(options)` loads the core if needed, then builds a Tracker
 * (rejects with the Tracker's coded Error).
 */
export const loadWasm = once((source) => {
  source ??= new URL('./wasm/eventline_tracker_bg.wasm', import.meta.url);
  return instantiate(typeof source === 'string' || source instanceof URL ? fetch(source) : source);
});

// Pure: a bundle that only needs loadWasm (the embed file) leaves this out.
export const createTracker = /* @__PURE__ */ creator(loadWasm);
