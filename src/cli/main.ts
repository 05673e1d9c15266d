/**
 * The `sinew` command line. Each subcommand lives in its own module; this file only wires
 * them to commander and turns their results into exit codes. `sinew proxy`, which every
 * sidecar runs, starts without loading commander at all (proxy-command.ts).
 */
import type { Command } from 'commander';
import { dropOutputWhenClosed, processIo, type Io, type OutputFormat } from './output.js';
import { SinewError } from '../core/errors.js';
import { analyzeExitCodes } from './exit-codes.js';
import { parseProxyArgs, PROXY_COMMAND_DESCRIPTION, PROXY_OPTIONS, runProxyCli, type ProxyCliOptions } from './proxy-command.js';
import { registerCaCommands } from './ca-cli.js';
import { registerKubeCommands } from './kube-cli.js';

const collect = (value: string, previous: string[] = []) => previous.concat(value);

/** Runs the CLI with `argv` (as process.argv) and returns the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  if (io === processIo) dropOutputWhenClosed();
  // A sidecar's start: no commander (see proxy-command.ts).
  const proxyOptions = parseProxyArgs(argv);
  if (proxyOptions) return reportErrors(() => runProxyCli(proxyOptions, io), io);

  const { Command, Option, CommanderError } = await import('commander');
  const outputOption = () => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');
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
      // Each command loads its own modules: a proxy process never pays for the config validator.
      const { runValidate } = await import('./validate.js');
      exitCode = await runValidate({ files: opts.filename, output: opts.output, namespace: opts.namespace }, io);
    });

  const connect = (cmd: Command) =>
    cmd
      .option('--server <host:port>', 'control plane API address (default: the mesh started from this directory)')
      .option('--state-dir <dir>', 'state directory of the mesh (default .sinew, or SINEW_STATE_DIR)')
      .option('--token <token>', "the control plane's API token, with --server (default SINEW_TOKEN; a local mesh's is read from its state directory)");

  connect(
    program
      .command('analyze')
      .description('check how resources fit together (subsets, hosts and gateways that must exist, conflicting rules): the config in force in the running mesh, with -f files on top'),
  )
    .option('-f, --filename <path>', 'file, directory or - for stdin, applied over the config in force (repeatable)', collect, [])
    .option('--local', 'analyze the -f files alone, without the config in force (istioctl --use-kube=false)')
    .option('-n, --namespace <ns>', 'namespace for resources that name none', 'default')
    .addOption(outputOption())
    .addHelpText('after', `\n${analyzeExitCodes}\n`)
    .action(async (opts: { filename: string[]; local?: boolean; namespace: string; output: OutputFormat; server?: string; stateDir?: string }) => {
      const { runAnalyze } = await import('./analyze.js');
      exitCode = await runAnalyze({ files: opts.filename, output: opts.output, namespace: opts.namespace, local: opts.local, server: opts.server, stateDir: opts.stateDir }, io);
    });

  program
    .command('up')
    .description('run the mesh on this machine: control plane, ingress gateway, and every Workload with its sidecar')
    .argument('[paths...]', 'manifest files or directories', ['.'])
    .option('--state-dir <dir>', 'where the mesh keeps its state (default .sinew, or SINEW_STATE_DIR)')
    .option('--gateway-port <port>', 'port of the ingress gateway (0 = any free port)', '8080')
    .option('--host <address>', 'address every part listens on', '127.0.0.1')
    .option('--console-port <port>', 'port of the web console (default 20001; 0 = any free port, as with --gateway-port 0)')
    .option('--fresh', 'start with no config from an earlier run (the state directory keeps what was applied)')
    .option('--ready-timeout <seconds>', 'how long a sidecar, gateway or app may take to become ready before it is reported and restarted', '30')
    .option('--mesh-config <file>', "Istio's MeshConfig (extensionProviders, defaultProviders, access log, ...): the mesh ConfigMap's text, the ConfigMap, or an IstioOperator")
    .option('--ca-plugin-dir <dir>', "the mesh CA signs with Istio plug-in certificates (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)")
    .option('--egress-gateway', "run Istio's egress gateway (istio-system/istio-egressgateway) even when no Gateway in the manifests selects it")
    .action(async (paths: string[], opts: { stateDir?: string; gatewayPort: string; host: string; consolePort?: string; fresh?: boolean; readyTimeout: string; meshConfig?: string; caPluginDir?: string; egressGateway?: boolean }) => {
      const readyTimeout = Number(opts.readyTimeout);
      if (!(readyTimeout > 0)) {
        io.err(`--ready-timeout must be a number of seconds above 0, not "${opts.readyTimeout}"\n`);
        exitCode = 2;
        return;
      }
      const { runUp } = await import('../mesh/up.js');
      const { stateDir } = await import('./client.js');
      exitCode = await runUp({ paths, stateDir: stateDir(opts.stateDir), gatewayPort: Number(opts.gatewayPort), consolePort: opts.consolePort === undefined ? undefined : Number(opts.consolePort), host: opts.host, fresh: opts.fresh, egressGateway: opts.egressGateway, meshConfig: opts.meshConfig, caPluginDir: opts.caPluginDir, readyTimeoutMs: readyTimeout * 1000, output: (line) => io.out(line + '\n') });
    });

  program
    .command('down')
    .description('stop the mesh started by "sinew up" from this directory')
    .option('--state-dir <dir>', 'state directory of the mesh (default .sinew, or SINEW_STATE_DIR)')
    .action(async (opts: { stateDir?: string }) => {
      const { runDown } = await import('./mesh-commands.js');
      exitCode = await runDown({ stateDir: opts.stateDir }, io);
    });

  connect(program.command('status').description('workloads, replicas, addresses, readiness and config version per proxy'))
    .addOption(outputOption())
    .action(async (opts: { server?: string; stateDir?: string; output: string }) => {
      const { runStatus } = await import('./mesh-commands.js');
      exitCode = await runStatus(opts, io);
    });

  connect(program.command('traces').description('recent traces the proxies sent to the control plane, newest first'))
    .option('--service <name>', 'only traces with a span of this service: reviews, reviews.default or reviews.default.svc.cluster.local')
    .option('--limit <n>', 'how many traces', '20')
    .addOption(outputOption())
    .action(async (opts: { service?: string; limit: string; output: string; server?: string; stateDir?: string }) => {
      const { runTraces } = await import('./trace-commands.js');
      exitCode = await runTraces({ ...opts, limit: Number(opts.limit) }, io);
    });

  connect(program.command('trace').description('one trace as a timeline of its spans'))
    .argument('<id>', 'trace id (from "sinew traces")')
    .addOption(outputOption())
    .action(async (id: string, opts: { output: string; server?: string; stateDir?: string }) => {
      const { runTrace } = await import('./trace-commands.js');
      exitCode = await runTrace({ ...opts, id }, io);
    });

  connect(program.command('apply').description('validate resources and apply them to the running mesh, all or nothing'))
    .requiredOption('-f, --filename <path>', 'file, directory or - for stdin (repeatable)', collect)
    .option('-n, --namespace <ns>', 'namespace for resources that name none', 'default')
    .addOption(outputOption())
    .action(async (opts: { filename: string[]; namespace: string; output: string; server?: string; stateDir?: string }) => {
      const { runApply } = await import('./config-commands.js');
      exitCode = await runApply({ ...opts, files: opts.filename }, io);
    });

  connect(program.command('delete').description('delete the resources named in files from the running mesh'))
    .requiredOption('-f, --filename <path>', 'file, directory or - for stdin (repeatable)', collect)
    .option('-n, --namespace <ns>', 'namespace for resources that name none', 'default')
    .addOption(outputOption())
    .action(async (opts: { filename: string[]; namespace: string; output: string; server?: string; stateDir?: string }) => {
      const { runDelete } = await import('./config-commands.js');
      exitCode = await runDelete({ ...opts, files: opts.filename }, io);
    });

  connect(program.command('get').description('list or show resources in force (kinds as kubectl names them: virtualservices, vs, dr, ...)'))
    .argument('<kind>')
    .argument('[name]')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('-A, --all-namespaces', 'every namespace')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .action(async (kind: string, name: string | undefined, opts: { namespace: string; allNamespaces?: boolean; output: string; server?: string; stateDir?: string }) => {
      const { runGet } = await import('./config-commands.js');
      exitCode = await runGet({ ...opts, kind, name }, io);
    });

  const create = program.command('create').description('create a resource in the running mesh, like kubectl create');
  const secret = create.command('secret').description('a Secret with TLS credentials, as Istio\'s gateways read them (values are never shown back)');
  const secretOptions = (cmd: Command) =>
    connect(cmd)
      .argument('<name>')
      .option('-n, --namespace <ns>', 'namespace (Istio\'s ingress gateway reads credentials from istio-system)', 'default')
      .option('--dry-run', 'print the Secret instead of applying it')
      .addOption(new Option('-o, --output <format>', 'output format with --dry-run').choices(['yaml', 'json']).default('yaml'));
  secretOptions(secret.command('tls').description('a kubernetes.io/tls Secret: tls.crt and tls.key (and ca.crt)'))
    .requiredOption('--cert <file>', 'certificate chain (PEM)')
    .requiredOption('--key <file>', 'private key (PEM)')
    .option('--ca-cert <file>', 'CA bundle that MUTUAL servers verify client certificates against (PEM)')
    .action(async (name: string, opts: { namespace: string; cert: string; key: string; caCert?: string; dryRun?: boolean; output: string; server?: string; stateDir?: string }) => {
      const { runCreateSecret } = await import('./secret-commands.js');
      exitCode = await runCreateSecret({ ...opts, type: 'tls', name }, io);
    });
  secretOptions(secret.command('generic').description('an Opaque Secret from files and literals (Istio reads cert, key and cacert)'))
    .option('--from-file <[key=]file>', 'a key from a file (repeatable)', collect, [])
    .option('--from-literal <key=value>', 'a key from a literal value (repeatable)', collect, [])
    .action(async (name: string, opts: { namespace: string; fromFile: string[]; fromLiteral: string[]; dryRun?: boolean; output: string; server?: string; stateDir?: string }) => {
      const { runCreateSecret } = await import('./secret-commands.js');
      exitCode = await runCreateSecret({ ...opts, type: 'generic', name }, io);
    });

  connect(program.command('exec').description('run a command as a workload: its HTTP calls go through that workload\'s sidecar'))
    .argument('<workload>', 'workload name or replica id')
    .argument('<command...>', 'the command (after --)')
    .action(async (workload: string, command: string[], opts: { server?: string; stateDir?: string }) => {
      const { runExec } = await import('./mesh-commands.js');
      exitCode = await runExec({ ...opts, workload, command }, io);
    });

  connect(program.command('proxy-status').description('per proxy: config version sent and acknowledged, SYNCED, STALE or NACKED'))
    .addOption(outputOption())
    .action(async (opts: { output: string; server?: string; stateDir?: string }) => {
      const { runProxyStatus } = await import('./mesh-commands.js');
      exitCode = await runProxyStatus(opts, io);
    });

  connect(program.command('proxy-config').description('what a workload\'s proxy holds: listeners, routes, clusters, endpoints or secrets (its certificate and trust bundle)'))
    .argument('<workload>', 'workload name or replica id')
    .argument('[section]', 'listeners | routes | clusters | endpoints | secrets | all', 'all')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'))
    .action(async (workload: string, section: string, opts: { output: string; server?: string; stateDir?: string }) => {
      const { runProxyConfig } = await import('./mesh-commands.js');
      exitCode = await runProxyConfig({ ...opts, workload, section }, io);
    });

  const proxy = program.command('proxy').description(PROXY_COMMAND_DESCRIPTION);
  for (const option of PROXY_OPTIONS) proxy.option(option.flag, option.description, option.default);
  proxy.action(async (opts: ProxyCliOptions) => {
    exitCode = await runProxyCli(opts, io);
  });

  program
    .command('controlplane')
    .description('run the control plane daemon (sinew up starts one for you)')
    .option('--state-dir <dir>', 'where config and registrations persist (default: memory only)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--api-port <port>', 'HTTP API port', '15080')
    .option('--push-port <port>', 'proxy push port', '15010')
    .option('--monitoring-port <port>', 'Prometheus metrics port', '15014')
    .option('--console-port <port>', 'web console port (behind the mesh\'s token; "off" = no console)', '20001')
    .option('--tracing-sampling <pct>', 'percentage of requests the proxies trace (Istio\'s default is 1; over the mesh config\'s)')
    .option('--mesh-config <file>', "Istio's MeshConfig (extensionProviders, defaultProviders, access log, ...): the mesh ConfigMap's text, the ConfigMap, or an IstioOperator")
    .option('--kubernetes', 'take config and workloads from a Kubernetes cluster (in-cluster, or --kubeconfig)')
    .option('--kubeconfig <file>', 'kubeconfig of the cluster (default: in a pod its service account, else $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('--webhook-port <port>', 'with --kubernetes: HTTPS port of the injection and validation webhooks (Istio 15017)')
    .option('--webhook-cert-dir <dir>', 'with --webhook-port: tls.crt and tls.key of the webhooks')
    .option('--ca-plugin-dir <dir>', "sign with Istio plug-in certificates (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem), as \"sinew ca init --plugin-dir\"")
    .option('--workload-cert-ttl <duration>', 'lifetime of workload certificates, e.g. 24h or 60s (default 24h, or SINEW_WORKLOAD_CERT_TTL)')
    .action(async (opts: { stateDir?: string; host: string; apiPort: string; pushPort: string; monitoringPort: string; consolePort: string; tracingSampling?: string; meshConfig?: string; kubernetes?: boolean; kubeconfig?: string; context?: string; webhookPort?: string; webhookCertDir?: string; caPluginDir?: string; workloadCertTtl?: string }) => {
      const sampling = opts.tracingSampling === undefined ? undefined : Number(opts.tracingSampling);
      if (sampling !== undefined && !(sampling >= 0 && sampling <= 100)) {
        io.err(`--tracing-sampling must be a percentage from 0 to 100, not "${opts.tracingSampling}"\n`);
        exitCode = 2;
        return;
      }
      const { runControlPlaneCommand } = await import('./controlplane.js');
      exitCode = await runControlPlaneCommand(
        {
          stateDir: opts.stateDir,
          host: opts.host,
          apiPort: Number(opts.apiPort),
          pushPort: Number(opts.pushPort),
          monitoringPort: Number(opts.monitoringPort),
          consolePort: opts.consolePort === 'off' ? undefined : Number(opts.consolePort),
          tracingSampling: sampling,
          meshConfig: opts.meshConfig,
          kubernetes: opts.kubernetes || opts.kubeconfig !== undefined,
          kubeconfig: opts.kubeconfig,
          context: opts.context,
          webhookPort: opts.webhookPort === undefined ? undefined : Number(opts.webhookPort),
          webhookCertDir: opts.webhookCertDir,
          caPluginDir: opts.caPluginDir,
          workloadCertTtl: opts.workloadCertTtl ?? process.env.SINEW_WORKLOAD_CERT_TTL,
        },
        io,
      );
    });

  registerCaCommands(program, { Option, io, setExitCode: (code) => (exitCode = code) });
  registerKubeCommands(program, { io, setExitCode: (code) => (exitCode = code) });

  return reportErrors(async () => {
    try {
      await program.parseAsync(argv as string[]);
    } catch (err) {
      if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
      throw err;
    }
    return exitCode;
  }, io);
}

/** Our own coded errors say what to do next: printed, not a stack trace. */
async function reportErrors(run: () => Promise<number>, io: Io): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof SinewError) {
      io.err(`✘ ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
