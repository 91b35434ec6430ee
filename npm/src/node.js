// Entry for Node and other server or app runtimes that have `node:fs` ("node" condition; built
// as ESM and as CommonJS). No fetch of the .wasm: it is read from the package folder. Where
// WebAssembly is missing (`node --noexpose_wasm`, some locked-down runtimes), the same core
// runs as JavaScript (dist/core.wasm.js), imported only then.
import { readFile } from 'node:fs/promises';
import { instantiate, instantiateJs } from './core.js';
import { creator, once } from './entry.js';
import { messages } from './messages.js';
import { setMessages } from './tracker.js';

export { Tracker } from './tracker.js';

setMessages(messages);

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
 * `loadWasm(source)` instantiates the WebAssembly core once per process. `source` may be a file
 * path or file: URL, bytes, a Response or a compiled WebAssembly.Module; default: the .wasm inside
 * this package. Without WebAssembly, `source` is ignored and the JavaScript core is loaded.
 * `createTracker(options)` loads the core if needed, then builds a Tracker.
 */
export const loadWasm = once(async (source) =>
  typeof WebAssembly === 'object'
    ? instantiate(await compile(source))
    : instantiateJs((await import('./core.wasm.js')).instantiate),
);

export const createTracker = creator(loadWasm);
