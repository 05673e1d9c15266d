/** Printing helpers shared by commands: tables for people, JSON for scripts. */
import { formatDiagnostic, type Diagnostic } from '../api/diagnostics.js';
import type { Resource } from '../api/resources/meta.js';

export type OutputFormat = 'text' | 'json' | 'yaml';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Set once the reader of stdout / stderr went away: further output is dropped. */
const closed = { stdout: false, stderr: false };

export const processIo: Io = {
  out: (text) => {
    if (!closed.stdout) process.stdout.write(text);
  },
  err: (text) => {
    if (!closed.stderr) process.stderr.write(text);
  },
};

/**
 * A closed stdout or stderr (`sinew status | head -2`, a `sinew up` whose terminal went
 * away) ends that output quietly. Node ignores SIGPIPE and reports the closed pipe as an
 * EPIPE 'error' event on the stream, which, with nobody listening, crashed the command with
 * a stack trace about one run in three (whenever the reader had gone before the last write).
 * Now the stream's later writes are dropped, and the command finishes as it would have,
 * with its own exit code: a proxy or control plane whose runner died keeps serving.
 */
export function dropOutputWhenClosed(): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name] as NodeJS.WriteStream & { sinewGuarded?: boolean };
    if (stream.sinewGuarded) continue;
    stream.sinewGuarded = true;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED' || err.code === 'ERR_STREAM_WRITE_AFTER_END') {
        closed[name] = true;
        return;
      }
      // Anything else is not a reader going away: fail as before.
      process.nextTick(() => {
        throw err;
      });
    });
  }
}

/** Renders rows as an aligned table with a header line. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function printDiagnostics(io: Io, diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) io.err(formatDiagnostic(d) + '\n');
}

export function countLevels(diagnostics: readonly Diagnostic[]): { errors: number; warnings: number } {
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    if (d.level === 'error') errors++;
    else if (d.level === 'warning') warnings++;
  }
  return { errors, warnings };
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** How `-o json` names a resource (validate and analyze print the same shape). */
export function resourceJson(r: Resource): { kind: string; namespace?: string; name: string; source: Resource['source'] } {
  return { kind: r.kind, namespace: r.metadata.namespace || undefined, name: r.metadata.name, source: r.source };
}
