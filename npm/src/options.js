// `wasm` is the wrapper's own option (where the core comes from); the Tracker never sees it.
export function splitOptions(options) {
  if (options === null || typeof options !== 'object' || !('wasm' in options)) {
    return [undefined, options];
  }
  const { wasm, ...rest } = options;
  return [wasm, rest];
}
