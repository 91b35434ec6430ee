// Entry for browsers and bundlers ("browser" / "import" conditions).
//
// The .wasm is referenced as `new URL('./wasm/…', import.meta.url)` on purpose: Vite, webpack 5,
// Parcel and Rollup's URL plugins recognise that exact pattern and emit the file with the bundle.
import init from './wasm/eventline_tracker.js';
import { Tracker } from './tracker.js';
import { splitOptions } from './options.js';

export { Tracker };

let loading;

/**
 * Instantiates the WebAssembly core once per page. `source` may be a URL (string or URL), a
 * Response, bytes or a compiled WebAssembly.Module; default: the .wasm shipped beside this file.
 * A failed load is forgotten, so a later call tries again.
 */
export function loadWasm(source) {
  loading ??= init({
    module_or_path: source ?? new URL('./wasm/eventline_tracker_bg.wasm', import.meta.url),
  }).then(
    () => {},
    (error) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** Loads the core if needed, then builds a Tracker (rejects with the Tracker's coded Error). */
export async function createTracker(options) {
  const [wasm, trackerOptions] = splitOptions(options);
  await loadWasm(wasm);
  return new Tracker(trackerOptions);
}
