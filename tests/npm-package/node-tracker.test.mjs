// The JavaScript Tracker's own duties (npm/src/tracker.js) under Node, with host storage and a
// scripted transport: coded errors with nothing queued, storage before sending, rejections
// through onRejected, retries, opt-out, and page lifecycle hooks on a stand-in global object.
import assert from 'node:assert/strict';
import test from 'node:test';
import { createTracker } from '@eventline/tracker';
import wire from './wire.cjs';

const { PARTNER, COLLECTOR, memoryStorage } = wire;

// The stored queue lines (one per event) under `prefix`.
const queuedText = (storage, prefix) =>
  [...storage.map]
    .filter(([k]) => k.startsWith(`${prefix}.q.`))
    .flatMap(([, v]) => v.split('\n').filter((line) => line.includes('"event_id"')))
    .join('\n');

// Answers the next scripted statuses (then 200 accepting everything); `[503, '60']` sets the
// Retry-After of a retryable answer (default '0': retry at the backoff's own, jittered time).
function scripted(...statuses) {
  const requests = [];
  const waiters = [];
  const transport = async (request) => {
    requests.push(request);
    for (const wake of waiters.splice(0)) wake();
    const [status, retryAfter = '0'] = [statuses.shift() ?? 200].flat();
    if (status === 200) return { status, body: wire.collectorAnswer(request.body) };
    if (status === 400)
      return { status, body: '{"error":{"code":"unknown_partner","message":"partner_id names no partner","field":"partner_id"}}' };
    return { status, retryAfter, body: '{"error":{"code":"storage_unavailable","message":"try later","field":""}}' };
  };
  // Resolves once the transport has been called `n` times in all: a signal to wait on, not a sleep.
  const reached = (n, ms = 5_000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`request ${n} was not sent within ${ms} ms`)), ms);
    const check = () => {
      if (requests.length < n) return waiters.push(check);
      clearTimeout(timer);
      resolve();
    };
    check();
  });
  return { requests, transport, reached };
}

const ids = (requests) => requests.flatMap((r) => JSON.parse(r.body).events.map((e) => e.event_id));

async function tracker(prefix, transport, extra = {}) {
  const storage = memoryStorage();
  const rejected = [];
  const t = await createTracker({
    collectorUrl: COLLECTOR, partnerId: PARTNER, source: 'mobile_app', storage, transport,
    storagePrefix: prefix, flushIntervalMs: 60_000, onRejected: (list) => rejected.push(...list), ...extra,
  });
  return { t, storage, rejected };
}

test('a hyphenated context key throws the server code and field, and nothing is queued', async () => {
  const { requests, transport } = scripted();
  const { t, storage } = await tracker('hy', transport, { autoContext: false });
  assert.throws(() => t.track('product_viewed', { ok: 1, 'user-name': 'x' }), (e) =>
    e instanceof Error && e.code === 'context_key_hyphen' && e.field === 'context.user-name' &&
    e.message.startsWith('eventline: context key `user-name` contains a hyphen;') && e.message.endsWith('(e.g. `user_name`)'));
  for (const [value, code] of [[null, 'invalid_context_value'], [[], 'invalid_context_value'], [NaN, 'context_number_out_of_range']])
    assert.throws(() => t.track('x', { k: value }), (e) => e.code === code && e.field === 'context.k');
  assert.throws(() => t.track('x', 'flat?'), (e) => e.code === 'invalid_context' && e.field === 'context');
  assert.throws(() => t.track(' spaced'), (e) => e.code === 'invalid_name' && e.field === 'name');
  assert.throws(() => t.identify(' 42'), (e) => e.code === 'invalid_id' && e.field === 'customer_id');
  assert.equal(queuedText(storage, 'hy'), '');
  // A good event after the failures carries none of the failed entries.
  t.track('fine', { a: 1 });
  await t.flush();
  assert.deepEqual(Object.keys(JSON.parse(requests[0].body).events[0].context), ['a']);
  t.free();
});

test('events are stored before track returns and removed once accepted', async () => {
  const { requests, transport } = scripted();
  const { t, storage } = await tracker('st', transport);
  const id = t.track('x', { lone: 'a\ud800b' });
  assert.ok(queuedText(storage, 'st').includes(id));
  assert.equal(requests.length, 0);
  await t.flush();
  assert.deepEqual(ids(requests), [id]);
  assert.equal(JSON.parse(requests[0].body).events[0].context.lone, 'a\ufffdb');
  assert.equal(queuedText(storage, 'st').includes(id), false);
  t.free();
});

