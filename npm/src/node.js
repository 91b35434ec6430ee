// Entry for Node and other server or app runtimes that have `node:fs` ("node" condition; built
// as ESM and as CommonJS). No fetch of the .wasm: it is read from the package folder.
import { readFile } from 'node:fs/promises';
import { initSync } from './wasm/eventline_tracker.js';
import { Tracker } from './tracker.js';
import { splitOptions } from './options.js';

export { Tracker };

let loading;

async function compile(source) {
  if (source instanceof WebAssembly.Module) return source;
  let bytes = source;
  if (source === undefined) {
    bytes = await readFile(new URL('./wasm/eventline_tracker_bg.wasm', import.meta.url));
  } else if (typeof source === 'string' || source instanceof URL) {
    bytes = await readFile(source);
  } else if (typeof Response === 'function' && source instanceof Response) {
    bytes = await source.arrayBuffer();
  }
  return WebAssembly.compile(bytes);
}

/**
 * Instantiates the WebAssembly core once per process. `source` may be a file path or file: URL,
 * bytes, a Response or a compiled WebAssembly.Module; default: the .wasm inside this package.
 * A failed load is forgotten, so a later call tries again.
 */
export function loadWasm(source) {
  loading ??= compile(source)
    .then((module) => {
      initSync({ module });
    })
    .catch((error) => {
      loading = undefined;
      throw error;
    });
  return loading;
}

/** Loads the core if needed, then builds a Tracker (rejects with the Tracker's coded Error). */
export async function createTracker(options) {
  const [wasm, trackerOptions] = splitOptions(options);
  await loadWasm(wasm);
  return new Tracker(trackerOptions);
}
