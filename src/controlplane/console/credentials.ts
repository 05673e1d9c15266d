/**
 * The mesh's API credential, as the console needs it: a random token (hex) kept in the
 * control plane's state directory as `api-token` (mode 0600), presented as
 * `Authorization: Bearer <token>`.
 *
 * A stand-in with the shape of src/controlplane/credentials.ts (the control plane's own
 * authentication, which takes over this file's job once both are in one tree): the same
 * file, the same header, the same check. Only the console imports it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const API_TOKEN_FILE = 'api-token';

/** Reads the token from `<stateDir>/api-token`, creating it (32 random bytes, hex, mode 0600) when absent. */
export async function loadOrCreateApiToken(stateDir: string): Promise<string> {
  const file = join(stateDir, API_TOKEN_FILE);
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{32,}$/.test(token)) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(stateDir, { recursive: true });
  const token = randomBytes(32).toString('hex');
  // `wx` fails if another process created it meanwhile: then theirs wins.
  try {
    await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(file, 'utf8')).trim();
    throw err;
  }
  await chmod(file, 0o600);
  return token;
}

/** A fresh token for a control plane without a state directory (memory only). */
export function ephemeralApiToken(): string {
  return randomBytes(32).toString('hex');
}

/** Whether `presented` is the token; constant time in the token's length (no early exit on a prefix). */
export function checkApiToken(expected: string, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, if that is what it holds. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
