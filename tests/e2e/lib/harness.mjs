// Shared fixtures of the end-to-end tests: the environment run.sh set up, ClickHouse queries with
// server-side parameters, polling with a deadline, the collector process, and the browser.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { chromium } from "playwright-core";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the e2e tests through tests/e2e/run.sh`);
  return value;
}

export const ROOT = env("E2E_ROOT");
export const CLICKHOUSE_URL = env("E2E_CLICKHOUSE_URL");
export const DATABASE = env("E2E_DATABASE");
export const COLLECTOR_URL = env("E2E_COLLECTOR_URL");
export const EXAMPLES_URL = env("E2E_EXAMPLES_URL");
export const SHOP_URL = `${EXAMPLES_URL}/shop/`;
export const PARTNER_ID = env("E2E_PARTNER_ID");

/**
 * Runs one query over ClickHouse's HTTP interface and returns its rows as objects.
 * Values go as server-side parameters (`{name:Type}` in the SQL, `params.name` here), never into
 * the SQL text. `partner` is always bound to this run's partner.
 */
export async function query(sql, params = {}) {
  const url = new URL(CLICKHOUSE_URL);
  url.searchParams.set("database", DATABASE);
  url.searchParams.set("param_partner", PARTNER_ID);
  url.searchParams.set("output_format_json_quote_64bit_integers", "0"); // counts and ms as numbers
  for (const [k, v] of Object.entries(params)) {
    url.searchParams.set(`param_${k}`, Array.isArray(v) ? `[${v.map((x) => `'${x}'`).join(",")}]` : String(v));
  }
  const res = await fetch(url, { method: "POST", body: `${sql} FORMAT JSON` });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${res.status}: ${text.slice(0, 500)}\nSQL: ${sql}`);
  return JSON.parse(text).data;
}

/**
 * Calls `probe` until it returns a truthy value and returns that value, or throws after
 * `timeoutMs` with `message` and the last value seen, so a failure says what was missing.
 */
export async function eventually(probe, { timeoutMs = 15_000, intervalMs = 200, message = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last && !(Array.isArray(last) && last.length === 0)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}; last: ${JSON.stringify(last)?.slice(0, 800)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Stored rows of `events` for these event ids, with the columns the tests check. */
export async function eventsByIds(ids) {
  if (!ids.length) return [];
  return query(
    `SELECT event_id, name, source, customer_id, anonymous_id, session_id, kind,
            toUnixTimestamp64Milli(occurred_at) AS occurred_ms, toUnixTimestamp64Milli(event_time) AS event_ms,
            toUnixTimestamp64Milli(received_at) AS received_ms, ingest_path, context_strings,
            context_numbers, context_booleans
     FROM events WHERE partner_id = {partner:UUID} AND event_id IN {ids:Array(UUID)}`,
    { ids },
  );
}

/** Stored rows of `events` for one anonymous id (a browser profile or a device). */
export async function eventsOfAnonymous(anonymousId) {
  return query(
    `SELECT event_id, name, source, customer_id, anonymous_id, session_id,
            toUnixTimestamp64Milli(occurred_at) AS occurred_ms, toUnixTimestamp64Milli(event_time) AS event_ms,
            toUnixTimestamp64Milli(received_at) AS received_ms, context_strings, context_numbers, context_booleans
     FROM events WHERE partner_id = {partner:UUID} AND anonymous_id = {anon:String}
     ORDER BY occurred_at, event_id`,
    { anon: anonymousId },
  );
}

/** event_id -> number of rows, for every event id stored more than once among these. */
export async function duplicates(ids) {
  if (!ids.length) return [];
  return query(
    `SELECT event_id, count() AS n FROM events
     WHERE partner_id = {partner:UUID} AND event_id IN {ids:Array(UUID)}
     GROUP BY event_id HAVING n > 1`,
    { ids },
  );
}

/** Checks that every id is stored exactly once; resolves to the rows (one per id). */
export async function expectStoredOnce(ids, { timeoutMs = 15_000 } = {}) {
  const bad = ids.filter((id) => typeof id !== "string" || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id));
  if (bad.length) throw new Error(`the tracker returned event ids that are not UUIDs: ${JSON.stringify(bad)}`);
  const unique = [...new Set(ids)];
  if (unique.length !== ids.length) throw new Error(`the tracker returned the same event id twice: ${JSON.stringify(ids)}`);
  const rows = await eventually(async () => {
    const got = await eventsByIds(unique);
    return got.length >= unique.length ? got : null;
  }, { timeoutMs, message: `${unique.length} events in ClickHouse (ids ${unique.join(", ")})` }).catch(async (e) => {
    const got = await eventsByIds(unique);
    const have = new Set(got.map((r) => r.event_id));
    e.message += `\nmissing: ${unique.filter((id) => !have.has(id)).join(", ")}`;
    throw e;
  });
  const dup = await duplicates(unique);
  if (dup.length) throw new Error(`stored more than once: ${JSON.stringify(dup)}`);
  if (rows.length !== unique.length) throw new Error(`expected ${unique.length} rows, got ${rows.length}`);
  return rows;
}

// ---- the collector process (the outage test stops and restarts it) ----

const pidFile = env("E2E_COLLECTOR_PIDFILE");

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function collectorReady() {
  try {
    return (await fetch(`${COLLECTOR_URL}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/** Stops the collector (SIGTERM, then SIGKILL after 10 s) and waits until its port is closed. */
export async function stopCollector() {
  const pid = Number(fs.readFileSync(pidFile, "utf8"));
  process.kill(pid, "SIGTERM");
  await eventually(() => !alive(pid), { timeoutMs: 10_000, message: `collector pid ${pid} to exit` }).catch(() => {
    process.kill(pid, "SIGKILL");
  });
  await eventually(async () => !(await collectorReady()), { timeoutMs: 5000, message: "the collector port to close" });
}

/** Starts the collector again with run.sh's environment and waits until it is ready. */
export async function startCollector() {
  const log = fs.openSync(env("E2E_COLLECTOR_LOG"), "a");
  const child = spawn(env("E2E_COLLECTOR_BIN"), ["serve"], { stdio: ["ignore", log, log], detached: true, env: process.env });
  child.unref();
  fs.closeSync(log);
  fs.writeFileSync(pidFile, String(child.pid));
  await eventually(collectorReady, { timeoutMs: 30_000, message: "the restarted collector to be ready" });
}

// ---- the browser ----

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Headless Debian Chromium with a fresh profile (playwright makes one per launch). */
export function launchBrowser() {
  return chromium.launch({ executablePath: process.env.E2E_CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

/**
 * A fresh browser context (empty localStorage) whose pages report to `log`:
 *   log.tracked  every `shop:tracked` DOM event of the demo shop (name, context, times, id),
 *   log.loads    every document the shop loaded (URL, time), each of which sends a page_view,
 *   log.requests every request to the collector (URL, method, resource type, post body),
 *   log.console  console errors and uncaught page errors.
 */
export async function shopContext(browser) {
  const context = await browser.newContext();
  const log = { tracked: [], loads: [], requests: [], console: [] };
  await context.exposeBinding("__e2eReport", (_source, kind, detail) => {
    log[kind].push(detail);
  });
  await context.addInitScript(() => {
    if (!location.pathname.startsWith("/shop/")) return;
    window.__e2eReport("loads", { url: location.href, at: Date.now() });
    window.addEventListener("shop:tracked", (e) => window.__e2eReport("tracked", e.detail));
  });
  context.on("request", (req) => {
    if (req.url().startsWith(COLLECTOR_URL)) {
      log.requests.push({ url: req.url(), method: req.method(), type: req.resourceType(), body: req.postData(), at: Date.now() });
    }
  });
  context.on("page", (page) => watchPage(page, log));
  return { context, log };
}

export function watchPage(page, log) {
  page.on("console", (msg) => {
    if (msg.type() === "error") log.console.push(msg.text());
  });
  page.on("pageerror", (err) => log.console.push(`pageerror: ${err.message}`));
}

/** Event ids carried by the collector requests seen so far (from their JSON bodies). */
export function sentEventIds(log) {
  const ids = [];
  for (const r of log.requests) {
    if (r.method !== "POST" || !r.body) continue;
    try {
      for (const e of JSON.parse(r.body).events || []) ids.push(e.event_id);
    } catch {
      /* not a batch */
    }
  }
  return ids;
}

/**
 * Waits until the page's tracker has loaded (`eventline.tracker` exists: the loader snippet's
 * queue has been replayed) and returns its ids and the browser's clock. On a timeout the error
 * carries the page's console errors, which usually say why (a .wasm that did not load, ...).
 */
export async function trackerReady(page, log) {
  try {
    await page.waitForFunction(() => window.eventline && window.eventline.tracker, null, { timeout: 15_000 });
  } catch (e) {
    throw new Error(`the tracker did not load on ${page.url()} within 15 s; page console errors: ${
      JSON.stringify(log?.console ?? [])}`, { cause: e });
  }
  return page.evaluate(() => ({
    anonymousId: eventline.tracker.anonymousId,
    sessionId: eventline.tracker.sessionId,
    customerId: eventline.tracker.customerId ?? null,
    now: Date.now(),
  }));
}
