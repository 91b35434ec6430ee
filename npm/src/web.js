// Loading the core in browsers, shared by the bundler entry (browser.js) and the embed (embed.js).
//
// The .wasm is referenced as `new URL('./wasm/…', import.meta.url)` on purpose: Vite, webpack 5,
// Parcel and Rollup's URL plugins recognise that exact pattern and emit the file with the bundle.
import { instantiate } from './core.js';
import { once } from './entry.js';

/**
 * `loadWasm(source)` instantiates the WebAssembly core once per page. `source` may be a URL
 * (string or URL), a Response, bytes or a compiled WebAssembly.Module; default: the .wasm shipped
 * beside this file.
 */
export const loadWasm = once((source) => {
  source ??= new URL('./wasm/eventline_tracker_bg.wasm', import.meta.url);
  return instantiate(typeof source === 'string' || source instanceof URL ? fetch(source) : source);
});
