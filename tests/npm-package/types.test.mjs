// The shipped types, as a TypeScript user resolves them through the exports map of the installed
// tarball: strict, no skipLibCheck, no esnext.disposable; node16+ ESM and CommonJS, and "bundler".
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');
const consumer = process.env.CONSUMER_DIR;

for (const config of ['tsconfig.json', 'tsconfig.bundler.json']) {
  test(`types check strictly from the installed package (${config})`, async () => {
    assert.ok(consumer, 'CONSUMER_DIR must be set');
    const dir = join(consumer, 'types');
    await cp(join(here, 'types'), dir, { recursive: true });
    try {
      execFileSync(process.execPath, [tsc, '-p', join(dir, config)], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`);
    }
  });
}
