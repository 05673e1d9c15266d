/**
 * Validation for the console's editor and actions: the same diagnostics `sinew validate`
 * reports for the text (one code path: config/validate.ts), and `sinew analyze`'s findings
 * about those resources once they replace their namesakes in the config in force.
 */
import type { ValidateResult } from '../../api/console.js';
import { formatDiagnostic } from '../../api/diagnostics.js';
import type { Resource } from '../../api/resources/meta.js';
import { analyze } from '../../config/analyze/index.js';
import { keyOf } from '../../config/store.js';
import { validateText } from '../../config/validate.js';

/** The file name diagnostics of console input carry. */
export const CONSOLE_SOURCE = '<console>';

export function validateForConsole(text: string, inForce: readonly Resource[], defaultNamespace = 'default'): ValidateResult {
  const result = validateText(CONSOLE_SOURCE, text, { defaultNamespace });
  const edited = new Set(result.resources.map(keyOf));
  const merged = [...inForce.filter((r) => !edited.has(keyOf(r))), ...result.resources];
  const analysis = result.resources.length
    ? analyze(merged).filter((d) => d.resource && edited.has(`${d.resource.kind}/${d.resource.namespace ?? ''}/${d.resource.name}`))
    : [];
  return {
    diagnostics: result.diagnostics,
    analysis,
    lines: [...result.diagnostics, ...analysis].map(formatDiagnostic),
    valid: !result.diagnostics.some((d) => d.level === 'error'),
  };
}
