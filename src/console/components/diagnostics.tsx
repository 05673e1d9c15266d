import { formatDiagnostic, type Diagnostic } from '../../api/diagnostics.js';

/** Diagnostics as `sinew validate` and `sinew analyze` print them, one per line. */
export function Diagnostics({ diagnostics }: { diagnostics: readonly Diagnostic[] }) {
  if (diagnostics.length === 0) return null;
  return (
    <ul class="diagnostics" aria-label="Validation messages">
      {diagnostics.map((d) => (
        <li data-code={d.code} data-level={d.level}>
          {formatDiagnostic(d)}
        </li>
      ))}
    </ul>
  );
}
