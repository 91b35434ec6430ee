// Size report: what a page downloads for the Eventline tracker, against the budget and against
// other trackers measured the same way. Run through scripts/size-report.sh.
//
//   node npm/scripts/size-report.mjs [--no-peers]
//
// Bytes are raw / gzip (zlib level 9, as `gzip -9`) / brotli (quality 11, window 24), each file
// compressed on its own as a server would send it.
// Exits 1 when our gzip total is over the budget (`make size` and `make test` alike), whatever
// toolchain built the .wasm (the report names it; scripts/build-tracker.sh records it).
// The JavaScript core (dist/core.wasm.js, for runtimes without WebAssembly) and the embed's
// words for error codes (dist/messages.js, fetched on a first error) are reported on their own:
// a browser page does not load them.
// EVENTLINE_TWIGGY: a twiggy binary; with it the report lists the .wasm's largest functions
// (measured on the names-kept copy scripts/build-tracker.sh leaves in $CARGO_TARGET_DIR).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { transform } from 'esbuild';
import { wasmNames } from './glue.mjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/**
 * Budget: gzip bytes of everything an embedding page loads (wasm + eventline.js + snippet), well
 * below the smallest peer measured (@snowplow/browser-tracker 4.10.1: 17,731 bytes in November
 * 2026). `make size` and `make test` fail above it, whatever toolchain built the .wasm.
 */
const GZIP_BUDGET_BYTES = 16_000;

const npmDir = dirname(dirname(fileURLToPath(import.meta.url)));
const root = dirname(npmDir);
const dist = join(npmDir, 'dist');
const peersDir = join(root, '.cache', 'size-peers');
const withPeers = !process.argv.includes('--no-peers');

/** The other trackers: npm name, the one-line entry, and notes on what the number leaves out. */
const PEERS = [
  {
    name: '@snowplow/browser-tracker',
    entry: "export { newTracker, trackPageView } from '@snowplow/browser-tracker';",
  },
  {
    name: '@segment/analytics-next',
    entry: "export { AnalyticsBrowser } from '@segment/analytics-next';",
    note:
      'Segment: initial = the entry chunk and its static imports; the lazy chunks are fetched on demand ' +
      '(some at start-up, depending on settings), and at run time it also loads the source settings and ' +
      "destination plugins from Segment's CDN, which no bundle shows.",
  },
  {
    name: 'posthog-js',
    entry: "export { default } from 'posthog-js';",
    note:
      'posthog-js: session recording, surveys, toolbar etc. are downloaded from PostHog at run time ' +
      'when enabled, and are not counted.',
  },
];

function measure(bytes) {
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }).length,
  };
}

const add = (a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip, brotli: a.brotli + b.brotli });
const ZERO = { raw: 0, gzip: 0, brotli: 0 };
const n = (v) => v.toLocaleString('en-US');

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells.map((c, i) => (i === 0 || i === 1 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * Bundles `entry` like the peers are bundled: esbuild --bundle --minify --format=esm, with code
 * splitting so lazily imported chunks show up as separate files. Returns the initial download
 * (entry + chunks it imports statically) and the lazy rest.
 */
async function bundle(label, entry) {
  const outdir = join(peersDir, 'out', label.replace(/[^a-z0-9]+/gi, '_'));
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: peersDir,
    stdin: { contents: entry, resolveDir: peersDir },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    splitting: true,
    outdir,
    metafile: true,
    write: true,
    legalComments: 'none',
    logLevel: 'error',
  });
  const outputs = result.metafile.outputs;
  // With splitting, every dynamically imported module is an entry point too; ours is <stdin>.
  const entryOut = Object.keys(outputs).find((k) => outputs[k].entryPoint === '<stdin>');
  const initial = new Set();
  const visit = (file) => {
    if (initial.has(file)) return;
    initial.add(file);
    for (const imp of outputs[file].imports) if (imp.kind === 'import-statement' && outputs[imp.path]) visit(imp.path);
  };
  visit(entryOut);
  // The initial files are measured as one download (as a bundle without the lazy parts would
  // be); the lazy chunks one by one, as each is fetched on its own.
  const initialBytes = [];
  let lazy = ZERO;
  let lazyCount = 0;
  for (const file of Object.keys(outputs)) {
    if (!file.endsWith('.js')) continue;
    const bytes = await readFile(join(peersDir, file));
    if (initial.has(file)) initialBytes.push(bytes);
    else {
      lazy = add(lazy, measure(bytes));
      lazyCount += 1;
    }
  }
  const first = measure(Buffer.concat(initialBytes));
  return { initial: first, lazy, lazyCount };
}

