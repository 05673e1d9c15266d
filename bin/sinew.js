#!/usr/bin/env node
// The `sinew` command. The sources are TypeScript: `npm ci` compiles them to dist/ (the
// `prepare` script), and processes run that plain JavaScript — a sidecar then costs ~40 MB
// less memory and starts in a fraction of the time. When a source file is newer than the
// build (someone is editing), or there is no build, the sources run through tsx instead, so
// what runs is never stale.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const useBuild = process.env.SINEW_FROM_SOURCE !== '1' && existsSync(stamp) && statSync(stamp).mtimeMs >= newestSource(join(root, 'src'));
let main;
if (useBuild) {
  ({ main } = await import('../dist/src/cli/main.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv);
