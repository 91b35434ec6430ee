// The package talks to the WebAssembly core through npm/src/core.js, written for the ABI of the
// pinned wasm-bindgen. checkGlue() compares wasm-bindgen's generated glue (dist/wasm/
// eventline_tracker.js, which the Rust test suites use) with what core.js assumes, so that a
// wasm-bindgen upgrade or a changed Rust signature fails the build instead of shipping a core.js
// that passes the wrong arguments.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const coreJs = join(dirname(dirname(fileURLToPath(import.meta.url))), 'src', 'core.js');

/** The imports core.js provides, from its text: name (as in the glue) -> number of arguments. */
async function coreImports() {
  const text = await readFile(coreJs, 'utf8');
  const imports = {};
  for (const [, name, args] of text.matchAll(/^\s+\[WASM\.(\w+)\]: \(([^)]*)\) =>/gm)) imports[name] = count(args);
  if (!Object.keys(imports).length) throw new Error(`found no \`[WASM.<name>]: (...) =>\` imports in ${coreJs}`);
  return imports;
}

/** Each export core.js calls, with the number of wasm arguments it passes (a string is two). */
const EXPORTS = {
  core_free: 1,
  core_new: 15,
  core_call: 9,
  core_op: 3,
  check: 4,
};

const count = (args) => (args.trim() ? args.split(',').length : 0);

export async function checkGlue(gluePath) {
  const glue = await readFile(gluePath, 'utf8');
  const problems = [];
  const calls = new Map();
  for (const [, name, args] of glue.matchAll(/\bwasm\.(\w+)\(([^()]*)\)/g)) calls.set(name, count(args));
  for (const [name, args] of calls) {
    // The allocator (wasmNames finds it by its use).
    if (/^__wbindgen_(malloc|realloc|free|export\d*)$/.test(name)) continue;
    if (EXPORTS[name] !== args) problems.push(`export ${name}: the glue passes ${args} arguments, core.js ${EXPORTS[name] ?? 'none'}`);
  }
  for (const name of Object.keys(EXPORTS)) if (!calls.has(name)) problems.push(`export ${name}: not in the glue`);

  const ours = await coreImports();
  const imports = new Map();
  for (const [, name, args] of glue.matchAll(/^\s+(__wbg_\w+|__wbindgen_\w+): function\(([^)]*)\)/gm))
    imports.set(name.replace(/^__wbg_|_[0-9a-f]{16}$/g, ''), count(args));
  for (const [name, args] of imports)
    if (ours[name] !== args) problems.push(`import ${name}: the glue takes ${args} arguments, core.js ${ours[name] ?? 'none'}`);
  // core.js may handle more imports than a build has (`__wbindgen_throw`: the stable fallback's).

  // core.js passes no JavaScript objects and runs no start function (scripts/build-tracker.sh
  // builds without reference types; tracker-wasm/src/bindings/core.rs passes numbers).
  for (const what of ['__wbindgen_externrefs', '__wbindgen_start', 'addHeapObject'])
    if (glue.includes(what)) problems.push(`the glue uses ${what}: core.js passes no JavaScript objects and calls no start function`);

  if (problems.length) {
    throw new Error(`npm/src/core.js does not match the wasm-bindgen glue of this build:\n  ${problems.join('\n  ')}`);
  }
}

/**
 * esbuild defines `WASM.<name>` -> the .wasm's short name, from the mapping scripts/build-tracker.sh
 * leaves in `wasmDir`: an import by its glue name without `__wbg_` and the hash, an export by its
 * name, and `WASM.module` (the mapping does not list the module; the module itself does).
 */
export async function wasmNames(wasmDir) {
  const names = JSON.parse(await readFile(join(wasmDir, 'names.json'), 'utf8'));
  const define = {};
  const short = (name, to) => (define[`WASM.${name}`] = JSON.stringify(to));
  for (const [, name, to] of names.imports) short(name.replace(/^__wbg_|_[0-9a-f]{16}$/g, ''), to);
  for (const [name, to] of names.exports) short(name, to);
  // The allocator's exports: wasm-bindgen names them `__wbindgen_malloc` / `__wbindgen_realloc`
  // or, in some builds (the stable fallback), `__wbindgen_export` / `__wbindgen_export2`; the
  // glue's string helper shows which.
  const glue = await readFile(join(wasmDir, 'eventline_tracker.js'), 'utf8');
  const alloc = /passStringToWasm0\(\w+, wasm\.(\w+), wasm\.(\w+)\)/.exec(glue);
  if (!alloc) throw new Error('the glue passes no strings with passStringToWasm0(text, malloc, realloc)');
  const exported = new Map(names.exports);
  short('__wbindgen_malloc', exported.get(alloc[1]));
  short('__wbindgen_realloc', exported.get(alloc[2]));
  const bytes = await readFile(join(wasmDir, 'eventline_tracker_bg.wasm'));
  const modules = new Set(WebAssembly.Module.imports(new WebAssembly.Module(bytes)).map((i) => i.module));
  if (modules.size !== 1) throw new Error(`the .wasm imports from ${[...modules].join(', ')}; src/core.js expects one module`);
  short('module', [...modules][0]);
  // Imports core.js handles that this .wasm does not have: an unused key.
  for (const name of Object.keys(await coreImports())) define[`WASM.${name}`] ??= '""';
  return define;
}
