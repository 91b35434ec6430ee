// What the browser and Node entries share: the core is loaded once per realm, and
// `createTracker` takes the wrapper's own `wasm` option (where the core comes from) out of the
// options before the Tracker sees them. Only how the .wasm is fetched differs per entry.
import { Tracker } from './tracker.js';

/** `loadWasm` for a `load(source)` that instantiates the core: runs once; a failure is forgotten. */
export function once(load) {
  let loading;
  return (source) =>
    (loading ??= load(source).then(
      () => {},
      (error) => {
        loading = undefined;
        throw error;
      },
    ));
}

/** `createTracker` on top of a `loadWasm`. */
export function creator(loadWasm) {
  return async (options) => {
    let wasm;
    let rest = options;
    if (options !== null && typeof options === 'object' && 'wasm' in options) ({ wasm, ...rest } = options);
    await loadWasm(wasm);
    return new Tracker(rest);
  };
}
