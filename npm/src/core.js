// The JavaScript side of the WebAssembly core's interface, written for exactly the ABI that
// wasm-bindgen (the version pinned in scripts/wasm-tools.env) gives tracker-wasm's exports and
// imports: strings go in as (pointer, length) in memory the core allocates and then owns; strings
// come back as a (pointer, length) pair that is read and freed here; the host object crosses as
// an externref. It replaces wasm-bindgen's generated glue in the package (about 1 KB gzip less:
// one string helper instead of one try/finally wrapper per method, no loader for every calling
// convention). npm/scripts/build.mjs compares the generated glue with what this file assumes
// (export names and argument counts, import names, the externref table's start values) and fails
// the build when they differ. The Rust test suites keep using the generated glue.
//
// `WASM.<name>` is the import or export's name in the shipped .wasm: scripts/build-tracker.sh
// shortens them all (wasm-opt --minify-imports-and-exports-and-modules: about 330 bytes gzip,
// mostly wasm-bindgen's hashed import names) and records the mapping, and npm/scripts/build.mjs
// puts the short names in at bundle time (esbuild `define`), so none of the long ones ship.

let wasm;
let bytes = null;
let view = null;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

// Views of the memory, renewed when it grows (the old buffer is then detached).
const memory = () => (bytes && bytes.byteLength ? bytes : (bytes = new Uint8Array(wasm[WASM.memory].buffer)));
const data = () => (view && view.buffer === wasm[WASM.memory].buffer ? view : (view = new DataView(wasm[WASM.memory].buffer)));

// A string into the core's memory: [pointer, length] (at most 3 bytes per UTF-16 unit, then
// shrunk to the bytes written).
function pass(text) {
  const max = text.length * 3;
  // malloc(0) gives a dangling non-null pointer; realloc takes no zero sizes.
  if (!max) return [wasm[WASM.__wbindgen_malloc](0, 1) >>> 0, 0];
  const ptr = wasm[WASM.__wbindgen_malloc](max, 1) >>> 0;
  const len = encoder.encodeInto(text, memory().subarray(ptr, ptr + max)).written;
  return [wasm[WASM.__wbindgen_realloc](ptr, max, len, 1) >>> 0, len];
}

const read = (ptr, len) => decoder.decode(memory().subarray(ptr >>> 0, (ptr >>> 0) + len));

// A string the core returned as [pointer, length]: read, then freed.
function take([ptr, len]) {
  const text = read(ptr, len);
  wasm[WASM.__wbindgen_free](ptr, len, 1);
  return text;
}

// Writes an optional string where the core asked for it (`at`: its [pointer, length] slot).
function give(at, text) {
  const [ptr, len] = text == null ? [0, 0] : pass(text);
  data().setInt32((at >>> 0) + 4, len, true);
  data().setInt32(at >>> 0, ptr, true);
}

// The imports, under their names in the .wasm (`WASM.<name>`: the glue's name without
// wasm-bindgen's `__wbg_` prefix and hash suffix). npm/scripts/glue.mjs reads this object from
// this file's text, one `[WASM.<name>]: (<arguments>) =>` per line, to compare it with the glue.
// The host object's methods are the wrapper's (npm/src/tracker.js).
const imports = {
  // Only the stable fallback build imports it (its panics carry a message).
  [WASM.__wbindgen_throw]: (ptr, len) => {
    throw Error(read(ptr, len));
  },
  [WASM.fill]: (host, ptr, len) => host._fill(memory().subarray(ptr >>> 0, (ptr >>> 0) + len)),
  [WASM.get]: (at, host, ptr, len) => give(at, host._get(read(ptr, len))),
  [WASM.iso]: (at, ms) => give(at, new Date(ms).toISOString()),
  [WASM.keys]: (at, host) => give(at, host._keys()),
  [WASM.reject]: (host, p1, l1, p2, l2) => host._reject(read(p1, l1), read(p2, l2)),
  [WASM.remove]: (host, ptr, len) => host._remove(read(ptr, len)),
  [WASM.set]: (host, p1, l1, p2, l2) => host._set(read(p1, l1), read(p2, l2)),
  [WASM.__wbindgen_init_externref_table]: () => {
    const table = wasm[WASM.__wbindgen_externrefs];
    table.set(0, undefined);
    table.set(1024, undefined);
    table.set(1025, null);
    table.set(1026, true);
    table.set(1027, false);
  },
};

/**
 * Instantiates the core once: `source` is a Response (or a promise of one), bytes or a compiled
 * WebAssembly.Module.
 */
export async function instantiate(source) {
  if (wasm) return;
  const module = { [WASM.module]: imports };
  source = await source;
  let result;
  if (typeof Response === 'function' && source instanceof Response) {
    if (!source.ok) throw Error('eventline: ' + source.status + ' ' + source.url);
    try {
      // Needs the application/wasm content type; otherwise compile from the bytes.
      result = await WebAssembly.instantiateStreaming(source.clone(), module);
    } catch {
      result = await WebAssembly.instantiate(await source.arrayBuffer(), module);
    }
  } else result = await WebAssembly.instantiate(source, module);
  wasm = (result.instance || result).exports;
  wasm[WASM.__wbindgen_start]();
}

const finalization =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((id) => wasm[WASM.core_free](id)) : undefined;

/** The engine of one tracker (tracker-wasm/src/bindings/core.rs documents each method). */
export class Core {
  constructor(host, endpoint, partnerId, source, batchEvents, maxBatchBytes, lingerMs, maxQueueEvents, sessionTimeoutMs, prefix, now) {
    this._id =
      wasm[WASM.core_new](host, ...pass(endpoint), ...pass(partnerId), ...pass(source), batchEvents, maxBatchBytes, lingerMs, maxQueueEvents, sessionTimeoutMs, ...pass(prefix), now) >>> 0;
    if (finalization) finalization.register(this, this._id, this);
  }

  // `call` (tracker-wasm/src/bindings/core.rs) does the string-answering methods in one export.
  _call(what, a, b, x, y, z) {
    return take(wasm[WASM.core_call](this._id, what, ...pass(a), ...pass(b), x, y, z));
  }

  _add(key, text, n, kind) {
    return this._call(0, key, text, n, kind, 0);
  }

  _track(name, occurredAtMs, now) {
    return this._call(1, name, '', occurredAtMs, now, 0);
  }

  _batch(skip, keepalive, now) {
    return this._call(2, '', '', skip, keepalive ? 1 : 0, now);
  }

  _settle(ids, retry, n, retryAfter, now) {
    this._call(3, ids, retryAfter, retry ? 1 : 0, n, now);
  }

  _op(what, now) {
    return wasm[WASM.core_op](this._id, what, now);
  }

  _text(what, arg, now) {
    return this._call(4, arg, '', what, now, 0);
  }

  _free() {
    const id = this._id;
    this._id = 0;
    if (finalization) finalization.unregister(this);
    wasm[WASM.core_free](id);
  }
}

/** `""` when the partner id and source pass the collector's rules, else `!<code number>\x1ffield`. */
export function check(partnerId, source) {
  return take(wasm[WASM.check](...pass(partnerId), ...pass(source)));
}
