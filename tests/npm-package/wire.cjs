// Checks shared by the Node and browser tests: what one event and one request body must look like
// on the wire (README "Wire format v1"). Plain assert, so a wrong value fails with a diff.
'use strict';
const assert = require('node:assert/strict');

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const EVENT_FIELDS = new Set([
  'event_id', 'kind', 'name', 'source', 'customer_id', 'anonymous_id', 'session_id', 'occurred_at', 'context',
]);
const AUTO_CONTEXT_KEYS = new Set([
  'page_url', 'page_referrer', 'page_title', 'page_path', 'screen_width', 'screen_height', 'language',
  'time_zone', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content',
]);

/** Parses and checks one request body; returns it. */
function checkBody(text, partnerId) {
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body).sort(), ['events', 'partner_id', 'sent_at']);
  assert.equal(body.partner_id, partnerId);
  assert.match(body.sent_at, RFC3339_MS);
  assert.ok(Array.isArray(body.events) && body.events.length >= 1 && body.events.length <= 500);
  return body;
}

/**
 * Checks one event against what the test expects: `want` has name, source, anonymousId,
 * sessionId, customerId (undefined = must be absent), context (these keys must be there with
 * these values; any other key must be an automatic one), and optionally occurredAt (ms).
 */
function checkEvent(event, want) {
  for (const field of Object.keys(event)) assert.ok(EVENT_FIELDS.has(field), `unknown field ${field}`);
  assert.match(event.event_id, UUID_V7);
  assert.equal(event.kind, 'customer');
  assert.equal(event.name, want.name);
  assert.equal(event.source, want.source);
  assert.match(event.anonymous_id, UUID);
  assert.equal(event.anonymous_id, want.anonymousId);
  assert.equal(event.session_id, want.sessionId);
  if (want.customerId === undefined) assert.ok(!('customer_id' in event), 'customer_id must be absent');
  else assert.equal(event.customer_id, want.customerId);
  assert.match(event.occurred_at, RFC3339_MS);
  if (want.occurredAt !== undefined) assert.equal(event.occurred_at, new Date(want.occurredAt).toISOString());
  const context = event.context || {};
  for (const [key, value] of Object.entries(want.context || {})) assert.deepEqual(context[key], value, `context.${key}`);
  for (const key of Object.keys(context)) {
    assert.ok(key in (want.context || {}) || AUTO_CONTEXT_KEYS.has(key), `unexpected context key ${key}`);
  }
}

/** What the collector answers for a batch it accepted whole. */
function collectorAnswer(text) {
  const { events } = JSON.parse(text);
  return JSON.stringify({
    accepted: events.length,
    rejected: 0,
    results: events.map((e, index) => ({ index, event_id: e.event_id, status: 'accepted' })),
  });
}

/** The partner id and (unreachable) collector the Node tests configure. */
const PARTNER = '0192f0c6-0000-7000-8000-000000000001';
const COLLECTOR = 'http://collector.invalid:8080';

/** A host storage in memory, as a Node or mobile runtime would supply; `map` is for assertions. */
function memoryStorage() {
  const map = new Map();
  return {
    map,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, String(v)),
    removeItem: (k) => void map.delete(k),
  };
}

module.exports = { checkBody, checkEvent, collectorAnswer, memoryStorage, COLLECTOR, PARTNER, UUID_V7 };
