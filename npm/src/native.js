// Entry for React Native and other JavaScript runtimes without `node:fs` and without a .wasm to
// fetch ("react-native" condition). Hermes, React Native's default engine, has no WebAssembly,
// so the core is its JavaScript build (dist/core.wasm.js: binaryen's wasm2js of the same .wasm,
// the same code and behaviour), imported statically so Metro bundles it. Such runtimes have no
// localStorage either: pass `storage` (e.g. an AsyncStorage-backed cache, see
// examples/react-native) or the queue lives in memory only.
import { instantiate, instantiateJs } from './core.js';
import { instantiate as build } from './core.wasm.js';
import { creator, once } from './entry.js';
import { messages } from './messages.js';
import { setMessages } from './tracker.js';

export { Tracker } from './tracker.js';

setMessages(messages);

/**
 * `loadWasm(source)` sets up the core once: the JavaScript build; or, given `source` (bytes, a
 * Response or a compiled WebAssembly.Module) on an engine with WebAssembly, that .wasm.
 */
export const loadWasm = once(async (source) =>
  source != null && typeof WebAssembly === 'object' ? instantiate(source) : instantiateJs(build),
);

export const createTracker = creator(loadWasm);
