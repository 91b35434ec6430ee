// The CommonJS entry (require) of the installed tarball, in Node.
'use strict';
const assert = require('node:assert/strict');
const test = require('node:test');
const { createTracker, Tracker } = require('@eventline/tracker');
const wire = require('./wire.cjs');

const PARTNER = '0192f0c6-0000-7000-8000-000000000002';

test('require() gives a working tracker', async () => {
  const map = new Map();
  const storage = {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
  };
  const requests = [];
  const transport = async (request) => {
    requests.push(request);
    return { status: 200, body: wire.collectorAnswer(request.body) };
  };
  const tracker = await createTracker({
    collectorUrl: 'http://127.0.0.1:9', partnerId: PARTNER, source: 'pos', storage, transport, flushIntervalMs: 60_000,
  });
  assert.ok(tracker instanceof Tracker);
  const id = tracker.track('receipt_printed', { total: 12.5, currency: 'EUR' });
  assert.match(id, wire.UUID_V7);
  assert.throws(() => tracker.track('x', { 'user-name': 'a' }), (e) => e.code === 'context_key_hyphen');
  await tracker.flush();
  assert.equal(requests.length, 1);
  const body = wire.checkBody(requests[0].body, PARTNER);
  assert.equal(body.events.length, 1);
  wire.checkEvent(body.events[0], {
    name: 'receipt_printed', source: 'pos', anonymousId: tracker.anonymousId, sessionId: tracker.sessionId,
    customerId: undefined, context: { total: 12.5, currency: 'EUR' },
  });
  assert.equal(body.events[0].event_id, id);
  tracker.free();
});
