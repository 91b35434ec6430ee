// esbuild does not follow `new URL(…, import.meta.url)`: the .wasm comes in as a file import
// (--loader:.wasm=file) and is handed to createTracker.
import { createTracker } from '@eventline/tracker';
import wasm from '@eventline/tracker/wasm';
import { run } from '../app.js';

run(createTracker, { wasm }).catch((error) => {
  window.result = { error: String(error), code: error.code };
});
