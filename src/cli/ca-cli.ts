/**
 * The `sinew ca` command group as commander sees it. The implementations (ca-commands.ts, and
 * with them the X.509 library) load only when a `ca` command runs.
 */
import type { Command, Option as OptionClass } from 'commander';
import type { Io } from './output.js';

interface CaCliDeps {
  Option: typeof OptionClass;
  io: Io;
  /** Receives each command's exit code. */
  setExitCode(code: number): void;
}

type DirOptions = { caDir?: string; stateDir?: string };

export function registerCaCommands(program: Command, { Option, io, setExitCode }: CaCliDeps): void {
  const output = () => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');
  const dirs = (cmd: Command) =>
    cmd
      .option('--ca-dir <dir>', "the CA's directory (default: <state dir>/ca)")
      .option('--state-dir <dir>', 'state directory of the mesh (default .sinew, or SINEW_STATE_DIR)');

  const ca = program
    .command('ca')
    .description("the mesh's certificate authority: its roots, workload certificates and revocations (works offline on its directory)");

  dirs(ca.command('init').description('create the CA: a new root and intermediate, or Istio plug-in certificates (cacerts) from a directory'))
    .option('--plugin-dir <dir>', 'a directory with ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem (Istio\'s cacerts secret)')
    .option('--trust-domain <domain>', 'trust domain of the workload identities', 'cluster.local')
    .option('--force', 'replace the signing certificates of an existing CA at once: certificates under a replaced root stop being trusted (the issued list and revocations are kept); a root rotation avoids that')
    .addOption(output())
    .action(async (opts: DirOptions & { pluginDir?: string; trustDomain: string; force?: boolean; output: string }) => {
      const { runCaInit } = await import('./ca-commands.js');
      setExitCode(await runCaInit(opts, io));
    });

  dirs(ca.command('root').description('print the roots proxies trust (PEM), e.g. for openssl verify -CAfile'))
    .addOption(output())
    .action(async (opts: DirOptions & { output: string }) => {
      const { runCaRoot } = await import('./ca-commands.js');
      setExitCode(await runCaRoot(opts, io));
    });

  dirs(ca.command('sign').description('issue a workload certificate on a CSR, for debugging (the chain goes to stdout)'))
    .requiredOption('--csr <file>', 'PEM certificate signing request, or - for stdin')
    .requiredOption('--identity <id>', 'spiffe://<trust domain>/ns/<ns>/sa/<sa>, or <namespace>/<service account>')
    .option('--ttl <duration>', 'lifetime, e.g. 24h or 60s (default: 24h)')
    .addOption(output())
    .action(async (opts: DirOptions & { csr: string; identity: string; ttl?: string; output: string }) => {
      const { runCaSign } = await import('./ca-commands.js');
      setExitCode(await runCaSign(opts, io));
    });

  dirs(ca.command('revoke').description('revoke a certificate (by serial) or every certificate of an identity: proxies refuse it, the CA renews nothing for it'))
    .argument('<identity|serial>', 'a serial as "sinew ca list" or openssl prints it, or an identity (spiffe://... or <namespace>/<service account>)')
    .addOption(output())
    .action(async (target: string, opts: DirOptions & { output: string }) => {
      const { runCaRevoke } = await import('./ca-commands.js');
      setExitCode(await runCaRevoke({ ...opts, target }, io));
    });

  dirs(ca.command('unrevoke').description('let the CA issue for a revoked identity again (its old certificates stay refused until they expire)'))
    .argument('<identity>', 'spiffe://... or <namespace>/<service account>')
    .action(async (identity: string, opts: DirOptions) => {
      const { runCaUnrevoke } = await import('./ca-commands.js');
      setExitCode(await runCaUnrevoke({ ...opts, identity }, io));
    });

  dirs(ca.command('rotate-root').description('begin a root rotation: a new root trusted beside the old one (the running control plane completes it once every proxy holds it)'))
    .option('--complete', 'sign with the new root from now on (for a CA without a running mesh)')
    .addOption(output())
    .action(async (opts: DirOptions & { complete?: boolean; output: string }) => {
      const { runCaRotateRoot } = await import('./ca-commands.js');
      setExitCode(await runCaRotateRoot(opts, io));
    });

  dirs(ca.command('list').description('the CA\'s roots, the workload certificates it issued, and what is revoked'))
    .addOption(output())
    .action(async (opts: DirOptions & { output: string }) => {
      const { runCaList } = await import('./ca-commands.js');
      setExitCode(await runCaList(opts, io));
    });
}
