// The demo shop (examples/shop) in headless Chromium: a customer's whole visit, then the same
// with the collector down. Every event the pages produced must be in ClickHouse exactly once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  SHOP_URL, duplicates, eventsOfAnonymous, eventually, launchBrowser, trackerReady, sentEventIds, shopContext,
  startCollector, stopCollector, collectorReady,
} from "./lib/harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** The names the pages produced: one page_view per shop document loaded, plus each tracked event. */
function expectedNames(log) {
  return [...log.loads.map(() => "page_view"), ...log.tracked.map((t) => t.name)].sort();
}

/** Polls ClickHouse until the anonymous id has at least as many events as the pages produced. */
async function storedFor(anonymousId, log, timeoutMs = 20_000) {
  const want = expectedNames(log);
  return eventually(async () => {
    const rows = await eventsOfAnonymous(anonymousId);
    return rows.length >= want.length ? rows : null;
  }, {
    timeoutMs,
    message: `${want.length} events of anonymous id ${anonymousId}`,
  }).catch(async (e) => {
    const rows = await eventsOfAnonymous(anonymousId);
    e.message += `\nexpected: ${want.join(",")}\nstored:   ${rows.map((r) => r.name).sort().join(",")}`;
    throw e;
  });
}

describe("the demo shop", { timeout: 120_000 }, () => {
  test("a visit from product list to purchase lands in ClickHouse once per event, with ids and context", async () => {
    const { context, log } = await shopContext(browser);
    const page = await context.newPage();

    await page.goto(SHOP_URL);
    const first = await trackerReady(page, log);
    assert.match(first.anonymousId, /^[0-9a-f-]{36}$/, "anonymous id is a UUID");
    assert.equal(first.customerId, null, "nobody is logged in yet");

    // list -> product page of a jacket (product_viewed) -> add to cart
    await page.click('a[data-product="JKT-001"]');
    await page.waitForURL(/product\.html\?id=JKT-001/);
    await trackerReady(page, log);
    await page.fill("#qty", "2");
    await page.click("#add-to-cart");
    await page.waitForSelector("#added a");

    // log in (identify) and come back to the product page
    await page.click("#login-link");
    await page.waitForURL(/login\.html/);
    await trackerReady(page, log);
    await page.fill('input[name="email"]', "anna@example.com");
    await page.fill('input[name="password"]', "demo");
    await page.click("#login-submit");
    await page.waitForURL(/product\.html\?id=JKT-001/);
    const loggedIn = await trackerReady(page, log);
    assert.equal(loggedIn.customerId, "1042", "identify() survived the navigation");
    assert.equal(loggedIn.anonymousId, first.anonymousId, "same browser, same anonymous id");

    // cart -> checkout -> purchase (tracked right before a navigation: the unload path)
    await page.click("#cart-link");
    await page.waitForURL(/cart\.html/);
    await trackerReady(page, log);
    await page.click("#checkout");
    await page.waitForURL(/checkout\.html/);
    await trackerReady(page, log);
    await page.click("#place-order");
    await page.waitForURL(/order\.html/);
    await trackerReady(page, log);
    const orderId = await page.textContent("#order-id");
    await page.close(); // delivers what is still queued (pagehide -> beacon / keepalive)

    const names = log.tracked.map((t) => t.name);
    assert.deepEqual(names, ["product_viewed", "added_to_cart", "logged_in", "product_viewed", "checkout_started", "purchase"]);
    assert.equal(log.loads.length, 7, "seven documents: list, product, login, product, cart, checkout, order");

    const rows = await storedFor(first.anonymousId, log);
    await context.close();
    assert.deepEqual(rows.map((r) => r.name).sort(), expectedNames(log), "exactly the events the pages produced");
    assert.deepEqual(await duplicates(rows.map((r) => r.event_id)), [], "no event id stored twice");
    // Ids the tracker returned (calls made after it loaded) are among the stored ones.
    const known = log.tracked.map((t) => t.eventId).filter(Boolean);
    const stored = new Set(rows.map((r) => r.event_id));
    assert.ok(known.length >= 3, `the tracker returned event ids (${known.length})`);
    for (const id of known) assert.ok(stored.has(id), `event ${id} is stored`);
    // Every request body the browser was seen to send carried only these events.
    for (const id of sentEventIds(log)) assert.ok(stored.has(id), `sent event ${id} is stored`);

    const loginAt = rows.find((r) => r.name === "logged_in").occurred_ms;
    for (const r of rows) {
      assert.equal(r.source, "online_store");
      assert.ok(r.session_id, `${r.name} has a session id`);
      assert.equal(r.session_id, first.sessionId, "one session for the whole visit");
      assert.equal(r.customer_id, r.occurred_ms >= loginAt ? "1042" : "", `${r.name} customer id`);
      assert.ok(r.received_ms >= r.occurred_ms - 2000 && r.received_ms - r.occurred_ms < 60_000, `${r.name} received_at is set`);
    }
    // Times: the tracker's occurred_at is the browser's clock at the call; event_time is close to it.
    for (const t of log.tracked) {
      const r = rows.filter((x) => x.name === t.name)
        .sort((x, y) => Math.abs(x.occurred_ms - t.at) - Math.abs(y.occurred_ms - t.at))[0];
      assert.ok(r, `a stored ${t.name}`);
      // Stamped inside the call, however loaded the machine: between the page's two readings.
      assert.ok(r.occurred_ms >= t.at && r.occurred_ms <= t.after,
        `${t.name} occurred_at ${r.occurred_ms} not within the call [${t.at}, ${t.after}]`);
      assert.ok(Math.abs(r.event_ms - t.at) <= 5000, `${t.name} event_time ${r.event_ms} vs browser ${t.at}`);
    }

    const viewed = rows.filter((r) => r.name === "product_viewed");
    assert.equal(viewed.length, 2);
    for (const v of viewed) {
      assert.equal(v.context_strings.category, "Jacket");
      assert.equal(v.context_strings.product_id, "JKT-001");
      assert.equal(v.context_numbers.price, 189.9);
      assert.match(v.context_strings.page_url ?? "", /product\.html\?id=JKT-001/, "automatic page context");
    }
    const added = rows.find((r) => r.name === "added_to_cart");
    assert.equal(added.context_numbers.quantity, 2);
    const purchase = rows.find((r) => r.name === "purchase");
    assert.equal(purchase.customer_id, "1042");
    assert.equal(purchase.context_strings.order_id, orderId);
    assert.equal(purchase.context_numbers.total, 379.8);
    assert.equal(purchase.context_numbers.items, 2);
    assert.deepEqual(log.console, [], "no errors in the pages");
  });

  test("events tracked while the collector is down arrive once it is back, none twice", async () => {
    const { context, log } = await shopContext(browser);
    let page = await context.newPage();
    await page.goto(SHOP_URL);
    const { anonymousId } = await trackerReady(page, log);
    await storedFor(anonymousId, log); // the first page view is in: the path works

    await stopCollector();
    const downFrom = Date.now();
    let downTo;
    try {
      await page.click('a[data-product="JKT-014"]');
      await page.waitForURL(/JKT-014/);
      await trackerReady(page, log);
      await page.click("#add-to-cart");
      await page.waitForSelector("#added a");
      await page.reload();
      await trackerReady(page, log);
      await page.click("#cart-link");
      await page.waitForURL(/cart\.html/);
      await trackerReady(page, log);
      await page.reload();
      await trackerReady(page, log);
      await page.close(); // the unload beacon cannot be delivered either
      assert.equal(await collectorReady(), false, "the collector was down all along");
      downTo = Date.now();
    } finally {
      await startCollector();
    }

    // Reopen the shop: the tracker finds the unsent events in localStorage and delivers them.
    page = await context.newPage();
    await page.goto(SHOP_URL);
    await trackerReady(page, log);
    const rows = await storedFor(anonymousId, log, 40_000);
    await context.close();
    const tried = log.requests.filter((r) => r.method === "POST" && r.at >= downFrom && r.at <= downTo);
    assert.ok(tried.length >= 1, "the pages tried to send while the collector was down");
    assert.deepEqual(rows.map((r) => r.name).sort(), expectedNames(log), "every event, and only those");
    assert.deepEqual(await duplicates(rows.map((r) => r.event_id)), [], "no event id stored twice");
    for (const id of log.tracked.map((t) => t.eventId).filter(Boolean)) {
      assert.ok(rows.some((r) => r.event_id === id), `event ${id} is stored`);
    }
    const failed = log.console.filter((m) => !/ERR_CONNECTION_REFUSED|Failed to load resource|Failed to fetch/.test(m));
    assert.deepEqual(failed, [], "no page errors besides the refused connections");
  });
});
