/**
 * Validation for the console's editor and actions: the same diagnostics `sinew validate`
 * reports for the text (one code path: config/validate.ts), and `sinew analyze`'s findings
 * about those resources once they replace their namesakes in the config in force.
 */
import type { ValidateResult } from '../../api/console.js';
import { formatDiagnostic } from '../../api/diagnostics.js';
import type { Resource } from '../../api/resources/meta.js';
import { analyze, parsePath } from '../../config/analyze/index.js';
import { parseText } from '../../config/load.js';
import { keyOf } from '../../config/store.js';
import { validateDocuments } from '../../config/validate.js';

/** The file name diagnostics of console input carry. */
export const CONSOLE_SOURCE = '<console>';

export function validateForConsole(text: string, inForce: readonly Resource[], defaultNamespace = 'default'): ValidateResult {
  // validateText's steps, keeping the parsed documents to point analysis findings at their field.
  const loaded = parseText(CONSOLE_SOURCE, text);
  const result = validateDocuments(loaded.documents, { defaultNamespace });
  result.diagnostics.unshift(...loaded.diagnostics);
  const edited = new Set(result.resources.map(keyOf));
  const merged = [...inForce.filter((r) => !edited.has(keyOf(r))), ...result.resources];
  const documentAt = new Map(loaded.documents.map((doc) => [`${doc.start.line}:${doc.start.column}`, doc]));
  const analysis = result.resources.length
    ? analyze(merged)
        .filter((d) => d.resource && edited.has(`${d.resource.kind}/${d.resource.namespace ?? ''}/${d.resource.name}`))
        .map((d) => {
          const doc = d.source && d.source.file === CONSOLE_SOURCE ? documentAt.get(`${d.source.line}:${d.source.column}`) : undefined;
          const path = d.path === undefined ? undefined : parsePath(d.path);
          return doc && path ? { ...d, source: doc.positionOf(path) } : d;
        })
    : [];
  return {
    diagnostics: result.diagnostics,
    analysis,
    lines: [...result.diagnostics, ...analysis].map(formatDiagnostic),
    valid: !result.diagnostics.some((d) => d.level === 'error'),
  };
}
