/** `sinew validate`: structural and semantic checks of each resource on its own. */
import { validateInputs } from '../config/validate.js';
import { countLevels, plural, printDiagnostics, type Io, type OutputFormat, resourceJson } from './output.js';

export interface ValidateCommandOptions {
  files: string[];
  output: OutputFormat;
  namespace?: string;
}

/** Exit codes: 0 valid (warnings allowed), 1 errors found. */
export async function runValidate(options: ValidateCommandOptions, io: Io): Promise<number> {
  const result = await validateInputs(options.files, { defaultNamespace: options.namespace });
  const { errors, warnings } = countLevels(result.diagnostics);
  if (options.output === 'json') {
    io.out(
      JSON.stringify(
        {
          valid: errors === 0,
          errors,
          warnings,
          resources: result.resources.map(resourceJson),
          diagnostics: result.diagnostics,
        },
        null,
        2,
      ) + '\n',
    );
    return errors === 0 ? 0 : 1;
  }
  printDiagnostics(io, result.diagnostics);
  const summary = `${plural(result.resources.length, 'resource')} valid` +
    (result.skipped ? `, ${result.skipped} skipped` : '') +
    (warnings ? `, ${plural(warnings, 'warning')}` : '');
  if (errors === 0) io.out(`✔ ${summary}\n`);
  else io.err(`✘ ${plural(errors, 'error')}; ${summary}. Fix the errors above (each names file:line and field) and run again.\n`);
  return errors === 0 ? 0 : 1;
}
