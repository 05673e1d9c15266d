/**
 * The CA's directory on disk: owner-only modes (0700 for the directory, 0600 for every file,
 * keys included), atomic writes (temporary file, fsync, rename) so a crash never leaves half a
 * key, and a lock file so that the control plane and an offline `sinew ca` command never
 * write at the same time.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { CaError } from './errors.js';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
const LOCK_FILE = '.lock';

/** Creates `dir` (and its parents) and makes it owner-only. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await mkdir(dirname(dir), { recursive: true });
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    // mkdir leaves an existing directory's mode alone, and the umask may have narrowed it.
    await chmod(dir, DIR_MODE);
  } catch (err) {
    throw new CaError('SNW_ERR_CA_STATE', `cannot use ${dir} as the CA's directory: ${(err as Error).message}`, [], { cause: err });
  }
}

/** Writes `content` to `path` with mode 0600, atomically. */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, 'wx', FILE_MODE);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(tmp, FILE_MODE);
  await rename(tmp, path);
}

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CaError('SNW_ERR_CA_STATE', `cannot read ${path}: ${(err as Error).message}`, [], { cause: err });
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Problems with the modes of the directory and the files in it: anything a group or other
 * user may read or write. Private keys readable by others are refused, as ssh refuses them.
 */
export async function ownerOnlyProblems(dir: string, files: readonly string[]): Promise<string[]> {
  if (process.platform === 'win32') return [];
  const problems: string[] = [];
  const check = async (path: string, want: number) => {
    let mode: number;
    try {
      mode = (await stat(path)).mode & 0o777;
    } catch {
      return;
    }
    if (mode & 0o077) problems.push(`${path} has mode ${mode.toString(8).padStart(4, '0')}; it must be owner-only: chmod ${want.toString(8)} ${path}`);
  };
  await check(dir, DIR_MODE);
  for (const file of files) await check(join(dir, file), FILE_MODE);
  return problems;
}

// === the lock ===

const inProcess = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` holding the directory's lock: a queue inside this process, and a lock file
 * (created with O_EXCL, holding our pid) between processes. A lock left by a process that no
 * longer exists is taken over; a live holder is waited for up to `timeoutMs`.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const previous = inProcess.get(dir) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(async () => {
    const release = await acquireFileLock(dir, timeoutMs);
    try {
      return await fn();
    } finally {
      await release();
    }
  });
  inProcess.set(dir, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(dir) === run) inProcess.delete(dir);
  }
}

async function acquireFileLock(dir: string, timeoutMs: number): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(path, 'wx', FILE_MODE);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => unlink(path).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CaError('SNW_ERR_CA_STATE', `cannot lock ${dir}: ${(err as Error).message}`, [], { cause: err });
    }
    const holder = Number((await readIfExists(path))?.trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && !processAlive(holder)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (performance.now() > deadline) {
      throw new CaError('SNW_ERR_CA_LOCKED', `${path} is held by process ${holder || '(unknown)'}; wait for it to finish, or remove the file if that process is gone`);
    }
    // Polling a lock file: a wait for another process, not a timing assumption.
    await sleep(20);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
