// The wasm-bindgen glue as the package ships it (npm/scripts/build.mjs bundles it; the size
// report measures it the same way).
//
// wasm-bindgen's loader is written for every way of calling it: deprecated argument forms with
// their warnings, a promise cache (entry.js's `once` already loads once), a console.warn text for
// a wrong MIME type and a TextEncoder.encodeInto polyfill (every browser of the es2020 target and
// Node 18 have it). Only the glue's loader is replaced, by one that takes what our entries pass
// (`{module_or_path}`: URL, string, Request, Response, bytes or Module; `{module}` for initSync);
// the bindings themselves stay as generated. Each replaced piece must be found exactly, so a
// wasm-bindgen upgrade that changes them fails the build here instead of shipping a broken glue.
const GLUE_LOADER = `
function initSync({ module }) {
  if (wasm !== undefined) return wasm;
  if (!(module instanceof WebAssembly.Module)) module = new WebAssembly.Module(module);
  return __wbg_finalize_init(new WebAssembly.Instance(module, __wbg_get_imports()), module);
}

async function __wbg_init({ module_or_path: source }) {
  if (wasm !== undefined) return wasm;
  const imports = __wbg_get_imports();
  if (typeof source === 'string' || source instanceof URL || (typeof Request === 'function' && source instanceof Request))
    source = fetch(source);
  source = await source;
  let result;
  if (typeof Response === 'function' && source instanceof Response) {
    if (!source.ok) throw new Error('failed to fetch Wasm: ' + source.status + ' ' + source.url);
    try {
      // Needs the application/wasm content type; otherwise compile from the bytes.
      result = await WebAssembly.instantiateStreaming(source.clone(), imports);
    } catch {
      result = await WebAssembly.instantiate(await source.arrayBuffer(), imports);
    }
  } else {
    result = await WebAssembly.instantiate(source, imports);
    if (result instanceof WebAssembly.Instance) result = { instance: result, module: source };
  }
  return __wbg_finalize_init(result.instance, result.module);
}

export { initSync, __wbg_init as default };
`;

export function slimGlue(text) {
  const cut = (from, to, replacement) => {
    const a = text.indexOf(from);
    const b = to === null ? text.length : text.indexOf(to, a);
    if (a < 0 || b < 0) throw new Error(`wasm-bindgen glue changed: "${from.slice(0, 40)}" not found (npm/scripts/glue.mjs)`);
    text = text.slice(0, a) + replacement + text.slice(to === null ? b : b + to.length);
  };
  cut("if (!('encodeInto' in cachedTextEncoder)) {", '\n}\n', '');
  cut('async function __wbg_load(module, imports) {', null, GLUE_LOADER);
  return text;
}

