/**
 * Loaded into every test file's process (`npm test` runs `tsx --test --import ./test/support/no-hang.ts`):
 * a test file whose process is still alive some seconds after its last test and hook has left
 * something open on some path (a server, a socket, a timer, a child process). Such a process
 * never exits, and the whole suite would hang on it. Instead, the file fails, naming what was
 * left open, and the child processes it left are sent SIGTERM so that none outlives the suite.
 *
 * Each test must still close what it starts in `finally` or `after`; this only turns the
 * mistake into a failure that says where to look. The timer is unref'd: a file that closed
 * everything exits at once, as before.
 */
import { after } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { Server, Socket } from 'node:net';
import { relative } from 'node:path';

/** How long a file's process may take to wind down after its tests (env: SINEW_TEST_EXIT_GRACE_MS). */
const graceMs = Number(process.env.SINEW_TEST_EXIT_GRACE_MS) || 30_000;
/** The test file, relative to the working directory when inside it. */
function shownPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}
const testFile = shownPath(process.argv[1] ?? '?');

/** The handles keeping this process alive, as `process._getActiveHandles()` lists their owners. */
function activeHandles(): unknown[] {
  // Undocumented, but in every Node release since 0.x; the documented getActiveResourcesInfo()
  // gives only type names, which cannot say which server or child was left.
  const list = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles;
  return list ? list.call(process) : [];
}

const isChildProcess = (h: unknown): h is ChildProcess => typeof h === 'object' && h !== null && 'spawnargs' in h && typeof (h as ChildProcess).kill === 'function';

function describeHandle(h: unknown): string | undefined {
  if (h === process.stdin || h === process.stdout || h === process.stderr) return undefined;
  if (isChildProcess(h)) return `child process ${h.pid}: ${h.spawnargs.join(' ').slice(0, 200)}`;
  if (h instanceof Server) {
    const a = h.address();
    return `server listening on ${typeof a === 'string' ? a : a ? `${a.address}:${a.port}` : '?'}`;
  }
  if (h instanceof Socket) return `socket ${h.localAddress ?? '?'}:${h.localPort ?? '?'} -> ${h.remoteAddress ?? '?'}:${h.remotePort ?? '?'}`;
  return `${(h as object)?.constructor?.name ?? typeof h}`;
}

/** A report of what is still open, one line each, and the children to stop. */
export function openHandles(): { lines: string[]; children: ChildProcess[] } {
  const handles = activeHandles();
  const lines = handles.map(describeHandle).filter((d): d is string => d !== undefined);
  // Timers and pending requests are not handles; name their kinds.
  const others = process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate' || r.endsWith('ReqWrap') || r.startsWith('FSReq'));
  if (others.length > 0) lines.push(`other: ${others.join(', ')}`);
  return { lines, children: handles.filter(isChildProcess) };
}

after(() => {
  const timer = setTimeout(() => {
    const { lines, children } = openHandles();
    process.stderr.write(
      `\n✘ ${testFile}: still running ${graceMs / 1000} s after its last test, so it would never exit. Left open:\n` +
        (lines.map((l) => `  - ${l}\n`).join('') || '  (nothing Node can name)\n') +
        'Close every server, socket, timer and child process a test starts in `finally` or `after`, on every path.\n',
    );
    for (const child of children) child.kill('SIGTERM');
    process.exit(1);
  }, graceMs);
  timer.unref();
});
