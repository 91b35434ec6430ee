// The JavaScript side of the WebAssembly core's interface, written for exactly the ABI that
// wasm-bindgen (the version pinned in scripts/wasm-tools.env) gives tracker-wasm's exports and
// imports: strings go in as (pointer, length) in memory the core allocates and then owns; strings
// come back as one number, length * 2^32 + pointer, read at once (the core keeps the bytes until
// its next call); the host object is known to the core by its number in `hosts`. It replaces
// wasm-bindgen's generated glue in the package (about 1 KB gzip less: one string helper instead
// of one try/finally wrapper per method, no loader for every calling convention).
// npm/scripts/build.mjs compares the generated glue with what this file assumes (export names
// and argument counts, import names and argument counts) and fails the build when they differ.
// The Rust test suites keep using the generated glue.
// Where WebAssembly is missing, the same exports come from the core's JavaScript build
// (binaryen's wasm2js of the same .wasm: `instantiateJs`).
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

// Views of the memory, renewed when it grows (into a new buffer: WebAssembly detaches the old
// one, the JavaScript build just drops it).
const buffer = () => wasm[WASM.memory].buffer;
const memory = () => (bytes && bytes.buffer === buffer() ? bytes : (bytes = new Uint8Array(buffer())));
const data = () => (view && view.buffer === buffer() ? view : (view = new DataView(buffer())));

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

// `len` may carry a fraction (see `take`): subarray truncates the end.
const read = (ptr, len) => decoder.decode(memory().subarray(ptr >>> 0, (ptr >>> 0) + len));

// A string the core answered as length * 2^32 + pointer (`>>> 0` keeps the pointer).
const take = (n) => read(n, n / 4294967296);

// Writes an optional string where the core asked for it (`at`: its [pointer, length] slot).
function give(at, text) {
  const [ptr, len] = text == null ? [0, 0] : pass(text);
  data().setInt32((at >>> 0) + 4, len, true);
  data().setInt32(at >>> 0, ptr, true);
}

// The host objects (src/tracker.js), by the number the core knows each by.
const hosts = [];

// The imports, under their names in the .wasm (`WASM.<name>`: the glue's name without
// wasm-bindgen's `__wbg_` prefix and hash suffix). npm/scripts/glue.mjs reads this object from
// this file's text, one `[WASM.<name>]: (<arguments>) =>` per line, to compare it with the glue.
const imports = {
  // Only the stable fallback build imports it (its panics carry a message).
  [WASM.__wbindgen_throw]: (ptr, len) => {
    throw Error(read(ptr, len));
  },
  [WASM.fill]: (host, ptr, len) => hosts[host]._fill(memory().subarray(ptr >>> 0, (ptr >>> 0) + len)),
  [WASM.get]: (at, host, ptr, len) => give(at, hosts[host]._get(read(ptr, len))),
  [WASM.iso]: (at, ms) => give(at, new Date(ms).toISOString()),
  [WASM.keys]: (at, host) => give(at, hosts[host]._keys()),
  [WASM.reject]: (host, p1, l1, p2, l2) => hosts[host]._reject(read(p1, l1), read(p2, l2)),
  [WASM.remove]: (host, ptr, len) => hosts[host]._remove(read(ptr, len)),
  [WASM.set]: (host, p1, l1, p2, l2) => hosts[host]._set(read(p1, l1), read(p2, l2)),
};
const module = { [WASM.module]: imports };

/**
 * Instantiates the core once: `source` is a Response (or a promise of one), bytes or a compiled
 * WebAssembly.Module.
 */
export async function instantiate(source) {
  if (wasm) return;
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
}

/**
 * Instantiates the core once from its JavaScript build (dist/core.wasm.js: binaryen's wasm2js
 * of the same .wasm), for runtimes without WebAssembly: `build` is that module's `instantiate`.
 */
export function instantiateJs(build) {
  wasm ??= build(module);
}

const finalization =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((id) => wasm[WASM.core_free](id)) : undefined;

/** The engine of one tracker (tracker-wasm/src/bindings/core.rs documents each method). */
export class Core {
  constructor(host, endpoint, partnerId, source, batchEvents, maxBatchBytes, lingerMs, maxQueueEvents, sessionTimeoutMs, prefix, now) {
    this._host = hosts.push(host) - 1;
    this._id =
      wasm[WASM.core_new](this._host, ...pass(endpoint), ...pass(partnerId), ...pass(source), batchEvents, maxBatchBytes, lingerMs, maxQueueEvents, sessionTimeoutMs, ...pass(prefix), now) >>> 0;
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
    hosts[this._host] = 0;
    wasm[WASM.core_free](id);
  }
}

/** `""` when the partner id and source pass the collector's rules, else `!<code number>\x1ffield`. */
export const check = (partnerId, source) => take(wasm[WASM.check](...pass(partnerId), ...pass(source)));
