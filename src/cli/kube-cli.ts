/**
 * The Kubernetes commands as commander sees them: kube-inject, install, uninstall, iptables,
 * wait-ready. The implementations (kube-commands.ts) load only when one runs.
 */
import type { Command } from 'commander';
import type { Io } from './output.js';

const collect = (value: string, previous: string[] = []) => previous.concat(value);

export function registerKubeCommands(program: Command, { io, setExitCode }: { io: Io; setExitCode(code: number): void }): void {
  program
    .command('kube-inject')
    .description('add the sidecar to the pod templates of Kubernetes workloads, offline (as the injection webhook would): kubectl apply -f <(sinew kube-inject -f app.yaml)')
    .requiredOption('-f, --filename <path>', 'file or - for stdin (repeatable)', collect)
    .option('--image <image>', 'image with the sinew command', undefined)
    .option('--control-plane <host:port>', "the control plane's push address", undefined)
    .option('--native-sidecars', 'the proxy as a native sidecar (init container with restartPolicy Always; Kubernetes 1.29 on)')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(async (opts: { filename: string[]; image?: string; controlPlane?: string; nativeSidecars?: boolean; output?: string }) => {
      const { runKubeInject } = await import('./kube-commands.js');
      setExitCode(await runKubeInject(opts, io));
    });

  program
    .command('install')
    .description('print the manifests that install the mesh into a cluster: sinew install | kubectl apply -f -')
    .option('--set <key=value>', 'change a value (repeatable); see --help-values', collect, [])
    .option('--help-values', 'list the values --set accepts, with their defaults')
    .action(async (opts: { set: string[]; helpValues?: boolean }) => {
      const { runInstall } = await import('./kube-commands.js');
      setExitCode(await runInstall(opts, io));
    });

  program
    .command('uninstall')
    .description('print what "sinew install" created, for: sinew uninstall | kubectl delete -f -')
    .option('--set <key=value>', 'the values given to install (repeatable)', collect, [])
    .action(async (opts: { set: string[] }) => {
      const { runUninstall } = await import('./kube-commands.js');
      setExitCode(await runUninstall(opts, io));
    });

  program
    .command('iptables')
    .description("capture the pod's traffic for its sidecar with istio-init's nat rules, in the current network namespace (flags as istio-iptables)")
    .option('-p, --envoy-port <port>', 'outbound connections go here', '15001')
    .option('-z, --inbound-capture-port <port>', 'inbound connections go here', '15006')
    .option('-u, --proxy-uid <uid>', "the proxy's user, never captured", '1337')
    .option('-g, --proxy-gid <gid>', "the proxy's group, never captured", '1337')
    .option('-m, --istio-inbound-interception-mode <mode>', 'REDIRECT (TPROXY is not supported)', 'REDIRECT')
    .option('-i, --istio-service-cidr <cidrs>', 'outbound CIDRs captured (* = all)', '*')
    .option('-x, --istio-service-exclude-cidr <cidrs>', 'outbound CIDRs never captured', '')
    .option('-b, --istio-inbound-ports <ports>', 'inbound ports captured (* = all)', '*')
    .option('-d, --istio-local-exclude-ports <ports>', 'inbound ports never captured', '15090,15021,15020')
    .option('-q, --istio-include-outbound-ports <ports>', 'outbound ports always captured', '')
    .option('-o, --istio-local-outbound-ports-exclude <ports>', 'outbound ports never captured', '')
    .option('-n, --dry-run', 'print the rules, change nothing')
    .option('--clean', 'remove the rules instead')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const { runIptables } = await import('./kube-commands.js');
      setExitCode(await runIptables(opts, io));
    });

  program
    .command('wait-ready')
    .description("wait until the proxy's health port answers ready (the injected postStart hook that holds the app)")
    .option('--port <port>', 'health port', '15021')
    .option('--timeout <seconds>', 'give up after', '120')
    .action(async (opts: { port: string; timeout: string }) => {
      const { runWaitReady } = await import('./kube-commands.js');
      setExitCode(await runWaitReady(opts, io));
    });
}
