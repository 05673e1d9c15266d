/**
 * The folder this installation of Sinew lives in: the one holding its package.json. Modules
 * that need a file shipped beside the code (the version, the native addon, the built console)
 * find it from here, because the same module runs from two depths: src/<part>/ through tsx
 * and dist/src/<part>/ once `npm ci` has compiled it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const PACKAGE_NAME = 'sinew';
let found: string | undefined;

export function installRoot(): string {
  if (found) return found;
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return (found = dir);
    if (dirname(dir) === dir) throw new Error(`sinew: no package.json named "${PACKAGE_NAME}" above ${import.meta.dirname}`);
  }
}

/** A path inside the installation, e.g. installPath('native', 'original-dst'). */
export function installPath(...parts: string[]): string {
  return join(installRoot(), ...parts);
}
