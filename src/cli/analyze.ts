/**
 * `sinew analyze`: validation, then the cross-resource analyzers over what is valid.
 *
 * Like `istioctl analyze`, which analyses the cluster's config with any `-f` files on top, it
 * reads the config in force in the running mesh by default and layers the files over it, so a
 * gateway file whose DestinationRule lives in the mesh is not reported as missing one.
 * `--local` (istioctl's `--use-kube=false`) analyses the files alone. With no mesh running and
 * files named, the files are analysed alone and a note says so.
 */
import { analyzeInputs, type InForceConfig } from '../config/analyze/index.js';
import { SinewError } from '../core/errors.js';
import { callControlPlane, connectControlPlane, type ControlPlaneConnection } from './client.js';
import { countLevels, plural, printDiagnostics, type Io, type OutputFormat, resourceJson } from './output.js';

export interface AnalyzeCommandOptions {
  files: string[];
  output: OutputFormat;
  namespace?: string;
  /** Analyse the files alone, without the config in force. */
  local?: boolean;
  server?: string;
  stateDir?: string;
}

/** For the command's help: what each exit code means. */
export { analyzeExitCodes } from './exit-codes.js';

/** Exit code when the config in force could not be read (see exit-codes.ts). */
const CANNOT_READ_MESH = 3;

/** Exit codes: 0 no errors (warnings allowed), 1 any error from validation or analysis, 3 the mesh could not be read. */
export async function runAnalyze(options: AnalyzeCommandOptions, io: Io): Promise<number> {
  if (options.local && options.files.length === 0) {
    io.err('✘ --local analyzes files alone: name them with -f <file|dir|->\n');
    return 2;
  }
  let mesh: { server: string; config: InForceConfig } | undefined;
  if (!options.local) {
    const found = await readInForce(options, io);
    if (typeof found === 'number') return found;
    mesh = found;
  }
  const result = await analyzeInputs(options.files, { defaultNamespace: options.namespace, inForce: mesh?.config });
  const all = [...result.validation, ...result.analysis];
  const { errors, warnings } = countLevels(all);
  if (options.output === 'json') {
    io.out(
      JSON.stringify(
        {
          valid: errors === 0,
          errors,
          warnings,
          // What was analysed besides the files: the config in force at that revision, or null.
          inForce: mesh && result.inForce ? { server: mesh.server, ...result.inForce } : null,
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
  const scope = `${plural(result.resources.length, 'resource')} analyzed` + describeSources(result) + (result.skipped ? `, ${result.skipped} skipped` : '');
  if (errors === 0 && warnings === 0) io.out(`✔ ${scope}: no problems found\n`);
  else if (errors === 0) io.out(`✔ ${scope}: ${found}\n`);
  else {
    const split = fromValidation ? ` (${fromValidation} from validation; resources with errors are left out of the analysis)` : '';
    const where = result.inForce ? 'each names its resource and field, and file:line when it comes from a file; fix what is in force with sinew apply' : 'each names file:line and field';
    io.err(`✘ ${found}${split}; ${scope}. Fix the errors above (${where}) and run again.\n`);
  }
  return errors === 0 ? 0 : 1;
}

/** ` (12 in force at revision 7, 2 from files replacing 1 of them)`, when the mesh was read. */
function describeSources(result: Awaited<ReturnType<typeof analyzeInputs>>): string {
  const mesh = result.inForce;
  if (!mesh) return '';
  const fromFiles = result.resources.length - mesh.resources + mesh.replaced;
  const files = fromFiles ? `, ${fromFiles} from files${mesh.replaced ? ` replacing ${mesh.replaced} of them` : ''}` : '';
  return ` (${mesh.resources} in force at revision ${mesh.revision}${files})`;
}

/**
 * The config in force, or the exit code when it is needed and cannot be read. No mesh at all
 * is fine when files were named: they are analysed alone, with a note.
 */
async function readInForce(options: AnalyzeCommandOptions, io: Io): Promise<{ server: string; config: InForceConfig } | number | undefined> {
  let cp: ControlPlaneConnection;
  try {
    cp = await connectControlPlane(options);
  } catch (err) {
    if (!(err instanceof SinewError)) throw err;
    if (err.code !== 'SNW_ERR_NO_MESH') {
      // A mesh is there but its token cannot be read: say so, as for one that does not answer.
      io.err(`✘ cannot analyze the config in force: ${err.message}\n  Add --local to analyze the files alone.\n`);
      return CANNOT_READ_MESH;
    }
    if (options.files.length === 0) {
      io.err(`✘ nothing to analyze: ${err.message}, or name files with -f (add --local to analyze them without a mesh)\n`);
      return CANNOT_READ_MESH;
    }
    io.err(`note: no running mesh found, so the files are analyzed alone (--local says so and skips this lookup)\n`);
    return undefined;
  }
  try {
    const server = cp.base;
    const res = await callControlPlane(cp, '/api/v1/resources');
    const body = res.body as { revision?: number; items?: unknown[]; error?: string };
    if (res.status !== 200 || !Array.isArray(body.items) || typeof body.revision !== 'number') {
      throw new SinewError('SNW_ERR_CONTROL_PLANE', `the control plane at ${server} did not list its config (HTTP ${res.status}${body.error ? `: ${body.error}` : ''})`);
    }
    return { server, config: { revision: body.revision, manifests: body.items } };
  } catch (err) {
    if (!(err instanceof SinewError)) throw err;
    io.err(`✘ cannot analyze the config in force: ${err.message}\n  Add --local to analyze the files alone.\n`);
    return CANNOT_READ_MESH;
  }
}
