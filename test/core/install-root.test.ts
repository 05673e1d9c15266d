/**
 * Files shipped beside the code (the version, the original-destination addon, the built
 * console) are found from this installation's root, from the sources and from the build that
 * `npm ci` makes and `sinew` runs alike. Regression: the built proxy looked for the addon in
 * dist/native, so `sinew proxy --capture` failed in a fresh clone although the addon was built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { installPath, installRoot } from '../../src/core/install-root.js';
import { ORIGINAL_DST_ADDON } from '../../src/proxy/original-destination.js';
import { repoRoot } from '../support/reference-corpus.js';

const run = promisify(execFile);
const built = join(repoRoot, 'dist', 'src');

test('from the sources, the installation root is the repository', () => {
  assert.equal(installRoot(), repoRoot);
  assert.equal(installPath('package.json'), join(repoRoot, 'package.json'));
  assert.equal(ORIGINAL_DST_ADDON, join(repoRoot, 'native/original-dst/build/Release/original_dst.node'));
});

test('the build finds the addon, the console and the version where the sources do', { skip: existsSync(built) ? false : 'no build in dist/ (npm ci or npm run build makes it)' }, async (t) => {
  // Only a current build says anything: an older one has whatever paths it was built with.
  const stamp = join(repoRoot, 'dist', '.build-stamp');
  if (!existsSync(stamp) || statSync(stamp).mtimeMs < statSync(join(repoRoot, 'src/core/install-root.ts')).mtimeMs) {
    t.skip('the build in dist/ is older than the sources: npm run build');
    return;
  }
  const script = `
    const { ORIGINAL_DST_ADDON } = await import(${JSON.stringify(join(built, 'proxy/original-destination.js'))});
    const { defaultStaticDir } = await import(${JSON.stringify(join(built, 'controlplane/console/server.js'))});
    const { installRoot } = await import(${JSON.stringify(join(built, 'core/install-root.js'))});
    console.log(JSON.stringify({ root: installRoot(), addon: ORIGINAL_DST_ADDON, console: defaultStaticDir() ?? null }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  const found = JSON.parse(stdout) as { root: string; addon: string; console: string | null };
  assert.equal(found.root, repoRoot);
  assert.equal(found.addon, ORIGINAL_DST_ADDON);
  if (found.console !== null) assert.equal(found.console, join(repoRoot, 'dist', 'console'));
});