async function ensurePeers() {
  const installed = PEERS.every((p) => existsSync(join(peersDir, 'node_modules', p.name, 'package.json')));
  if (installed) return true;
  await mkdir(peersDir, { recursive: true });
  await writeFile(
    join(peersDir, 'package.json'),
    `${JSON.stringify({ name: 'size-peers', private: true, description: 'scratch, not committed' }, null, 2)}\n`,
  );
  console.log(`installing ${PEERS.map((p) => `${p.name}@latest`).join(' ')} into ${relative(root, peersDir)}/ ...`);
  try {
    execFileSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--silent', '--ignore-scripts', ...PEERS.map((p) => `${p.name}@latest`)],
      { cwd: peersDir, stdio: 'inherit' },
    );
    return true;
  } catch (error) {
    console.log(`could not install the peers (${error.message}); skipping the comparison`);
    return false;
  }
}

async function main() {
  const version = JSON.parse(await readFile(join(npmDir, 'package.json'), 'utf8')).version;
  const file = async (rel) => measure(await readFile(join(dist, rel)));
  const wasm = await file('wasm/eventline_tracker_bg.wasm');
  const index = await file('index.js');
  const embed = await file('eventline.js');
  const snippet = await file('snippet.js');
  const words = await file('messages.js');
  const jsCore = await file('core.wasm.js');
  const native = await file('native.js');
  const pageTotal = add(add(wasm, embed), snippet);

  console.log(`@eventline/tracker ${version}: what a page downloads (bytes; gzip -9, brotli q11)\n`);
  const row = (label, s) => [label, '', n(s.raw), n(s.gzip), n(s.brotli)];
  console.log(
    table(
      ['file', '', 'raw', 'gzip', 'brotli'],
      [
        row('dist/wasm/eventline_tracker_bg.wasm (core)', wasm),
        row('dist/index.js (bundler entry: bindings + wrapper)', index),
        row('dist/eventline.js (embed: bindings + wrapper + queue replay)', embed),
        row('dist/snippet.js (inline loader)', snippet),
        row('total, bundler use (wasm + index.js)', add(wasm, index)),
        row('total, embedded (wasm + eventline.js + snippet)', pageTotal),
      ],
    ),
  );
  const over = pageTotal.gzip > GZIP_BUDGET_BYTES;
  const toolchain = await readToolchain();
  console.log(
    `\nbudget: gzip total ${n(pageTotal.gzip)} of ${n(GZIP_BUDGET_BYTES)} bytes ` +
      `(${((100 * pageTotal.gzip) / GZIP_BUDGET_BYTES).toFixed(0)} %): ` +
      `${over ? `OVER BUDGET by ${n(pageTotal.gzip - GZIP_BUDGET_BYTES)}` : 'ok'}; .wasm built with ${toolchain}`,
  );

  console.log('\nNot in the page total (fetched only on a first error, or not by browsers at all):\n');
  console.log(
    table(
      ['file', '', 'raw', 'gzip', 'brotli'],
      [
        row('dist/messages.js (words for error codes: eventline.js fetches it on a first error)', words),
        row('dist/core.wasm.js (the core as JavaScript, wasm2js: runtimes without WebAssembly)', jsCore),
        row('dist/native.js (React Native entry: bindings + wrapper + words)', native),
        row('total, React Native (native.js + core.wasm.js)', add(native, jsCore)),
      ],
    ),
  );

  // Where the bytes go: the JS file split into the bindings and our wrapper, then the
  // .wasm's largest functions.
  const glueMin = (
    await transform(await readFile(join(npmDir, 'src', 'core.js'), 'utf8'), {
      minify: true,
      format: 'esm',
      define: await wasmNames(join(dist, 'wasm')),
    })
  ).code;
  const glue = measure(Buffer.from(glueMin));
  console.log('\nWhere the bytes go (gzip of a part alone; parts compress better together, so they add up to a little more):');
  console.log(
    table(
      ['part', '', 'raw', 'gzip', 'brotli'],
      [
        row('.wasm (core: rules, queue, batching, backoff, sessions, tabs)', wasm),
        row('eventline.js: bindings to the .wasm (src/core.js, minified)', glue),
        row('eventline.js: the rest (wrapper: src/tracker.js, rules.js, web.js, embed.js), by difference', {
          raw: embed.raw - glue.raw,
          gzip: embed.gzip - glue.gzip,
          brotli: embed.brotli - glue.brotli,
        }),
        row('snippet', snippet),
      ],
    ),
  );
  await twiggyTop();

  if (withPeers && (await ensurePeers())) {
    await mkdir(join(peersDir, 'out'), { recursive: true });
    const rows = [];
    const notes = [];
    const ours = await bundle('eventline', `export { createTracker } from ${JSON.stringify(join(dist, 'index.js'))};`);
    const oursTotal = add(ours.initial, wasm);
    rows.push(['@eventline/tracker', version, n(oursTotal.raw), n(oursTotal.gzip), n(oursTotal.brotli), '-']);
    for (const peer of PEERS) {
      const pkg = JSON.parse(await readFile(join(peersDir, 'node_modules', peer.name, 'package.json'), 'utf8'));
      const size = await bundle(peer.name, peer.entry);
      const lazy = size.lazyCount ? `${size.lazyCount} chunks, ${n(size.lazy.gzip)} gz` : '-';
      rows.push([peer.name, pkg.version, n(size.initial.raw), n(size.initial.gzip), n(size.initial.brotli), lazy]);
      if (peer.note) notes.push(peer.note);
    }
    console.log('\nCompared: esbuild --bundle --minify --format=esm (code splitting on) of a one-line entry');
    console.log('importing the main API; "initial" = what a page loads before any lazy import; ours adds the .wasm.\n');
    console.log(table(['package', 'version', 'initial raw', 'gzip', 'brotli', 'lazy (not counted)'], rows));
    console.log('');
    for (const note of notes) console.log(`- ${note}`);
    console.log(`- entries: ${PEERS.map((p) => p.entry).join('  ')}`);
  }

  if (over) {
    console.error(`\nsize budget exceeded: ${n(pageTotal.gzip)} > ${n(GZIP_BUDGET_BYTES)} gzip bytes`);
    process.exit(1);
  }
}