test('a permanent 400 is reported through onRejected and dropped; a 503 is retried with the same id', async () => {
  const { requests, transport } = scripted(400, 503);
  const { t, storage, rejected } = await tracker('rj', transport, { batchSize: 1 });
  const bad = t.track('bad');
  await t.flush();
  assert.deepEqual(rejected, [{ eventId: bad, name: 'bad', code: 'unknown_partner', field: 'partner_id', message: 'partner_id names no partner' }]);
  // Sent at once (a full batch): 503, kept; the flush forces the retry, which is accepted.
  const good = t.track('good');
  await t.flush();
  assert.deepEqual(ids(requests), [bad, good, good]);
  assert.equal(queuedText(storage, 'rj'), '');
  assert.equal(rejected.length, 1);
  t.free();
});

test('per-event rejections are reported, a 413 halves the batch, a bodiless 404 drops as http_404', async () => {
  const requests = [];
  const answers = [
    () => ({ status: 413, body: '{"error":{"code":"body_too_large","message":"too big","field":""}}' }),
    (events) => ({
      status: 200,
      body: JSON.stringify({
        results: events.map((e, index) =>
          index === 1
            ? { index, event_id: e.event_id, status: 'rejected', code: 'context_key_hyphen', field: 'context.a-b' }
            : { index, event_id: e.event_id, status: 'accepted' }),
      }),
    }),
    () => ({ status: 404, body: 'Not Found' }),
  ];
  const transport = async (request) => {
    requests.push(request);
    const events = JSON.parse(request.body).events;
    return (answers.shift() ?? (() => ({ status: 200, body: wire.collectorAnswer(request.body) })))(events);
  };
  const { t, storage, rejected } = await tracker('an', transport, { batchSize: 4 });
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => t.track(name));
  await t.flush();
  assert.deepEqual(requests.map((r) => JSON.parse(r.body).events.length), [4, 2, 2]);
  assert.deepEqual(ids(requests).slice(4), [a, b, c, d]);
  assert.deepEqual(rejected, [
    { eventId: b, name: 'b', code: 'context_key_hyphen', field: 'context.a-b', message: 'context key `a-b` contains a hyphen; keys are used as $field_code and {{client.eventContext.field_code}}, so use letters, digits and underscores (e.g. `a_b`)' },
    { eventId: c, name: 'c', code: 'http_404', field: '', message: 'http_404' },
    { eventId: d, name: 'd', code: 'http_404', field: '', message: 'http_404' },
  ]);
  assert.equal(queuedText(storage, 'an'), '');
  t.free();
});

test('beyond maxQueueEvents the oldest event is dropped and reported as queue_overflow', async () => {
  const { transport } = scripted();
  const { t, storage, rejected } = await tracker('ov', transport, { maxQueueEvents: 2 });
  const [a, b, c] = ['a', 'b', 'c'].map((name) => t.track(name));
  assert.deepEqual(rejected, [
    { eventId: a, name: 'a', code: 'queue_overflow', field: '', message: 'the queue held maxQueueEvents events; the oldest was dropped' },
  ]);
  const queued = queuedText(storage, 'ov');
  assert.ok(!queued.includes(a) && queued.includes(b) && queued.includes(c));
  t.free();
});

test('opted out, nothing is stored or sent', async () => {
  const { requests, transport } = scripted();
  const { t, storage } = await tracker('oo', transport);
  t.track('before');
  t.optOut();
  assert.equal(t.optedOut, true);
  assert.equal(t.track('x'), '');
  await t.flush();
  assert.equal(requests.length, 0);
  assert.equal(queuedText(storage, 'oo'), '');
  t.optIn();
  assert.notEqual(t.track('y'), '');
  t.free();
});

test('bad options throw with the option as field', async () => {
  const base = { collectorUrl: COLLECTOR, partnerId: PARTNER, source: 'mobile_app', storage: memoryStorage() };
  for (const [patch, code, field] of [
    [{ source: 'bad source' }, 'invalid_source_code', 'source'],
    [{ partnerId: 'x' }, 'unknown_partner', 'partnerId'],
    [{ collectorUrl: '' }, 'invalid_option', 'collectorUrl'],
    [{ batchSize: 0 }, 'invalid_option', 'batchSize'],
    [{ storage: {} }, 'invalid_option', 'storage'],
    [{ transport: 1 }, 'invalid_option', 'transport'],
    [{ lifecycle: 'yes' }, 'invalid_option', 'lifecycle'],
  ])
    await assert.rejects(createTracker({ ...base, ...patch }), (e) => e.code === code && e.field === field);
});

