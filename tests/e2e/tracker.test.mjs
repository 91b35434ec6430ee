// The tracker's browser behaviour in the demo shop's pages (headless Chromium, real collector):
// rules enforced in the browser, opt-out, the loader snippet's replay, the page-hidden delivery.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  SHOP_URL, eventsByIds, eventsOfAnonymous, eventually, expectStoredOnce, launchBrowser, trackerReady, query,
  shopContext,
} from "./lib/harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Bodies of the requests the browser sent to the collector, as one string to search. */
function sentBodies(log, from = 0) {
  return log.requests.slice(from).map((r) => r.body ?? "").join("\n");
}

describe("the tracker in the browser", { timeout: 90_000 }, () => {
  test("a hyphenated context key throws context_key_hyphen in the browser and nothing reaches the collector", async () => {
    const { context, log } = await shopContext(browser);
    const page = await context.newPage();
    await page.goto(SHOP_URL);
    await trackerReady(page, log);

    const result = await page.evaluate(async () => {
      const t = eventline.tracker;
      let error = null;
      try {
        t.track("e2e_hyphen_probe", { "user-name": "anna", plan: "gold" });
      } catch (e) {
        error = { isError: e instanceof Error, code: e.code, field: e.field, message: e.message };
      }
      // The global dispatcher never throws: it reports on console.error and returns nothing.
      const viaGlobal = eventline("track", "e2e_hyphen_probe", { "user-name": "ben" });
      // A good event after the bad ones: once it is stored, anything queued before it was sent.
      const good = t.track("e2e_after_hyphen", { plan: "gold" });
      await t.flush();
      return { error, viaGlobal: viaGlobal ?? null, good };
    });

    assert.ok(result.error, "track() threw");
    assert.equal(result.error.isError, true, "an Error instance");
    assert.equal(result.error.code, "context_key_hyphen");
    assert.equal(result.error.field, "context.user-name");
    assert.equal(result.viaGlobal, null);
    assert.ok(log.console.some((m) => m.includes("context_key_hyphen")), "the global call reported the code on the console");

    await expectStoredOnce([result.good]);
    await context.close();
    assert.ok(!sentBodies(log).includes("e2e_hyphen_probe"), "no request carried the bad event");
    const [stored] = await query(
      "SELECT count() AS n FROM events WHERE partner_id = {partner:UUID} AND name = 'e2e_hyphen_probe'");
    assert.equal(stored.n, 0, "not in events");
    const [rejected] = await query(
      `SELECT count() AS n FROM rejected_events WHERE partner_id = {partner:UUID}
       AND (reason_code = 'context_key_hyphen' OR position(payload, 'e2e_hyphen_probe') > 0)`);
    assert.equal(rejected.n, 0, "not in rejected_events");
  });

  test("after optOut() nothing is sent or stored, across a navigation; optIn() resumes", async () => {
    const { context, log } = await shopContext(browser);
    const page = await context.newPage();
    await page.goto(SHOP_URL);
    const { anonymousId } = await trackerReady(page, log);
    await page.evaluate(() => eventline.tracker.flush());
    const [pageView] = await eventually(() => eventsOfAnonymous(anonymousId), { message: "the first page view" });

    const mark = log.requests.length;
    const out = await page.evaluate(() => {
      eventline("optOut");
      const t = eventline.tracker;
      t.track("e2e_optout_probe", { n: 1 });
      eventline("track", "e2e_optout_probe", { n: 2 });
      t.page();
      return { optedOut: t.optedOut };
    });
    assert.equal(out.optedOut, true);
    // A new page of the same site: the opt-out is remembered, its page view and product view are not sent.
    await page.click('a[data-product="SHO-220"]');
    await page.waitForURL(/SHO-220/);
    await trackerReady(page, log);
    const opted = await page.evaluate(async () => {
      const t = eventline.tracker;
      const optedOut = t.optedOut;
      await t.flush();
      t.track("e2e_optout_probe", { n: 3 });
      // Give a timer-driven send (default linger 1 s) the chance to happen, if it wrongly would.
      await new Promise((r) => setTimeout(r, 1500));
      const stored = Object.keys(localStorage).filter((k) => k.startsWith("eventline"))
        .map((k) => `${k}=${localStorage.getItem(k)}`);
      return { optedOut, stored };
    });
    assert.equal(opted.optedOut, true, "opt-out persisted across the navigation");
    assert.deepEqual(log.requests.slice(mark).map((r) => `${r.method} ${r.url}`), [], "no request hit the collector while opted out");
    for (const entry of opted.stored) {
      assert.ok(!/e2e_optout_probe|product_viewed|SHO-220/.test(entry), `nothing queued in localStorage: ${entry.slice(0, 200)}`);
    }

    const back = await page.evaluate(async () => {
      eventline("optIn");
      const t = eventline.tracker;
      const id = t.track("e2e_optin_probe", { n: 4 });
      await t.flush();
      return { id, optedOut: t.optedOut };
    });
    assert.equal(back.optedOut, false);
    const [row] = await expectStoredOnce([back.id]);
    await context.close();
    assert.equal(row.name, "e2e_optin_probe");
    const [leaked] = await query(
      `SELECT count() AS n FROM events WHERE partner_id = {partner:UUID}
       AND (name = 'e2e_optout_probe' OR context_strings['product_id'] = 'SHO-220'
            OR position(context_strings['page_url'], 'SHO-220') > 0
            OR (anonymous_id = {anon:String} AND event_id != {first:UUID} AND name = 'page_view'))
       AND event_id != {optin:UUID}`,
      { anon: anonymousId, first: pageView.event_id, optin: back.id });
    assert.equal(leaked.n, 0, "no event tracked while opted out is stored");
    assert.ok(!sentBodies(log).includes("e2e_optout_probe"), "no request carried an opted-out event");
  });

  test("calls made through the loader snippet before the module loaded keep their original time", async () => {
    const { context, log } = await shopContext(browser);
    const page = await context.newPage();
    const DELAY_MS = 2000;
    // A slow network for the tracker module only.
    await page.route("**/eventline/eventline.js", async (route) => {
      await new Promise((r) => setTimeout(r, DELAY_MS));
      await route.continue();
    });
    await page.goto(`${SHOP_URL}product.html?id=BAG-031`, { waitUntil: "commit" });
    await page.waitForFunction(() => typeof window.eventline === "function" && Array.isArray(window.eventline.q));
    const queued = await page.evaluate(() => {
      const at = Date.now();
      eventline("track", "e2e_snippet_probe", { step: 1 });
      eventline("identify", "snippet-7");
      eventline("track", "e2e_snippet_identified", { step: 2 });
      return { at, loaded: Boolean(eventline.tracker), queue: eventline.q.map((c) => c[1][0]) };
    });
    assert.equal(queued.loaded, false, "the module had not loaded yet");
    assert.deepEqual(queued.queue.slice(0, 2), ["init", "page"], "the page's own snippet calls are queued first");
    const { anonymousId, now: readyAt } = await trackerReady(page, log);
    assert.ok(readyAt - queued.at >= DELAY_MS - 500, `the module loaded ${readyAt - queued.at} ms after the calls`);
    await page.evaluate(() => eventline.tracker.flush());

    const rows = await eventually(async () => {
      const got = await eventsOfAnonymous(anonymousId);
      return ["page_view", "e2e_snippet_probe", "e2e_snippet_identified", "product_viewed"]
        .every((n) => got.some((r) => r.name === n)) ? got : null;
    }, { message: "the replayed events" });
    await context.close();
    const probe = rows.find((r) => r.name === "e2e_snippet_probe");
    const identified = rows.find((r) => r.name === "e2e_snippet_identified");
    const pageView = rows.find((r) => r.name === "page_view");
    assert.ok(Math.abs(probe.occurred_ms - queued.at) <= 5, `occurred_at ${probe.occurred_ms} is the call time ${queued.at}`);
    assert.ok(Math.abs(identified.occurred_ms - queued.at) <= 5);
    assert.ok(Math.abs(probe.event_ms - queued.at) <= 1000, `event_time ${probe.event_ms} is the call time, not the replay time`);
    assert.equal(probe.customer_id, "", "identify came after the probe");
    assert.equal(identified.customer_id, "snippet-7", "replayed in order");
    assert.equal(rows.filter((r) => r.name === "e2e_snippet_probe").length, 1);
    assert.deepEqual(log.console, []);
    // The page view was queued by the page's snippet before the probe, so it happened earlier.
    assert.ok(pageView.occurred_ms <= queued.at,
      `eventline("page") made before the load keeps its time: occurred_at ${pageView.occurred_ms} is ${pageView.occurred_ms - queued.at} ms after a later call`);
  });

  test("visibilitychange to hidden delivers the queue with sendBeacon or keepalive fetch, without flush()", async () => {
    const { context, log } = await shopContext(browser);
    const page = await context.newPage();
    await page.goto(SHOP_URL);
    await trackerReady(page, log);
    const sent = await page.evaluate(async () => {
      await eventline.tracker.flush(); // the page's own tracker has nothing queued now
      // Record how requests leave the page (the tracker looks fetch and sendBeacon up per call).
      const deliveries = (window.__deliveries = []);
      const fetch0 = window.fetch.bind(window);
      window.fetch = (input, init) => {
        const request = input instanceof Request ? input : null;
        const entry = {
          via: "fetch",
          url: String(request ? request.url : input),
          keepalive: Boolean(init?.keepalive ?? request?.keepalive),
          body: typeof init?.body === "string" ? init.body : "",
        };
        if (request && !init?.body) request.clone().text().then((t) => { entry.body = t; });
        deliveries.push(entry);
        return fetch0(input, init);
      };
      const beacon0 = navigator.sendBeacon.bind(navigator);
      navigator.sendBeacon = (url, data) => {
        const entry = { via: "beacon", url: String(url), keepalive: true, body: typeof data === "string" ? data : "" };
        if (data instanceof Blob) data.text().then((t) => { entry.body = t; });
        deliveries.push(entry);
        return beacon0(url, data);
      };
      // A second tracker from the package's browser entry, with a linger far beyond the test:
      // only the page-hidden path can send its events.
      const { createTracker } = await import("/eventline/index.js");
      const t = await createTracker({
        collectorUrl: EVENTLINE_CONFIG.collectorUrl, partnerId: EVENTLINE_CONFIG.partnerId,
        source: "online_store", flushIntervalMs: 600_000, batchSize: 100, storagePrefix: "e2e_hidden",
      });
      window.__hiddenTracker = t;
      const ids = [1, 2, 3].map((n) => t.track("e2e_hidden_probe", { n }));
      await new Promise((r) => setTimeout(r, 300));
      const before = deliveries.filter((d) => ids.some((id) => d.body.includes(id)))
        .concat(deliveries.filter((d) => !d.body && d.url.startsWith(EVENTLINE_CONFIG.collectorUrl)))
        .map((d) => ({ via: d.via, url: d.url, keepalive: d.keepalive, body: d.body.slice(0, 300) }));
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
      return { ids, before };
    });
    assert.deepEqual(sent.before, [], "nothing was sent before the page was hidden");
    const rows = await expectStoredOnce(sent.ids);
    assert.deepEqual(rows.map((r) => r.name), ["e2e_hidden_probe", "e2e_hidden_probe", "e2e_hidden_probe"]);
    const deliveries = await page.evaluate(() => window.__deliveries);
    await context.close();
    const carrying = deliveries.filter((d) => sent.ids.some((id) => d.body.includes(id)));
    assert.ok(carrying.length >= 1, `a recorded request carried the events: ${JSON.stringify(deliveries).slice(0, 400)}`);
    for (const d of carrying) assert.ok(d.via === "beacon" || d.keepalive, `delivered by ${d.via} keepalive=${d.keepalive}`);
    assert.equal((await eventsByIds(sent.ids)).length, 3);
  });
});
