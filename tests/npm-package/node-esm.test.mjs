// Runs inside the folder where only the packed tarball was installed: the ESM entry under Node,
// with host storage and a recording transport, as a Node or mobile JS runtime would use it.
import assert from 'node:assert/strict';
import test from 'node:test';
import { createTracker, loadWasm, Tracker } from '@eventline/tracker';
import wire from './wire.cjs';

const { PARTNER, COLLECTOR, memoryStorage } = wire;

function recordingTransport() {
  const requests = [];
  const transport = async (request) => {
    requests.push(request);
    return { status: 200, retryAfter: null, body: wire.collectorAnswer(request.body) };
  };
  return { requests, transport };
}

const sentEvents = (requests) => requests.flatMap((r) => JSON.parse(r.body).events);

// run.sh runs these files twice: with WebAssembly, and under `node --noexpose_wasm` with
// EVENTLINE_NO_WASM=1, where the package must pick its JavaScript core (dist/core.wasm.js) by itself.
test('the core is WebAssembly where the runtime has it, else its JavaScript build', async () => {
  const noWasm = process.env.EVENTLINE_NO_WASM === '1';
  assert.equal(typeof WebAssembly, noWasm ? 'undefined' : 'object');
  await loadWasm();
  // The JavaScript build answers like the .wasm: a tracker works (the tests below check how).
  const t = new Tracker({ collectorUrl: COLLECTOR, partnerId: PARTNER, source: 'mobile_app', storage: memoryStorage(), transport: async () => ({ status: 200 }) });
  assert.match(t.anonymousId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.free();
});

test('createTracker loads the core once and builds a Tracker', async () => {
  const storage = memoryStorage();
  const { transport } = recordingTransport();
  const options = { collectorUrl: COLLECTOR, partnerId: PARTNER, source: 'mobile_app', storage, transport };
  const [a, b] = await Promise.all([createTracker(options), createTracker(options)]);
  assert.ok(a instanceof Tracker);
  assert.equal(loadWasm(), loadWasm(), 'one shared load');
  // Same host storage: the anonymous id is persisted and reused.
  assert.equal(a.anonymousId, b.anonymousId);
  assert.ok([...storage.map.keys()].some((k) => k.startsWith('eventline')), 'ids persisted under the prefix');
  a.free();
  b.free();
});

test('events reach the transport in wire format v1', async () => {
  const storage = memoryStorage();
  const { requests, transport } = recordingTransport();
  const tracker = await createTracker({
    collectorUrl: COLLECTOR, partnerId: PARTNER, source: 'mobile_app', storage, transport, flushIntervalMs: 60_000,
  });
  const who = { source: 'mobile_app', anonymousId: tracker.anonymousId, sessionId: tracker.sessionId };
  assert.match(tracker.anonymousId, /^[0-9a-f-]{36}$/);
  assert.equal(tracker.customerId, undefined);

  const viewed = { category: 'Jacket', price: 99.5, in_stock: true };
  const first = tracker.track('product_viewed', viewed);
  const earlier = Date.parse('2026-11-25T10:00:00.123Z');
  const second = tracker.trackAt('app_opened', { build: 7 }, earlier);
  tracker.identify('42');
  const third = tracker.track('added_to_cart', { sku: 'J-1', quantity: 2 });

  assert.throws(
    () => tracker.track('bad_event', { 'user-name': 'x' }),
    (error) => error instanceof Error && error.code === 'context_key_hyphen' && error.field === 'context.user-name',
  );

  await tracker.flush();
  const events = sentEvents(requests);
  assert.deepEqual(events.map((e) => e.event_id), [first, second, third], 'sent once, in order, invalid one never queued');
  assert.equal(new Set(events.map((e) => e.event_id)).size, 3);
  for (const r of requests) {
    assert.equal(r.url, `${COLLECTOR}/v1/events`);
    assert.equal(typeof r.keepalive, 'boolean');
    wire.checkBody(r.body, PARTNER);
  }
  wire.checkEvent(events[0], { ...who, name: 'product_viewed', customerId: undefined, context: viewed });
  wire.checkEvent(events[1], { ...who, name: 'app_opened', customerId: undefined, context: { build: 7 }, occurredAt: earlier });
  wire.checkEvent(events[2], { ...who, name: 'added_to_cart', customerId: '42', context: { sku: 'J-1', quantity: 2 } });
  const age = Date.now() - Date.parse(events[0].occurred_at);
  assert.ok(age >= 0 && age < 10_000, `occurred_at is now (${age} ms ago)`);

  // Nothing left: a second flush sends nothing.
  const before = requests.length;
  await tracker.flush();
  assert.equal(requests.length, before);
  tracker.free();
});

test('opted out, nothing is sent; reset starts a new anonymous id', async () => {
  const storage = memoryStorage();
  const { requests, transport } = recordingTransport();
  const tracker = await createTracker({
    collectorUrl: COLLECTOR, partnerId: PARTNER, source: 'mobile_app', storage, transport, flushIntervalMs: 60_000,
  });
  tracker.optOut();
  assert.equal(tracker.optedOut, true);
  try {
    tracker.track('while_opted_out');
  } catch {
    // Throwing while opted out is also acceptable; sending is not.
  }
  await tracker.flush();
  assert.equal(requests.length, 0);
  tracker.optIn();
  assert.equal(tracker.optedOut, false);

  const before = tracker.anonymousId;
  tracker.identify('7');
  tracker.reset();
  assert.notEqual(tracker.anonymousId, before);
  assert.equal(tracker.customerId, undefined);
  tracker.track('after_reset');
  await tracker.flush();
  const events = sentEvents(requests);
  assert.deepEqual(events.map((e) => e.name), ['after_reset']);
  assert.equal(events[0].anonymous_id, tracker.anonymousId);
  assert.ok(!('customer_id' in events[0]));
  tracker.free();
});

test('bad options reject with a coded error', async () => {
  await assert.rejects(
    createTracker({ collectorUrl: COLLECTOR, partnerId: PARTNER, source: 'bad source!' }),
    (error) => error instanceof Error && typeof error.code === 'string' && error.code.length > 0,
  );
});
