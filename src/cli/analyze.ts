/** `sinew analyze`: validation, then the cross-resource analyzers over what is valid. */
import { analyzeInputs } from '../config/analyze/index.js';
import { countLevels, plural, printDiagnostics, type Io, type OutputFormat, resourceJson } from './output.js';

export interface AnalyzeCommandOptions {
  files: string[];
  output: OutputFormat;
  namespace?: string;
}

/** For the command's help: what each exit code means. */
export { analyzeExitCodes } from './exit-codes.js';

/** Exit codes: 0 no errors (warnings allowed), 1 any error from validation or analysis. */
export async function runAnalyze(options: AnalyzeCommandOptions, io: Io): Promise<number> {
  const result = await analyzeInputs(options.files, { defaultNamespace: options.namespace });
  const all = [...result.validation, ...result.analysis];
  const { errors, warnings } = countLevels(all);
  if (options.output === 'json') {
    io.out(
      JSON.stringify(
        {
          valid: errors === 0,
          errors,
          warnings,
          // The same shape as `sinew validate -o json`, so one script can read both.
          resources: result.resources.map(resourceJson),
          skipped: result.skipped,
          diagnostics: all,
        },
        null,
        2,
      ) + '\n',
    );
    return errors === 0 ? 0 : 1;
  }
  printDiagnostics(io, all);
  const fromValidation = countLevels(result.validation).errors;
  const found = [plural(errors, 'error'), plural(warnings, 'warning')].join(', ');
  const scope = `${plural(result.resources.length, 'resource')} analyzed` + (result.skipped ? `, ${result.skipped} skipped` : '');
  if (errors === 0 && warnings === 0) io.out(`✔ ${scope}: no problems found\n`);
  else if (errors === 0) io.out(`✔ ${scope}: ${found}\n`);
  else {
    const split = fromValidation ? ` (${fromValidation} from validation; resources with errors are left out of the analysis)` : '';
    io.err(`✘ ${found}${split}; ${scope}. Fix the errors above (each names file:line and field) and run again.\n`);
  }
  return errors === 0 ? 0 : 1;
}
