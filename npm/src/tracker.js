// The JavaScript `Tracker`: options, timers, page lifecycle, fetch/sendBeacon, storage choice and
// automatic context live here, and reading the collector's answer (`_settle`: status class,
// per-event rejections, 413 halving); every other decision about events (validation with the
// collector's rules, wire JSON, ids, queue and batching, backoff, sessions, multi-tab hand-over)
// is made by the WebAssembly `Core` (tracker-wasm/src/bindings/core.rs), reached through strings
// and numbers (src/core.js).
// Nothing assumes window or document: every host object is feature-detected on globalThis.
import { Core, check } from './core.js';
import { CODES, INVALID_CONTEXT, INVALID_NAME, MAX_CONTEXT_KEYS, MAX_CONTEXT_STRING_CHARS } from './rules.js';

const g = globalThis;
const SEP = '\x1f';
const HEARTBEAT_MS = 5000;
const UTM = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content'];

// The words for codes (src/messages.js): set at once by the Node and bundler entries; the embed
// gives a loader instead, run the first time words are needed (`worded`).
let words;
let loadWords;
let wording;

/** `table`: src/messages.js's `messages`; or `load`: a function that imports that module. */
export function setMessages(table, load) {
  words = table;
  loadWords = load;
}

/** Resolves once the words are here (or cannot be loaded: then messages name the code only). */
export function worded() {
  return (wording ??= words || !loadWords ? Promise.resolve() : loadWords().then((m) => void (words = m.messages), () => {}));
}

// [code name, message] for an event-model code (its number, or its name as the collector sends
// it) or one of the wrapper's own, with the field filled in; without the words (the embed before
// they load), the message is the code and the field.
function describe(code, field) {
  const name = typeof code === 'number' ? CODES[code] : code;
  const template = words && words[name];
  const key = field ? field.replace(/^context\./, '') : '';
  return [
    name,
    template ? template.replace('\x01', () => key).replace('\x02', () => key.replace(/-/g, '_')) : field ? name + ' `' + field + '`' : name,
  ];
}

/** Rewrites the message of an Error the tracker threw, once the words are here (the embed). */
export function reword(error) {
  if (error && error._coded) error.message = 'eventline: ' + describe(error.code, error.field)[1];
}

// `code`: an event-model code's number or name, or one of the wrapper's own (src/messages.js).
function fail(code, field) {
  const [name, message] = describe(code, field);
  const error = new Error('eventline: ' + message);
  error.code = name;
  error.field = field;
  error._coded = true;
  return error;
}

// Core answers "!<code number>\x1ffield" for a broken rule.
function thrown(result) {
  const i = result.indexOf(SEP);
  return fail(+result.slice(1, i), result.slice(i + 1));
}

// Core's batches are `ids\x1enames\x1ebody` (ids comma-separated, names split by \x1f).
function split(batch) {
  const i = batch.indexOf('\x1e');
  const j = batch.indexOf('\x1e', i + 1);
  return [batch.slice(0, i), batch.slice(i + 1, j), batch.slice(j + 1)];
}

const isObject = (v) => v !== null && typeof v === 'object';
const text = (v) => (typeof v === 'string' ? v : '');

function read(obj, key) {
  try {
    return obj == null ? undefined : obj[key];
  } catch {
    return undefined;
  }
}

// Returns the handle, for `free()` to clear.
function timer(f, ms) {
  try {
    const handle = g.setTimeout(f, ms > 0 ? ms : 0);
    // Node: a pending retry or heartbeat must not keep a script alive.
    if (handle && typeof handle.unref === 'function') handle.unref();
    return handle;
  } catch {}
}

function untimer(handle) {
  try {
    g.clearTimeout(handle);
  } catch {}
}

// Retry-After for the core, which reads delta-seconds: an HTTP-date (Date.parse reads all three
// HTTP-date forms) becomes the whole seconds until then (0 once past).
function retryAfterSeconds(header, now) {
  const at = /^\s*\d*\s*$/.test(header) ? NaN : Date.parse(header);
  return at >= 0 ? String(Math.max(0, Math.ceil((at - now) / 1000))) : header;
}

function number(o, name, fallback, min, max) {
  const v = o[name];
  if (v == null) return fallback;
  if (typeof v !== 'number' || !(v >= min && v <= max)) throw fail('invalid_option', name);
  return v;
}

