/** Printing helpers shared by commands: tables for people, JSON for scripts. */
import { formatDiagnostic, type Diagnostic } from '../api/diagnostics.js';
import type { Resource } from '../api/resources/meta.js';

export type OutputFormat = 'text' | 'json' | 'yaml';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

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
