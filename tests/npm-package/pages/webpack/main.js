// webpack 5 follows `new URL('./wasm/…', import.meta.url)` in the package by itself: the .wasm is
// emitted as an asset, with no loader or option.
import { createTracker } from '@eventline/tracker';
import { run } from '../app.js';

run(createTracker).catch((error) => {
  window.result = { error: String(error), code: error.code };
});
