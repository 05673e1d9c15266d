/**
 * The `sinew` command line. Each subcommand lives in its own module; this file only wires
 * them to commander and turns their results into exit codes.
 */
import { Command, Option, CommanderError } from 'commander';
import { processIo, type Io, type OutputFormat } from './output.js';
import { runValidate } from './validate.js';

const outputOption = () => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');
const collect = (value: string, previous: string[] = []) => previous.concat(value);

/** Runs the CLI with `argv` (as process.argv) and returns the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode = 0;
  const program = new Command()
    .name('sinew')
    .description('A service mesh that reads Istio configuration: validate it, analyze it, run it.')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run "sinew --help" for usage)');

  program
    .command('validate')
    .description('check Istio and Sinew resources one by one (exit 0 valid, 1 on any error)')
    .requiredOption('-f, --filename <path>', 'file, directory or - for stdin (repeatable)', collect)
    .option('-n, --namespace <ns>', 'namespace for resources that name none', 'default')
    .addOption(outputOption())
    .action(async (opts: { filename: string[]; namespace: string; output: OutputFormat }) => {
      exitCode = await runValidate({ files: opts.filename, output: opts.output, namespace: opts.namespace }, io);
    });

  program
    .command('start-demo', { hidden: true })
    .description('what `npm start` runs')
    .action(async () => {
      exitCode = await runValidate({ files: ['examples/bookinfo'], output: 'text' }, io);
      io.out('The embedded mesh (`sinew up`) is coming next; for now `npm start` validates the bundled Bookinfo configuration.\n');
    });

  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return exitCode;
}
