// The installed tarball in a real browser: pages built with Vite, esbuild and webpack 5, one
// served by the Vite dev server (`vite dev`, as middleware of the test server), and the
// embeddable eventline.js behind the loader snippet, served by a tiny server on 127.0.0.1:18195
// that also answers POST /v1/events like the collector (packaging only: the real collector path is
// the e2e suite's job). Needs CONSUMER_DIR: the folder where only the tarball was installed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createServer } from 'node:http';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild } from 'esbuild';
import { build as vite, createServer as viteServer } from 'vite';
import webpack from 'webpack';
import { chromium } from 'playwright-core';
import wire from './wire.cjs';

const here = dirname(fileURLToPath(import.meta.url));
const consumer = process.env.CONSUMER_DIR;
const PORT = Number(process.env.NPM_PACKAGE_TEST_PORT || 18195);
const ORIGIN = `http://127.0.0.1:${PORT}`;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const pages = consumer && join(consumer, 'pages');
const pkg = consumer && join(consumer, 'node_modules', '@eventline', 'tracker');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
};

/** Everything the server saw: POST bodies and GET paths. */
const received = { posts: [], gets: [] };
let server;
let browser;
/** The Vite dev server while its test runs: it answers everything under /vite-dev/. */
let viteDev;

async function serveFile(res, root, rel) {
  const file = normalize(join(root, rel));
  if (!file.startsWith(root + sep)) return false;
  const info = await stat(file).catch(() => null);
  if (!info || !info.isFile()) return false;
  res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
  res.end(await readFile(file));
  return true;
}

function handle(req, res) {
  const url = new URL(req.url, ORIGIN);
  if (req.method === 'POST' && url.pathname === '/v1/events') {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      received.posts.push({ contentType: req.headers['content-type'], referer: req.headers.referer, body: text });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(wire.collectorAnswer(text));
    });
    return;
  }
  received.gets.push(url.pathname);
  if (url.pathname === '/favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  if (viteDev && url.pathname.startsWith('/vite-dev/')) {
    viteDev.middlewares(req, res, () => res.writeHead(404).end());
    return;
  }
  const routes = [
    ['/vite/', join(pages, 'vite', 'dist')],
    ['/esbuild/', join(pages, 'esbuild', 'dist')],
    ['/webpack/', join(pages, 'webpack', 'dist')],
    ['/embed/', join(pages, 'embed')],
    ['/pkg/', pkg],
  ];
  (async () => {
    for (const [prefix, root] of routes) {
      if (!url.pathname.startsWith(prefix)) continue;
      let rel = url.pathname.slice(prefix.length);
      if (rel === '' || rel.endsWith('/')) rel += 'index.html';
      if (await serveFile(res, root, rel)) return;
    }
    res.writeHead(404).end();
  })().catch((error) => {
    res.writeHead(500).end(String(error));
  });
}

/** Events received so far from pages whose referer contains `page`. */
function eventsFrom(page) {
  return received.posts
    .filter((p) => (p.referer || '').includes(`/${page}/`))
    .flatMap((p) => wire.checkBody(p.body, JSON.parse(p.body).partner_id).events);
}

async function waitFor(what, check, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function listFiles(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath ?? entry.path, entry.name));
  }
  return out;
}

/** Opens `path`, waits for window.result; returns [result, console messages]. */
async function openPage(path) {
  const page = await browser.newPage();
  const messages = [];
  page.on('console', (m) => messages.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => messages.push({ type: 'pageerror', text: String(e) }));
  await page.goto(`${ORIGIN}${path}`);
  return { page, messages };
}