function fn(o, name) {
  const v = o[name];
  if (v == null) return undefined;
  if (typeof v !== 'function') throw fail('invalid_option', name);
  return v;
}

// `storage` option, else localStorage if it works (it throws in some privacy modes), else memory
// (without key()/length: one tracker's own map holds no other instance's queue to adopt).
function pickStorage(option) {
  if (isObject(option)) return [option, true];
  try {
    const local = g.localStorage;
    local.setItem('eventline.probe', '1');
    local.removeItem('eventline.probe');
    return [local, true];
  } catch {}
  const map = new Map();
  return [
    {
      getItem: (k) => (map.has(k) ? map.get(k) : null),
      setItem: (k, v) => map.set(k, v),
      removeItem: (k) => map.delete(k),
    },
    false,
  ];
}

// Bodies go as text/plain, a CORS-safelisted type: no preflight (and what sendBeacon sends).
const init = (body, keepalive) => ({
  method: 'POST',
  body,
  keepalive,
  credentials: 'omit',
  headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
});

// POSTs a batch with the host's transport or fetch: [status (0: no answer), retryAfter, body].
async function send(transport, url, body, keepalive) {
  try {
    if (transport) {
      const r = await transport({ url, body, keepalive });
      const status = read(r, 'status');
      const retryAfter = read(r, 'retryAfter');
      return [typeof status === 'number' ? status : 0, typeof retryAfter === 'string' ? retryAfter : undefined, text(read(r, 'body'))];
    }
    const r = await g.fetch(url, init(body, keepalive));
    let retryAfter;
    try {
      retryAfter = r.headers.get('Retry-After') ?? undefined;
    } catch {}
    let answer = '';
    try {
      answer = text(await r.text());
    } catch {}
    return [typeof r.status === 'number' ? r.status : 0, retryAfter, answer];
  } catch {
    return [0];
  }
}

// Hands a body to the browser to deliver even if the page goes away; false when refused.
function beacon(transport, url, body) {
  try {
    if (transport) {
      Promise.resolve(transport({ url, body, keepalive: true })).catch(() => {});
      return true;
    }
    const nav = g.navigator;
    if (nav && typeof nav.sendBeacon === 'function') return nav.sendBeacon(url, body) === true;
    g.fetch(url, init(body, true)).catch(() => {});
    return true;
  } catch {
    return false;
  }
}

// Context the tracker adds by itself; `put` ignores keys the event already has.
function autoContext(flags, page, put) {
  const location = g.location;
  const document = g.document;
  if (flags.url || page) put('page_url', read(location, 'href'));
  if (flags.url) put('page_path', read(location, 'pathname'));
  if (flags.referrer || page) put('page_referrer', read(document, 'referrer'));
  if (flags.title || page) put('page_title', read(document, 'title'));
  if (flags.screen) {
    put('screen_width', read(g.screen, 'width'));
    put('screen_height', read(g.screen, 'height'));
  }
  if (flags.language) put('language', read(g.navigator, 'language'));
  if (flags.timeZone) {
    let zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch {}
    put('time_zone', zone);
  }
  const search = flags.utm && read(location, 'search');
  if (typeof search === 'string') {
    try {
      for (const [name, value] of new URLSearchParams(search)) if (UTM.includes(name)) put(name, value);
    } catch {}
  }
}

