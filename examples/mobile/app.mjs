#!/usr/bin/env node
// The "Mobile application" example (source code `mobile_app`): one app session tracked with
// @eventline/tracker from a JavaScript runtime that has no window and no document, the way a
// React Native or Capacitor app would use it. Node stands in for the app's runtime here:
//
//   - storage: the host supplies it. Apps have no localStorage; this one keeps the tracker's ids
//     and its unsent queue in a JSON file (AsyncStorage/MMKV would back it in a real app), so an
//     event tracked while offline is sent at the next start;
//   - transport: the tracker's default (fetch), or with EVENTLINE_TRANSPORT=host a function of the
//     host (a native HTTP bridge in a real app), here a logging wrapper around fetch;
//   - lifecycle: no page to hide, so the app flushes when it goes to the background.
//
// Run (after `make run`):   cd examples/mobile && npm install && node app.mjs [customer-id]
// Settings (environment):   EVENTLINE_COLLECTOR_URL  (http://127.0.0.1:8080)
//                           EVENTLINE_PARTNER_ID, or EVENTLINE_PARTNER_FILE (<repo>/.data/demo-partner.json)
//                           EVENTLINE_STORAGE_FILE   (examples/mobile/.state/device.json)
//                           EVENTLINE_TRANSPORT      (default | host)
// With --json it prints one JSON object (ids and events) instead of prose.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createTracker } from "@eventline/tracker";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes("--json");
const customerId = args.find((a) => !a.startsWith("--")) || "1042";
const say = json ? () => {} : (...m) => console.log(...m);

/** Synchronous key/value storage in one JSON file, written atomically (temp file + rename). */
class FileStorage {
  constructor(file) {
    this.file = file;
    try {
      this.data = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      this.data = {};
    }
  }
  getItem(key) {
    return Object.hasOwn(this.data, key) ? this.data[key] : null;
  }
  setItem(key, value) {
    this.data[key] = String(value);
    this.save();
  }
  removeItem(key) {
    delete this.data[key];
    this.save();
  }
  save() {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.data));
    fs.renameSync(tmp, this.file);
  }
}

/** A host transport: the app's own HTTP stack. Same contract as the default one. */
async function hostTransport({ url, body }) {
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    say(`  [host transport] POST ${url} -> ${res.status} in ${Date.now() - started} ms`);
    return { status: res.status, retryAfter: res.headers.get("retry-after"), body: text };
  } catch (e) {
    say(`  [host transport] POST ${url} failed: ${e.message}`);
    throw e;
  }
}

function partnerId() {
  if (process.env.EVENTLINE_PARTNER_ID) return process.env.EVENTLINE_PARTNER_ID;
  const file = process.env.EVENTLINE_PARTNER_FILE || path.join(here, "..", "..", ".data", "demo-partner.json");
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")).id;
  } catch (e) {
    console.error(`No partner id: set EVENTLINE_PARTNER_ID or run \`make run\` first (${file}: ${e.message})`);
    process.exit(2);
  }
}

const rejected = [];
const tracker = await createTracker({
  collectorUrl: process.env.EVENTLINE_COLLECTOR_URL || "http://127.0.0.1:8080",
  partnerId: partnerId(),
  source: "mobile_app",
  storage: new FileStorage(process.env.EVENTLINE_STORAGE_FILE || path.join(here, ".state", "device.json")),
  ...(process.env.EVENTLINE_TRANSPORT === "host" ? { transport: hostTransport } : {}),
  onRejected: (list) => {
    rejected.push(...list);
    for (const r of list) console.error(`rejected ${r.name} (${r.eventId}): ${r.code} ${r.field} ${r.message}`);
  },
});

const events = [];
function track(name, context) {
  // The tracker stamps occurred_at inside track(): between these two readings of the clock.
  const before = Date.now();
  const eventId = tracker.track(name, context);
  events.push({ name, eventId, before, at: Date.now() });
  say(`  ${name.padEnd(16)} ${eventId}`);
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

say(`Mobile app session (device ${tracker.anonymousId}, session ${tracker.sessionId})`);
track("app_opened", { app_version: "3.2.0", platform: "android", os_version: "14", device_model: "Pixel 8", cold_start: true });
track("screen_viewed", { screen: "Home" });
await pause(50);
track("screen_viewed", { screen: "Product", product_id: "JKT-001" });
track("product_viewed", { product_id: "JKT-001", category: "Jacket", price: 189.9, currency: "EUR", in_stock: true });
if (tracker.customerId && tracker.customerId !== customerId) {
  // Somebody else was logged in on this device: log them out first (new anonymous id, new session).
  track("logged_out", {});
  tracker.reset();
}
tracker.identify(customerId);
track("logged_in", { method: "biometric" });
track("added_to_cart", { product_id: "JKT-001", category: "Jacket", price: 189.9, quantity: 1, cart_items: 1 });
track("screen_viewed", { screen: "Checkout" });
track("purchase", { order_id: `APP-${Date.now().toString(36).toUpperCase()}`, total: 189.9, currency: "EUR", items: 1, payment_method: "card" });
track("app_backgrounded", {});
// An app has no pagehide: flush when the OS moves the app to the background.
await tracker.flush();

const result = {
  anonymousId: tracker.anonymousId,
  sessionId: tracker.sessionId,
  customerId: tracker.customerId,
  events,
  rejected,
};
tracker.free();
if (json) console.log(JSON.stringify(result));
else say(`Sent ${events.length} events as customer ${customerId}; see them with source = 'mobile_app' in ClickHouse.`);
process.exit(rejected.length ? 1 : 0);
