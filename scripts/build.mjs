// Compiles src/ to dist/ with tsc and stamps the build (bin/sinew.js runs dist/ only when the
// stamp is newer than every source file). Run by `npm ci` (prepare) and `npm run build`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (result.status !== 0) {
  // Type errors are the lint's business (npm run lint); the emitted JavaScript still runs, but
  // without a stamp bin/sinew.js falls back to the sources.
  console.error('sinew build: tsc reported errors; running from sources until they are fixed');
  process.exit(0);
}
mkdirSync('dist', { recursive: true });
writeFileSync('dist/.build-stamp', new Date().toISOString() + '\n');