before(async () => {
  assert.ok(consumer, 'CONSUMER_DIR must name the folder where the tarball was installed');
  await cp(join(here, 'pages'), pages, { recursive: true });
  server = createServer(handle);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORT, '127.0.0.1', resolve);
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

/** The shop page (pages/app.js) delivered its three events, checked field by field. */
async function checkShopPage(name) {
  const { page, messages } = await openPage(`/${name}/`);
  try {
    const result = await waitFor('window.result', () => page.evaluate(() => window.result));
    assert.equal(result.error, undefined, `page failed: ${result.error} (${result.code}); console: ${JSON.stringify(messages)}`);
    assert.deepEqual(result.hyphen, { code: 'context_key_hyphen', field: 'context.user-name' });
    const events = await waitFor('3 events', () => (eventsFrom(name).length >= 3 ? eventsFrom(name) : null));
    assert.deepEqual(events.map((e) => e.event_id), result.ids);
    const who = { source: 'online_store', anonymousId: result.anonymousId, sessionId: result.sessionId };
    const url = `${ORIGIN}/${name}/`;
    wire.checkEvent(events[0], { ...who, name: 'page_view', customerId: undefined, context: { page_url: url, page_title: name } });
    wire.checkEvent(events[1], {
      ...who, name: 'product_viewed', customerId: undefined, context: { category: 'Jacket', price: 99.5, in_stock: true },
    });
    wire.checkEvent(events[2], { ...who, name: 'added_to_cart', customerId: '42', context: { sku: 'J-1' } });
    assert.equal(events[1].context.page_url, url, 'automatic page_url on every event');
    const wasmGets = received.gets.filter((p) => p.startsWith(`/${name}/`) && p.endsWith('.wasm'));
    assert.equal(wasmGets.length, 1, `the page fetched its .wasm once: ${JSON.stringify(received.gets)}`);
    assert.deepEqual(messages.filter((m) => m.type === 'error' || m.type === 'pageerror'), []);
  } finally {
    await page.close();
  }
}

test('a Vite 7 build of a page that imports the package emits the .wasm and delivers events', async () => {
  const root = join(pages, 'vite');
  await vite({ root, logLevel: 'warn', base: '/vite/', build: { outDir: 'dist', emptyOutDir: true } });
  const files = await listFiles(join(root, 'dist'));
  const wasm = files.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `one .wasm in the Vite output: ${files.join(', ')}`);
  assert.deepEqual(await readFile(wasm[0]), await readFile(join(pkg, 'dist', 'wasm', 'eventline_tracker_bg.wasm')));
  await checkShopPage('vite');
});

test('an esbuild bundle with the .wasm as a file import delivers events', async () => {
  const root = join(pages, 'esbuild');
  await esbuild({
    absWorkingDir: root,
    entryPoints: ['main.js', 'index.html'],
    outdir: 'dist',
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    loader: { '.wasm': 'file', '.html': 'copy' },
    logLevel: 'warning',
  });
  const files = await listFiles(join(root, 'dist'));
  assert.equal(files.filter((f) => f.endsWith('.wasm')).length, 1, `one .wasm in the esbuild output: ${files.join(', ')}`);
  await checkShopPage('esbuild');
});

test('a webpack 5 build of a page that imports the package emits the .wasm and delivers events', async () => {
  const root = join(pages, 'webpack');
  const stats = await new Promise((resolve, reject) =>
    webpack(
      {
        mode: 'production',
        context: root,
        entry: './main.js',
        target: 'web',
        output: { path: join(root, 'dist'), filename: 'main.js', publicPath: 'auto', clean: true },
        infrastructureLogging: { level: 'warn' },
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    ),
  );
  assert.ok(!stats.hasErrors(), stats.toString('errors-only'));
  await cp(join(root, 'index.html'), join(root, 'dist', 'index.html'));
  const files = await listFiles(join(root, 'dist'));
  const wasm = files.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `one .wasm in the webpack output: ${files.join(', ')}`);
  assert.deepEqual(await readFile(wasm[0]), await readFile(join(pkg, 'dist', 'wasm', 'eventline_tracker_bg.wasm')));
  await checkShopPage('webpack');
});

