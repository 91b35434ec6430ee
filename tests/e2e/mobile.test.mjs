// The mobile example (examples/mobile/app.mjs) as a child process: the npm package's Node entry,
// host-supplied file storage, the default and the host transport, source `mobile_app`.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { COLLECTOR_URL, PARTNER_ID, ROOT, expectStoredOnce } from "./lib/harness.mjs";

const run = promisify(execFile);
const APP = path.join(ROOT, "examples", "mobile", "app.mjs");

async function appSession(storageFile, customerId, transport = "default") {
  const { stdout } = await run(process.execPath, [APP, "--json", customerId], {
    env: {
      ...process.env,
      EVENTLINE_COLLECTOR_URL: COLLECTOR_URL,
      EVENTLINE_PARTNER_ID: PARTNER_ID,
      EVENTLINE_STORAGE_FILE: storageFile,
      EVENTLINE_TRANSPORT: transport,
    },
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split("\n").pop());
}

describe("the mobile example", { timeout: 90_000 }, () => {
  test("an app session from Node arrives with source mobile_app, once per event, and the device id persists", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eventline-mobile-"));
    const storage = path.join(dir, "device.json");
    try {
      const first = await appSession(storage, "7001");
      assert.deepEqual(first.rejected, []);
      assert.deepEqual(first.events.map((e) => e.name), [
        "app_opened", "screen_viewed", "screen_viewed", "product_viewed", "logged_in",
        "added_to_cart", "screen_viewed", "purchase", "app_backgrounded",
      ]);
      const rows = await expectStoredOnce(first.events.map((e) => e.eventId));
      // By order, not time: events tracked within the same millisecond as the login share its `at`.
      const loginIndex = first.events.findIndex((e) => e.name === "logged_in");
      for (const r of rows) {
        const sent = first.events.find((e) => e.eventId === r.event_id);
        assert.equal(r.source, "mobile_app");
        assert.equal(r.name, sent.name);
        assert.equal(r.ingest_path, "client");
        assert.equal(r.anonymous_id, first.anonymousId);
        assert.equal(r.session_id, first.sessionId);
        const index = first.events.indexOf(sent);
        assert.equal(r.customer_id, index >= loginIndex ? "7001" : "", `${r.name} customer id`);
        // Stamped inside track(), whatever the machine's load: between the app's two readings.
        assert.ok(
          r.occurred_ms >= sent.before && r.occurred_ms <= sent.at,
          `${r.name} occurred_at ${r.occurred_ms} not within [${sent.before}, ${sent.at}]`,
        );
        assert.ok(Math.abs(r.event_ms - sent.at) <= 5000, `${r.name} event_time`);
      }
      const viewed = rows.find((r) => r.name === "product_viewed");
      assert.equal(viewed.context_strings.category, "Jacket");
      assert.equal(viewed.context_numbers.price, 189.9);
      assert.equal(viewed.context_booleans.in_stock, true);
      const saved = JSON.parse(fs.readFileSync(storage, "utf8"));
      assert.ok(Object.keys(saved).length > 0, "the tracker used the host's storage file");

      // The next app start on the same device (through the host transport this time).
      const second = await appSession(storage, "7001", "host");
      assert.equal(second.anonymousId, first.anonymousId, "the device id came back from the storage file");
      const again = await expectStoredOnce(second.events.map((e) => e.eventId));
      assert.ok(again.every((r) => r.source === "mobile_app"));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