/** A tracker instance (see index.d.ts). Needs the core loaded (`loadWasm`). */
export class Tracker {
  constructor(options) {
    const o = options;
    if (!isObject(o)) throw fail('invalid_option', 'options');
    const url = text(o.collectorUrl).replace(/\/+$/, '');
    if (!url) throw fail('invalid_option', 'collectorUrl');
    const partnerId = text(o.partnerId);
    const source = text(o.source);
    const bad = check(partnerId, source);
    if (bad) throw thrown(bad);
    let prefix = o.storagePrefix;
    if (prefix === undefined) prefix = 'eventline';
    else if (typeof prefix !== 'string' || !prefix) throw fail('invalid_option', 'storagePrefix');
    const storage = o.storage;
    if (storage !== undefined && !['getItem', 'setItem', 'removeItem'].every((m) => typeof read(storage, m) === 'function'))
      throw fail('invalid_option', 'storage');
    const lifecycle = o.lifecycle === undefined ? true : o.lifecycle;
    if (typeof lifecycle !== 'boolean') throw fail('invalid_option', 'lifecycle');
    const batchSize = number(o, 'batchSize', 20, 1, 500);
    const maxBatchBytes = number(o, 'maxBatchBytes', 60000, 1024, 1048576);
    const flushIntervalMs = number(o, 'flushIntervalMs', 1000, 0, 3600000);
    const maxQueueEvents = number(o, 'maxQueueEvents', 1000, 1, 100000);
    const sessionTimeoutMs = number(o, 'sessionTimeoutMs', 1800000, 1000, 8.64e10);
    this._transport = fn(o, 'transport');
    this._onRejected = fn(o, 'onRejected');
    const auto = o.autoContext;
    const all = typeof auto === 'boolean' ? auto : true;
    const flags = {};
    for (const k of ['url', 'referrer', 'title', 'screen', 'language', 'timeZone', 'utm']) {
      const v = auto !== null && (typeof auto === 'object' || typeof auto === 'function') ? read(auto, k) : undefined;
      flags[k] = typeof v === 'boolean' ? v : all;
    }
    this._auto = flags;
    this._url = url + '/v1/events';
    this._dropped = [];
    this._pumping = false;
    this._again = undefined;
    this._waiters = [];
    this._wake = Infinity;
    this._closed = false;
    const [store, persistent] = pickStorage(storage);
    this._persistent = persistent;
    const host = {
      _get(k) {
        try {
          const v = store.getItem(k);
          return typeof v === 'string' ? v : undefined;
        } catch {}
      },
      _set(k, v) {
        try {
          store.setItem(k, v);
          return true;
        } catch {
          return false;
        }
      },
      _remove(k) {
        try {
          store.removeItem(k);
        } catch {}
      },
      _keys() {
        try {
          const n = store.length;
          if (typeof n !== 'number' || typeof store.key !== 'function') return undefined;
          const keys = [];
          for (let i = 0; i < n; i++) {
            const k = store.key(i);
            if (typeof k === 'string') keys.push(k);
          }
          return keys.join('\n');
        } catch {}
      },
      _fill(bytes) {
        try {
          g.crypto.getRandomValues(bytes);
        } catch {
          for (let i = 0; i < bytes.length; i++) bytes[i] = Math.random() * 256;
        }
      },
      // Events the queue cap pushed out.
      _reject: (eventId, name) => this._reject(eventId, name, 'queue_overflow', ''),
    };
    this._core = new Core(host, this._url, partnerId, source, batchSize, maxBatchBytes, flushIntervalMs, maxQueueEvents, sessionTimeoutMs, prefix, Date.now());
    this._report();
    this._beat();
    if (lifecycle) {
      const on = (target, event, handler) => {
        if (target && typeof target.addEventListener === 'function')
          target.addEventListener(event, (e) => this._closed || handler(e));
      };
      const document = g.document;
      on(document, 'visibilitychange', () => {
        if (read(document, 'visibilityState') === 'hidden') {
          if (!this._pumping) this._kick(true, true);
        } else this._kick(false, false);
      });
      on(g, 'pagehide', () => this._hide());
      on(g, 'pageshow', (e) => {
        if (read(e, 'persisted') === true) {
          this._core._op(1, Date.now());
          this._report();
          this._kick(false, false);
        }
      });
      on(g, 'online', () => {
        this._core._op(4, Date.now());
        this._kick(false, false);
      });
    }
    // Adopted events from an earlier page load go out now.
    this._kick(false, false);
  }

  // Notes an event given up on, for _report; the message is worded here when none came.
  _reject(eventId, name, code, field, message) {
    this._dropped.push({ eventId, name, code, field, message });
  }