const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');

/** Which toolchain built the .wasm now in dist/ (the dated nightly, or "stable (fallback)"). */
async function readToolchain() {
  try {
    return (await readFile(join(targetDir, 'tracker-toolchain.txt'), 'utf8')).trim() || 'unknown';
  } catch {
    return 'an unrecorded toolchain';
  }
}

/** `twiggy top` of the names-kept copy of the shipped .wasm: the largest functions (raw bytes). */
async function twiggyTop() {
  const twiggy = process.env.EVENTLINE_TWIGGY;
  const named = join(targetDir, 'tracker-named.wasm');
  if (!twiggy || !existsSync(named)) {
    console.log('\n(no per-function breakdown: needs twiggy (make size installs it) and a build by scripts/build-tracker.sh)');
    return;
  }
  const out = execFileSync(twiggy, ['top', '-n', '26', '-f', 'csv', named], { encoding: 'utf8' });
  const rows = [];
  for (const line of out.trim().split('\n').slice(1)) {
    // Name,ShallowSize,ShallowSizePercent,...: the name may be quoted (with "" inside) and hold commas.
    const m = /^("(?:[^"]|"")*"|[^,]*),(\d+),/.exec(line);
    if (!m) continue;
    const name = m[1].replace(/^"|"$/g, '').replace(/""/g, '"').replace(/\[[0-9a-f]{16}\]/g, '');
    if (name === '"function names" subsection') continue;
    rows.push([name.length > 90 ? `${name.slice(0, 87)}...` : name, '', n(Number(m[2]))]);
  }
  console.log(`\nLargest parts of the .wasm (twiggy top, raw bytes before compression; names section left out):`);
  console.log(table(['function or section', '', 'raw'], rows));
}

await main();
