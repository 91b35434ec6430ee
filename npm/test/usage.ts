// Compiled by `npm run typecheck` (tsc --noEmit, strict, lib es2022 + dom, no esnext.disposable):
// the hand-written types must describe the way the README uses the package.
import {
  createTracker,
  loadWasm,
  Tracker,
  type CreateTrackerOptions,
  type Rejection,
  type TrackerError,
  type TrackerStorage,
  type Transport,
} from '../src/index.js';

const memory = new Map<string, string>();
const storage: TrackerStorage = {
  getItem: (key) => memory.get(key) ?? null,
  setItem: (key, value) => void memory.set(key, value),
  removeItem: (key) => void memory.delete(key),
};

const transport: Transport = async ({ url, body, keepalive }) => {
  const response = await fetch(url, { method: 'POST', body, keepalive, headers: { 'content-type': 'application/json' } });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text() };
};

const options: CreateTrackerOptions = {
  collectorUrl: 'https://collect.example.com',
  partnerId: '0192f0c6-0000-7000-8000-000000000001',
  source: 'online_store',
  batchSize: 20,
  autoContext: { utm: false, screen: false },
  storage,
  transport,
  onRejected: (rejections: Rejection[]) => {
    for (const r of rejections) console.warn(r.eventId, r.name, r.code, r.field ?? '', r.message);
  },
  wasm: new URL('https://cdn.example.com/eventline_tracker_bg.wasm'),
};

export async function main(): Promise<string> {
  await loadWasm();
  const tracker: Tracker = await createTracker(options);
  const id: string = tracker.track('product_viewed', { category: 'Jacket', price: 99.5, in_stock: true });
  tracker.trackAt('app_opened', undefined, Date.now() - 1000);
  tracker.page();
  const pageId: string = tracker.pageAt({ section: 'shoes' }, Date.now() - 1000);
  void pageId;
  tracker.identify('42');
  try {
    tracker.track('bad', { 'user-name': 'x' });
  } catch (e) {
    const error = e as TrackerError;
    if (error.code === 'context_key_hyphen') console.error(error.field);
  }
  await tracker.flush();
  if (!tracker.optedOut) tracker.optOut();
  tracker.optIn();
  tracker.reset();
  const ids: [string, string, string | undefined] = [tracker.anonymousId, tracker.sessionId, tracker.customerId];
  tracker.free();
  // The loader snippet's global, as a page script would call it.
  eventline('init', options);
  eventline('track', 'clicked', { button: 'buy' });
  eventline('optOut');
  const live: Tracker | undefined = window.eventline.tracker;
  return `${id} ${ids.join(' ')} ${String(live)}`;
}

// @ts-expect-error a context value must be a string, number or boolean
createTracker(options).then((t) => t.track('x', { nested: { a: 1 } }));
// @ts-expect-error collectorUrl, partnerId and source are required
createTracker({ source: 'online_store' });