  // Reports events given up on: console.warn, and onRejected(list) if set. Entries without the
  // collector's words get the tracker's; when those are not loaded yet (the embed), this report
  // and every later one wait for them, so reports keep their order.
  _report() {
    const list = this._dropped;
    if (!list.length) return;
    this._dropped = [];
    const deliver = () => {
      for (const r of list) r.message ||= describe(r.code, r.field)[1];
      try {
        g.console.warn('eventline: events dropped', list);
      } catch {}
      try {
        if (this._onRejected) this._onRejected(list);
      } catch {}
    };
    if (!this._later && (words || !loadWords || list.every((r) => r.message))) return deliver();
    const later = (this._later = (this._later || worded()).then(deliver));
    later.then(() => this._later === later && (this._later = undefined));
  }

  // Starts the pump unless it runs; a forced request while it runs makes it go once more.
  _kick(force, keepalive) {
    if (this._closed) return;
    if (this._pumping) {
      if (force) this._again = keepalive || this._again === true;
      return;
    }
    this._pumping = true;
    this._pump(force, keepalive);
  }

  // The pump went idle: run again if asked to, else resolve the flush() promises.
  _finish() {
    const again = this._again;
    if (again !== undefined) {
      this._again = undefined;
      return this._pump(true, again);
    }
    this._pumping = false;
    const waiters = this._waiters;
    this._waiters = [];
    for (const resolve of waiters) resolve();
  }

  // Wakes the pump at `at` (ms) unless an earlier wake-up is pending (a later one is replaced).
  _wakeAt(at) {
    if (at >= this._wake) return;
    this._wake = at;
    untimer(this._wakeTimer);
    this._wakeTimer = timer(() => {
      this._wake = Infinity;
      this._kick(false, false);
    }, at - Date.now());
  }

  // One step: send the next batch if one is due, and continue from its answer.
  _pump(force, keepalive) {
    if (this._closed) return;
    const core = this._core;
    const now = Date.now();
    const due = core._op(0, now);
    let batch = '';
    if (due >= 0 && (force || read(g.navigator, 'onLine') !== false)) {
      if (!force && due > now) this._wakeAt(due);
      else batch = core._batch(0, keepalive, now);
    }
    this._report();
    if (!batch) return this._finish();
    const [ids, names, body] = split(batch);
    send(this._transport, this._url, body, keepalive).then(([status, retryAfter, answer]) => {
      // Freed meanwhile: its queue is released and may be adopted already; leave storage alone.
      if (this._closed) return;
      const goOn = this._settle(ids, names, status, retryAfter, answer);
      if (!goOn) {
        const next = core._op(9, 0);
        if (next >= 0) this._wakeAt(next);
      }
      this._report();
      goOn ? this._pump(force, keepalive) : this._finish();
    });
  }

  // Applies the collector's answer (README "Answers"); false: back off. The wasm classifies the
  // status (network errors, 408, 429, 5xx and anything unexpected: retry, with Retry-After, in
  // seconds or as an HTTP-date, as the least wait; 413: split; other 4xx: permanent). Otherwise the per-event results are applied,
  // rejected events reported, and events without a result dropped and reported with the
  // whole-request error, except after a 413 without results, which halves the batch instead.
  _settle(ids, names, status, retryAfter, answer) {
    const core = this._core;
    const now = Date.now();
    const verdict = core._op(10, status);
    if (verdict === 1) {
      core._settle(ids, true, 0, retryAfterSeconds(text(retryAfter), now), now);
      return false;
    }
    const list = ids.split(',');
    const nameOf = names.split('\x1f');
    const reject = (i, code, field, text) => this._reject(list[i], nameOf[i], code, field, text);
    let json;
    try {
      json = JSON.parse(answer);
    } catch {}
    const results = read(json, 'results');
    const judged = new Set();
    let counted = 0;
    if (Array.isArray(results)) {
      for (const r of results) {
        const i = read(r, 'index');
        if (typeof i !== 'number') continue;
        counted++;
        if (list[i] === undefined) continue;
        if (read(r, 'status') !== 'accepted') reject(i, text(r.code), text(r.field), text(r.message));
        judged.add(i);
      }
    }
    const rest = list.filter((_, i) => !judged.has(i));
    if (verdict === 0) core._settle(ids, false, 0, '', now);
    else if (verdict === 2 && rest.length && !counted && list.length > 1) core._settle('', false, list.length >> 1, '', now);
    else {
      let error = read(json, 'error');
      if (!isObject(error) || !text(error.code)) error = { code: 'http_' + status };
      list.forEach((_, i) => judged.has(i) || reject(i, text(error.code), text(error.field), text(error.message)));
      core._settle(ids, false, -1, '', now);
    }
    return true;
  }

