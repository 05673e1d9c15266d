/**
 * `sinew proxy`: its options, declared once, and what it runs.
 *
 * Every sidecar is a `sinew proxy` process that runs for as long as its workload, so the
 * command starts without commander: a well-formed `sinew proxy ...` is parsed here with node's
 * util.parseArgs, and commander and the other commands' wiring are never loaded (about 1.3 MB
 * of each sidecar's memory, measured idle). Anything else (--help, an unknown option, a
 * missing value) goes to the full command line in main.ts, which registers the same options
 * from PROXY_OPTIONS and answers with commander's help and errors.
 */
import { parseArgs } from 'node:util';
import type { Io } from './output.js';

export interface ProxyCliOptions {
  config?: string;
  xds?: string;
  node?: string;
  tokenFile?: string;
  adminPort?: string;
  metricsPort?: string;
  mergedMetricsPort?: string;
  appMetricsUrl?: string;
  host: string;
  capture?: boolean;
  nodeFromEnv?: boolean;
  router?: boolean;
  healthPort?: string;
  metricsHost?: string;
  dnsResolver?: string;
}

interface ProxyOption {
  /** Commander's flag syntax: `--name <value>`. */
  flag: string;
  description: string;
  default?: string;
}

export const PROXY_COMMAND_DESCRIPTION = 'run one proxy: from a static ProxyConfig file (--config), or from the control plane (--xds with --node)';

export const PROXY_OPTIONS: readonly ProxyOption[] = [
  { flag: '--config <file>', description: 'ProxyConfig JSON file (SIGHUP re-reads it)' },
  { flag: '--xds <host:port>', description: 'control plane push address' },
  { flag: '--node <file>', description: 'JSON file naming this proxy (ProxyNode), with --xds' },
  { flag: '--token-file <file>', description: "file (mode 0600) holding the proxy's push credential from the control plane, or in a pod its service-account token (/var/run/secrets/tokens/istio-token), with --xds; read again at every reconnect" },
  { flag: '--admin-port <port>', description: 'admin port: /ready, /config_dump, /clusters, /stats, /stats/prometheus (0 = any free port)' },
  { flag: '--metrics-port <port>', description: "Prometheus port of the proxy's metrics, /stats/prometheus (Istio 15090; 0 = any free port), with --xds" },
  { flag: '--merged-metrics-port <port>', description: "Prometheus port merging the proxy's and the app's metrics (Istio 15020), with --xds" },
  { flag: '--app-metrics-url <url>', description: "the application's metrics URL, merged into --merged-metrics-port" },
  { flag: '--host <address>', description: 'address of the admin and metrics ports', default: '127.0.0.1' },
  { flag: '--node-from-env', description: 'name this proxy from the pod (POD_NAME, POD_NAMESPACE, ISTIO_META_WORKLOAD_NAME, SERVICE_ACCOUNT, labels in /etc/istio/pod/labels), instead of --node' },
  { flag: '--router', description: 'with --node-from-env: a gateway, not a sidecar' },
  { flag: '--capture', description: 'serve the connections iptables captured (sinew iptables) on 15001 and 15006, by their original destination' },
  { flag: '--metrics-host <address>', description: 'address of the metrics and health ports (default: --host); admin stays on --host' },
  { flag: '--dns-resolver <host:port,...>', description: 'DNS servers that resolve ServiceEntry DNS hosts, instead of the system resolver (default: $SINEW_DNS_RESOLVERS)' },
  { flag: '--health-port <port>', description: 'readiness (/healthz/ready) and the app\'s rewritten probes (/app-health/...), Istio 15021' },
];

/** `--admin-port <port>` -> `admin-port`. */
function longName(option: ProxyOption): string {
  const space = option.flag.indexOf(' ');
  return option.flag.slice(2, space < 0 ? undefined : space);
}

/** `--capture` and the like take no value. */
const isSwitch = (option: ProxyOption) => !option.flag.includes(' ');

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * The options of a well-formed `sinew proxy ...` command line (`argv` as process.argv), or
 * undefined for any other command line, help included.
 */
export function parseProxyArgs(argv: readonly string[]): ProxyCliOptions | undefined {
  if (argv[2] !== 'proxy') return undefined;
  const spec: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const option of PROXY_OPTIONS) spec[longName(option)] = { type: isSwitch(option) ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv.slice(3), options: spec, strict: true, allowPositionals: false }));
  } catch {
    return undefined;
  }
  const out: Record<string, string | boolean> = {};
  for (const option of PROXY_OPTIONS) {
    const value = values[longName(option)] ?? option.default;
    if (typeof value === 'string' || typeof value === 'boolean') out[camelCase(longName(option))] = value;
  }
  return out as unknown as ProxyCliOptions;
}

/** `127.0.0.1:5353,[::1]:53` -> its servers; none for an absent or empty value. */
function dnsResolvers(value: string | undefined): string[] | undefined {
  const servers = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return servers.length > 0 ? servers : undefined;
}

/** Runs the proxy the options describe; resolves with the exit code when it stops. */
export async function runProxyCli(opts: ProxyCliOptions, io: Io): Promise<number> {
  const adminPort = opts.adminPort === undefined ? undefined : Number(opts.adminPort);
  const metricsPort = opts.metricsPort === undefined ? undefined : Number(opts.metricsPort);
  const mergedMetricsPort = opts.mergedMetricsPort === undefined ? undefined : Number(opts.mergedMetricsPort);
  if (opts.config && (metricsPort !== undefined || mergedMetricsPort !== undefined)) {
    io.err('the metrics ports come with --xds; with --config, the admin port serves /stats/prometheus\n');
    return 2;
  }
  if (opts.config) {
    const { runProxyCommand } = await import('./proxy.js');
    return runProxyCommand({ config: opts.config, adminPort, adminHost: opts.host }, io);
  }
  if (opts.xds && (opts.node || opts.nodeFromEnv)) {
    const { runProxyAgentCommand } = await import('./proxy-agent.js');
    return runProxyAgentCommand(
      {
        xds: opts.xds,
        node: opts.node,
        tokenFile: opts.tokenFile,
        nodeFromEnv: opts.nodeFromEnv ? { router: opts.router === true } : undefined,
        adminPort,
        adminHost: opts.host,
        metricsPort,
        mergedMetricsPort,
        appMetricsUrl: opts.appMetricsUrl,
        capture: opts.capture === true,
        healthPort: opts.healthPort === undefined ? undefined : Number(opts.healthPort),
        metricsHost: opts.metricsHost,
        dnsResolvers: dnsResolvers(opts.dnsResolver ?? process.env.SINEW_DNS_RESOLVERS),
      },
      io,
    );
  }
  io.err('sinew proxy needs --config <file>, or --xds <host:port> with --node <file> (or --node-from-env)\n');
  return 2;
}