test('page lifecycle: hidden sends with keepalive, pagehide beacons and the next page resends', async () => {
  const listeners = {};
  const target = (name) => ({ addEventListener: (event, f) => (listeners[`${name}:${event}`] = f) });
  const document = { ...target('document'), visibilityState: 'visible', referrer: '', title: 'T' };
  const saved = {};
  for (const [k, v] of Object.entries({ document, addEventListener: target('window').addEventListener })) {
    saved[k] = Object.getOwnPropertyDescriptor(globalThis, k);
    globalThis[k] = v;
  }
  try {
    // Retry-After 60: the jittered retry of the 503 must not slip into the checks below.
    const { requests, transport, reached } = scripted([503, '60']);
    const { t, storage } = await tracker('lc', transport);
    const id = t.track('x');
    document.visibilityState = 'hidden';
    listeners['document:visibilitychange']();
    await reached(1);
    assert.equal(requests.at(-1).keepalive, true);
    assert.deepEqual(ids(requests), [id]);
    listeners['window:pagehide']();
    assert.equal(requests.at(-1).keepalive, true);
    assert.deepEqual(ids(requests), [id, id]);
    t.free();
    // The beacon's answer is never seen: the next page adopts the stored queue and resends.
    const next = await tracker('lc', transport, { storage, lifecycle: false });
    await next.t.flush();
    assert.deepEqual(ids(requests), [id, id, id]);
    assert.equal(queuedText(storage, 'lc'), '');
    next.t.free();
  } finally {
    for (const [k, d] of Object.entries(saved)) {
      if (d) Object.defineProperty(globalThis, k, d);
      else delete globalThis[k];
    }
  }
});

// Replaces the global setTimeout/clearTimeout (which the tracker looks up at each call) with
// recording ones: `pending` maps each handle not yet fired or cleared to its delay (ms).
function recordTimers() {
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
  const pending = new Map();
  globalThis.setTimeout = (f, ms, ...args) => {
    const handle = real.setTimeout(() => {
      pending.delete(handle);
      f(...args);
    }, ms);
    pending.set(handle, ms);
    return handle;
  };
  globalThis.clearTimeout = (handle) => {
    pending.delete(handle);
    real.clearTimeout(handle);
  };
  return { pending, restore: () => Object.assign(globalThis, real) };
}

// Resolves once `condition()` holds, checking after each turn of the event loop; rejects after `ms`.
async function until(condition, what, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${typeof what === 'function' ? what() : what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('a Retry-After given as an HTTP date holds the retry until that time', async () => {
  const timers = recordTimers();
  try {
    // Two minutes ahead, in the IMF-fixdate form (`Wed, 25 Nov 2026 10:02:00 GMT`).
    const date = new Date(Date.now() + 120_000).toUTCString();
    const { requests, transport, reached } = scripted([503, date]);
    // flushIntervalMs 0: the event goes at once, and the only long timer is the retry's.
    const { t } = await tracker('ra', transport, { flushIntervalMs: 0 });
    t.track('x');
    await reached(1);
    // Without the date the first retry would wait at most 1 s (the backoff's first ceiling).
    const waits = () => [...timers.pending.values()];
    await until(() => waits().some((ms) => ms > 117_000 && ms <= 121_000), () => `a retry timer of about 120 s (timers: ${waits()})`);
    assert.equal(requests.length, 1);
    t.free();
  } finally {
    timers.restore();
  }
});

test('a freed tracker stops its timers', async () => {
  const timers = recordTimers();
  try {
    const { transport } = scripted([503, '30']);
    const { t } = await tracker('fr', transport);
    t.track('x');
    await t.flush();
    // The heartbeat and the retry 30 s ahead are pending.
    const waits = [...timers.pending.values()];
    assert.ok(waits.length >= 2 && waits.some((ms) => ms > 25_000), `timers: ${waits}`);
    t.free();
    assert.deepEqual([...timers.pending.values()], []);
  } finally {
    timers.restore();
  }
});

test('UTM parameters of the page address become context, decoded, and nothing else of the query', async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'location');
  globalThis.location = { href: 'https://shop.test/p?x=1', pathname: '/p', search: '?utm_source=news&x=1&utm_medium=e%20mail&utm_campaign=a+b&utm_term=%E0%A4' };
  try {
    const { requests, transport } = scripted();
    const { t } = await tracker('utm', transport, { autoContext: { utm: true, url: false, referrer: false, title: false, screen: false, language: false, timeZone: false } });
    t.track('x');
    await t.flush();
    assert.deepEqual(JSON.parse(requests[0].body).events[0].context, {
      utm_source: 'news',
      utm_medium: 'e mail',
      utm_campaign: 'a b',
      // A malformed escape decodes as U+FFFD, as URLSearchParams decodes it.
      utm_term: '\ufffd',
    });
    t.free();
  } finally {
    if (saved) Object.defineProperty(globalThis, 'location', saved);
    else delete globalThis.location;
  }
});