  // Page going away: beacon the whole queue in keepalive-sized chunks, then release it for adoption.
  _hide() {
    const core = this._core;
    const now = Date.now();
    core._op(2, now);
    let skip = 0;
    let batch;
    while ((batch = core._batch(skip, true, now))) {
      const [ids, , body] = split(batch);
      skip += ids.split(',').length;
      if (!beacon(this._transport, this._url, body)) break;
    }
    core._op(3, now);
  }

  _beat() {
    this._beatTimer = timer(() => {
      if (this._closed) return;
      const core = this._core;
      const due = core._op(1, Date.now());
      this._report();
      if (!this._pumping && this._wake === Infinity && due >= 0) this._kick(false, false);
      this._beat();
    }, HEARTBEAT_MS);
  }

  _record(name, context, occurredAtMs, page) {
    if (typeof name !== 'string') throw fail(INVALID_NAME, 'name');
    const core = this._core;
    const seen = new Set();
    const add = (key, v) => {
      const type = typeof v;
      const kind = type === 'undefined' ? 0 : type === 'string' ? 1 : type === 'number' ? 2 : type === 'boolean' ? (v ? 3 : 4) : 5;
      const bad = core._add(key, type === 'string' ? v : type === 'number' ? String(v) : '', type === 'number' ? v : 0, kind);
      if (bad) throw thrown(bad);
      if (kind) seen.add(key);
    };
    if (context != null) {
      if (typeof context !== 'object' || Array.isArray(context)) throw fail(INVALID_CONTEXT, 'context');
      for (const key of Object.keys(context)) add(key, read(context, key));
    }
    autoContext(this._auto, page, (key, v) => {
      if (seen.size >= MAX_CONTEXT_KEYS || seen.has(key)) return;
      if (typeof v === 'string') {
        // Long URLs are cut rather than making the whole event invalid.
        if (v.length > MAX_CONTEXT_STRING_CHARS) v = Array.from(v).slice(0, MAX_CONTEXT_STRING_CHARS).join('');
        if (v) add(key, v);
      } else if (typeof v === 'number' && v >= 0 && v < 1e9) add(key, Math.trunc(v));
    });
    const now = Date.now();
    const id = core._track(name, occurredAtMs, now);
    this._report();
    if (id[0] === '!') throw thrown(id);
    const due = core._op(9, 0);
    if (due >= 0) due <= now ? this._kick(false, false) : this._wakeAt(due);
    return id;
  }

  track(name, context) {
    return this._record(name, context, Date.now(), false);
  }

  trackAt(name, context, occurredAtMs) {
    return this._record(name, context, occurredAtMs, false);
  }

  page(context) {
    return this._record('page_view', context, Date.now(), true);
  }

  pageAt(context, occurredAtMs) {
    return this._record('page_view', context, occurredAtMs, true);
  }

  identify(customerId) {
    const id =
      typeof customerId === 'number' && Number.isInteger(customerId) && Math.abs(customerId) < 9.007e15
        ? String(customerId)
        : text(customerId);
    const bad = this._core._text(3, id, 0);
    if (bad) throw thrown(bad);
  }

  reset() {
    this._core._op(7, Date.now());
  }

  flush() {
    return new Promise((resolve) => {
      if (this._closed) return resolve();
      this._waiters.push(resolve);
      this._kick(true, false);
    });
  }

  optOut() {
    this._core._op(5, Date.now());
  }

  optIn() {
    this._core._op(6, Date.now());
  }

  get optedOut() {
    return this._core._op(8, 0) === 1;
  }

  get persistent() {
    return this._persistent;
  }

  get anonymousId() {
    return this._core._text(0, '', 0);
  }

  get sessionId() {
    return this._core._text(1, '', Date.now());
  }

  get customerId() {
    return this._core._text(2, '', 0) || undefined;
  }

  /** Stops timers and hooks and releases the queue, so the next instance adopts it. */
  free() {
    if (this._closed) return;
    this._closed = true;
    untimer(this._beatTimer);
    untimer(this._wakeTimer);
    this._core._op(3, Date.now());
    this._core._free();
  }
}
