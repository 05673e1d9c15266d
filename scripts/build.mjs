// Compiles src/ to dist/ with tsc and stamps the build (bin/sinew.js runs dist/ only when the
// stamp is newer than every source file), then builds the web console (src/console) with Vite
// into static files in dist/console, which the control plane serves. Run by `npm ci`
// (prepare) and `npm run build`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
const compiled = result.status === 0;
if (!compiled) {
  // Type errors are the lint's business (npm run lint); the emitted JavaScript still runs, but
  // without a stamp bin/sinew.js falls back to the sources.
  console.error('sinew build: tsc reported errors; running from sources until they are fixed');
}

// The console: Preact components bundled with their libraries (cytoscape, uPlot) into
// dist/console/index.html and hashed assets. JSX is compiled by Vite's esbuild for Preact.
try {
  const { build } = await import('vite');
  await build({
    root: fileURLToPath(new URL('../src/console', import.meta.url)),
    base: '/',
    logLevel: 'warn',
    configFile: false,
    esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
    build: {
      outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: false,
      // cytoscape alone is ~450 kB minified: served from the control plane on the same machine.
      chunkSizeWarningLimit: 1200,
    },
  });
} catch (err) {
  console.error(`sinew build: the console could not be built (${err.message}); the control plane will serve a page that says so`);
}

if (compiled) {
  mkdirSync('dist', { recursive: true });
  writeFileSync('dist/.build-stamp', new Date().toISOString() + '\n');
}
