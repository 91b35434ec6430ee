// First-party serving in Chromium: a site on its own origin proxies one path (/x7k/, as the
// README's nginx configuration does) to the collector, loads the tracker from there and sends
// its events there. Nothing on the page names the collector's own host.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { COLLECTOR_URL, PARTNER_ID, expectStoredOnce, launchBrowser } from "./lib/harness.mjs";

const PREFIX = "/x7k";
const collector = new URL(COLLECTOR_URL);

/** The site: its page at `/`, and `/x7k/…` passed to the collector unchanged (a reverse proxy). */
function site() {
  const proxied = [];
  const server = http.createServer((req, res) => {
    if (req.url === "/" || req.url === "/index.html") {
      const page = `<!doctype html><html><head><meta charset="utf-8"><title>first party</title>
<script>window.eventline=window.eventline||function(){(eventline.q=eventline.q||[]).push([Date.now(),arguments])};</script>
<script>
  eventline("init", { collectorUrl: location.origin + "${PREFIX}", partnerId: "${PARTNER_ID}", source: "online_store" });
  eventline("track", "first_party_loaded", { via: "proxy" });
</script>
<script type="module" src="${PREFIX}/tracker/latest/eventline.js"></script>
</head><body>first-party</body></html>`;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(page);
      return;
    }
    if (!req.url.startsWith(`${PREFIX}/`)) {
      res.writeHead(404);
      res.end();
      return;
    }
    proxied.push(`${req.method} ${req.url}`);
    const upstream = http.request(
      { host: collector.hostname, port: collector.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  return { server, proxied };
}

let browser;
let theSite;
let siteUrl;
before(async () => {
  browser = await launchBrowser();
  theSite = site();
  await new Promise((resolve) => theSite.server.listen(0, "127.0.0.1", resolve));
  // `localhost`: the e2e partner's Online Store admits that domain.
  siteUrl = `http://localhost:${theSite.server.address().port}/`;
});
after(async () => {
  await browser?.close();
  theSite?.server.close();
});

describe("first-party serving", { timeout: 90_000 }, () => {
  test("a page loads the tracker through its own origin's path and its events arrive through it", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const foreign = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(siteUrl)) foreign.push(r.url());
    });
    await page.goto(siteUrl);
    const eventId = await page.waitForFunction(() => window.eventline && window.eventline.tracker
      && window.eventline.tracker.flush && true, null, { timeout: 30_000 })
      .then(() => page.evaluate(async () => {
        const id = window.eventline.tracker.track("first_party_clicked", { button: "buy" });
        await window.eventline.tracker.flush();
        return id;
      }));
    // A refused call is reported with the collector's words, which eventline.js imports on
    // first need from beside itself: through the proxy too.
    const reported = page.waitForEvent("console", {
      predicate: (m) => m.type() === "error" && m.text().includes("context_key_hyphen"),
      timeout: 15_000,
    });
    await page.evaluate(() => window.eventline("track", "refused", { "user-name": "x" }));
    await reported;
    const rows = await expectStoredOnce([eventId]);
    assert.equal(rows[0].source, "online_store");
    assert.deepEqual(foreign, [], "the page reached nothing but its own origin");
    const paths = theSite.proxied.join("\n");
    assert.match(paths, /GET \/x7k\/tracker\/latest\/eventline\.js/);
    assert.match(paths, /GET \/x7k\/tracker\/[0-9a-f]{16}\/eventline\.js/);
    assert.match(paths, /GET \/x7k\/tracker\/[0-9a-f]{16}\/wasm\/eventline_tracker_bg\.wasm/);
    assert.match(paths, /POST \/x7k\/v1\/events/);
    assert.match(paths, /GET \/x7k\/tracker\/[0-9a-f]{16}\/messages\.js/);
    await context.close();
  });
});