test('the Vite dev server (vite dev) serves a page that imports the package, .wasm included, and events arrive', async () => {
  // pages/vite-dev/vite.config.js holds the one setting the README asks for (optimizeDeps.exclude).
  viteDev = await viteServer({
    root: join(pages, 'vite-dev'),
    base: '/vite-dev/',
    appType: 'mpa',
    logLevel: 'warn',
    server: { middlewareMode: true, hmr: false },
  });
  try {
    await checkShopPage('vite-dev');
  } finally {
    await viteDev.close();
    viteDev = undefined;
  }
});

test('eventline.js replays the loader snippet queue in order, then dispatches live calls', async () => {
  const snippet = await readFile(join(pkg, 'dist', 'snippet.html'), 'utf8');
  assert.ok(Buffer.byteLength((await readFile(join(pkg, 'dist', 'snippet.js'), 'utf8')).trim()) < 300, 'snippet < 300 bytes');
  const html = await readFile(join(pages, 'embed', 'index.html'), 'utf8');
  await writeFile(join(pages, 'embed', 'index.html'), html.replace('<!--SNIPPET-->', snippet.trim()));

  const { page, messages } = await openPage('/embed/');
  try {
    await waitFor('window.eventline.tracker', () => page.evaluate(() => Boolean(window.eventline && window.eventline.tracker)));
    const state = await page.evaluate(() => ({
      queuedAt: window.queuedAt,
      anonymousId: window.eventline.tracker.anonymousId,
      sessionId: window.eventline.tracker.sessionId,
      stubGone: !('q' in window.eventline),
      liveId: window.eventline('track', 'live_call', { n: 1 }),
      liveHyphen: window.eventline('track', 'bad_live', { 'a-b': 1 }) === undefined,
    }));
    assert.equal(state.queuedAt.length, 7);
    assert.ok(state.stubGone, 'the stub was replaced by the live dispatcher');
    assert.match(state.liveId, wire.UUID_V7);
    assert.ok(state.liveHyphen, 'a failing live call returns undefined instead of throwing');
    await page.evaluate(() => window.eventline('flush'));

    const events = await waitFor('4 events', () => (eventsFrom('embed').length >= 4 ? eventsFrom('embed') : null));
    assert.deepEqual(events.map((e) => e.name), ['early_event', 'page_view', 'product_viewed', 'live_call']);
    const who = { source: 'online_store', anonymousId: state.anonymousId, sessionId: state.sessionId };
    // Queued calls keep the time they were made (trackAt, pageAt), not the time of the replay.
    wire.checkEvent(events[0], { ...who, name: 'early_event', customerId: undefined, context: { step: 1 }, occurredAt: state.queuedAt[0] });
    wire.checkEvent(events[1], { ...who, name: 'page_view', customerId: undefined, context: { page_url: `${ORIGIN}/embed/` }, occurredAt: state.queuedAt[2] });
    wire.checkEvent(events[2], {
      ...who, name: 'product_viewed', customerId: '42', context: { category: 'Jacket', price: 99.5 }, occurredAt: state.queuedAt[5],
    });
    wire.checkEvent(events[3], { ...who, name: 'live_call', customerId: '42', context: { n: 1 } });
    assert.equal(events[3].event_id, state.liveId);

    // Reported once the words for codes are loaded (below): a signal to wait for, then exactly two.
    const consoleErrors = () => messages.filter((m) => m.type === 'error').map((m) => m.text);
    await waitFor('two console errors', () => consoleErrors().length >= 2);
    const errors = consoleErrors();
    assert.equal(errors.length, 2, `two console errors: ${JSON.stringify(messages)}`);
    assert.ok(errors.every((t) => t.includes('context_key_hyphen')), JSON.stringify(errors));
    // eventline.js carries no words for codes: the first error fetched them (dist/messages.js)
    // and the reports waited for them.
    assert.ok(errors.every((t) => t.includes('eventline: context key `')), JSON.stringify(errors));
    assert.equal(received.gets.filter((p) => p === '/pkg/dist/messages.js').length, 1, JSON.stringify(received.gets));
    assert.deepEqual(messages.filter((m) => m.type === 'pageerror'), []);
  } finally {
    await page.close();
  }
});
