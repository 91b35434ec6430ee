// The tracker set up for a React Native app: storage on AsyncStorage, delivery with fetch,
// a flush when the app goes to the background. Import `startTracking` once (e.g. in App.js).
//
// React Native resolves '@eventline/tracker' to the package's "react-native" entry
// (dist/native.js): the same Rust core as in browsers, built as JavaScript (wasm2js), since
// Hermes has no WebAssembly.
import AsyncStorage from '@react-native-async-storage/async-storage';
import { AppState } from 'react-native';
import { createTracker } from '@eventline/tracker';

const PREFIX = 'eventline';

/**
 * The tracker's storage is synchronous (it stores every event before `track` returns); AsyncStorage
 * is not. So the tracker's keys are read into memory once at start-up, served from there, and
 * every change is written through to AsyncStorage in the order it was made. An event tracked
 * moments before the app is killed may miss the disk; everything else survives restarts and is
 * sent at the next start. (A synchronous store such as react-native-mmkv needs no cache: pass
 * its getString / set / delete directly, as in the package README.)
 */
async function asyncStorageCache(prefix) {
  const keys = (await AsyncStorage.getAllKeys()).filter((k) => k.startsWith(`${prefix}.`));
  const map = new Map(keys.length ? await AsyncStorage.multiGet(keys) : []);
  let writes = Promise.resolve();
  const later = (write) => {
    writes = writes.then(write).catch(() => {});
  };
  return {
    getItem: (key) => (map.has(key) ? map.get(key) : null),
    setItem: (key, value) => {
      map.set(key, value);
      later(() => AsyncStorage.setItem(key, value));
    },
    removeItem: (key) => {
      map.delete(key);
      later(() => AsyncStorage.removeItem(key));
    },
    // With key() and length, a second tracker instance (or the next app start) adopts queues
    // an earlier one left behind.
    key: (i) => [...map.keys()][i] ?? null,
    get length() {
      return map.size;
    },
  };
}

/** POSTs a batch with React Native's fetch; the tracker reads status, Retry-After and body. */
async function fetchTransport({ url, body }) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    body,
  });
  return { status: res.status, retryAfter: res.headers.get('Retry-After') ?? undefined, body: await res.text() };
}

/** Creates the app's tracker: `config` is { collectorUrl, partnerId }. */
export async function startTracking(config, onRejected) {
  const tracker = await createTracker({
    collectorUrl: config.collectorUrl,
    partnerId: config.partnerId,
    source: 'mobile_app',
    storagePrefix: PREFIX,
    storage: await asyncStorageCache(PREFIX),
    transport: fetchTransport,
    // No window or document in an app: the tracker's page hooks have nothing to attach to.
    lifecycle: false,
    onRejected,
  });
  // An app has no pagehide: send what is queued when it goes to the background.
  AppState.addEventListener('change', (state) => {
    if (state === 'background') tracker.flush();
  });
  return tracker;
}
