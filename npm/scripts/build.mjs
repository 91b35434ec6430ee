// Assembles npm/dist/ from npm/src/ and the Rust build's npm/dist/wasm/ (scripts/build-tracker.sh).
//
//   dist/index.js      browsers and bundlers: ESM, bindings (src/core.js) + wrapper, minified
//   dist/node.mjs      Node ESM            dist/node.cjs   Node CommonJS
//   dist/eventline.js  the embeddable file (<script type="module">): bindings + wrapper + queue replay
//   dist/messages.js   the words for error codes, which dist/eventline.js imports only when needed
//   dist/native.js     React Native and other runtimes without WebAssembly or node:fs: the JS core
//   dist/core.wasm.js  the core translated to JavaScript (wasm2js), for runtimes without WebAssembly
//   dist/snippet.js    the loader snippet (minified, < 300 bytes), dist/snippet.html the same in a tag
//   dist/*.d.ts        hand-written types (src/index.d.ts), .d.cts for require()
//   dist/wasm/         left as the Rust build wrote it
import { build, transform } from 'esbuild';
import { minify } from 'terser';
import { checkGlue, wasmNames } from './glue.mjs';
import { copyFile, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const src = join(root, 'src');
const dist = join(root, 'dist');
const wasmDir = join(dist, 'wasm');
const glue = join(wasmDir, 'eventline_tracker.js');
const SNIPPET_MAX_BYTES = 300;

const wasm2js = join(wasmDir, 'eventline_tracker_bg.wasm2js.js');
for (const file of [glue, join(wasmDir, 'eventline_tracker_bg.wasm'), wasm2js]) {
  if (!(await stat(file).catch(() => null))) {
    console.error(`missing ${file}: run scripts/build-tracker.sh (the Rust/WASM build) first`);
    process.exit(1);
  }
}

// Everything in dist/ except wasm/ is ours to rebuild.
for (const entry of await readdir(dist)) {
  if (entry !== 'wasm') await rm(join(dist, entry), { recursive: true, force: true });
}

// The package's bindings (src/core.js) must match the glue wasm-bindgen generated for this build.
await checkGlue(glue);

// The .wasm's short import, export and module names (scripts/build-tracker.sh), as `WASM.<name>`
// for src/core.js.
const define = await wasmNames(wasmDir);

// The wrapper's and the bindings' private members (`_core`, `_pump`, `_id`, …) get short names in
// the minified files.
const mangle = { mangleProps: /^_[a-z]/ };

// Imports of files that are dist/ files of their own, left as imports: `import('./messages.js')`
// (the words the embed fetches when an error needs them; a static import of it is bundled) and
// './core.wasm.js' (the JavaScript core, loaded only where WebAssembly is missing).
const ownFiles = {
  name: 'own-files',
  setup(b) {
    b.onResolve({ filter: /^\.\/(messages|core\.wasm)\.js$/ }, (args) =>
      args.path === './core.wasm.js' || args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined,
    );
  },
};

const common = {
  bundle: true,
  define,
  legalComments: 'none',
  target: 'es2020',
  logLevel: 'warning',
  plugins: [ownFiles],
};

// dist/core.wasm.js: wasm2js's module made a function of the imports, like instantiating the
// .wasm (`instantiate(imports)` answers the exports): its `import * as` lines (the imports as
// modules) and its own instantiation at the end give way to one export.
{
  const text = await readFile(wasm2js, 'utf8');
  const end = text.indexOf('\nvar retasmFunc = asmFunc(');
  const body = text.slice(0, end).replace(/^import \* as \w+ from '[^']*';$/gm, '');
  if (end < 0 || !body.includes('function asmFunc(imports)') || /^import /m.test(body)) {
    console.error(`${wasm2js}: not the wasm2js output this build knows (asmFunc(imports), then retasmFunc)`);
    process.exit(1);
  }
  const { code } = await transform(`${body}\nexport { asmFunc as instantiate };\n`, {
    minify: true,
    format: 'esm',
    legalComments: 'none',
    target: 'es2020',
  });
  await writeFile(join(dist, 'core.wasm.js'), code);
}

await Promise.all([
  build({
    ...common,
    entryPoints: [join(src, 'browser.js')],
    outfile: join(dist, 'index.js'),
    format: 'esm',
    platform: 'neutral',
    minify: true,
    ...mangle,
  }),
  build({
    ...common,
    entryPoints: [join(src, 'embed.js')],
    outfile: join(dist, 'eventline.js'),
    format: 'esm',
    platform: 'browser',
    minify: true,
    ...mangle,
  }),
  build({
    ...common,
    entryPoints: [join(src, 'native.js')],
    outfile: join(dist, 'native.js'),
    format: 'esm',
    platform: 'neutral',
    minify: true,
    ...mangle,
  }),
  build({
    ...common,
    entryPoints: [join(src, 'messages.js')],
    outfile: join(dist, 'messages.js'),
    format: 'esm',
    platform: 'neutral',
    minify: true,
  }),
  build({
    ...common,
    entryPoints: [join(src, 'node.js')],
    outfile: join(dist, 'node.mjs'),
    format: 'esm',
    platform: 'node',
  }),
  build({
    ...common,
    entryPoints: [join(src, 'node.js')],
    outfile: join(dist, 'node.cjs'),
    format: 'cjs',
    platform: 'node',
    // The one import.meta.url (the .wasm's location) becomes this file's own URL.
    define: { ...define, 'import.meta.url': '__eventlineFileUrl' },
    banner: { js: 'var __eventlineFileUrl = require("node:url").pathToFileURL(__filename).href;' },
  }),
]);

// A terser pass over the two files browsers load, after esbuild's: its repeated compression
// finds what one pass leaves (about 180 bytes gzip of eventline.js). Property names are already
// mangled by esbuild; terser keeps `new URL('./wasm/…', import.meta.url)` as it is.
for (const file of ['index.js', 'eventline.js']) {
  const path = join(dist, file);
  const { code } = await minify(await readFile(path, 'utf8'), { module: true, compress: { passes: 3 }, mangle: true });
  await writeFile(path, code);
}

const snippet = (
  await transform(await readFile(join(src, 'snippet.js'), 'utf8'), { minify: true, legalComments: 'none' })
).code.trim();
if (Buffer.byteLength(snippet) >= SNIPPET_MAX_BYTES) {
  console.error(`snippet is ${Buffer.byteLength(snippet)} bytes; keep it under ${SNIPPET_MAX_BYTES}`);
  process.exit(1);
}
await writeFile(join(dist, 'snippet.js'), `${snippet}\n`);
await writeFile(join(dist, 'snippet.html'), `<script>${snippet}</script>\n`);

await copyFile(join(src, 'index.d.ts'), join(dist, 'index.d.ts'));
await copyFile(join(src, 'index.d.ts'), join(dist, 'index.d.cts'));
await copyFile(join(src, 'embed.d.ts'), join(dist, 'embed.d.ts'));

// Every `WASM.<name>` in src/core.js must have been replaced by a short name.
for (const file of ['index.js', 'eventline.js', 'native.js', 'node.mjs', 'node.cjs']) {
  if ((await readFile(join(dist, file), 'utf8')).includes('WASM.')) {
    console.error(`dist/${file} still names WASM.<name>: a name src/core.js uses is not in dist/wasm/names.json`);
    process.exit(1);
  }
}

for (const file of (await readdir(dist)).sort()) {
  const info = await stat(join(dist, file));
  if (info.isFile()) console.log(`${String(info.size).padStart(8)}  dist/${file}`);
}
