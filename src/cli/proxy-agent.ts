/**
 * `sinew proxy --xds host:port --node node.json --token-file proxy.token`: a proxy that takes
 * its config from the control plane (what `sinew up` starts beside every workload), until
 * SIGINT/SIGTERM. The token file holds the push credential the runner got for this node; it
 * must be readable by its owner only, like an SSH key. In a pod (what injection runs):
 * `--node-from-env` names it from the pod, `--capture` serves what iptables captured,
 * `--health-port` answers kubelet's probes (Istio's 15021).
 */
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import type { ProxyNode } from '../api/proxy-config.js';
import { createLogger } from '../core/logger.js';
import { startProxyAgent, type ProxyAgent } from '../proxy/agent.js';
import type { Io } from './output.js';

export interface ProxyAgentCommandOptions {
  xds: string;
  /** Path of a JSON file holding the ProxyNode. */
  node?: string;
  /** Name the proxy from the pod's environment instead. */
  nodeFromEnv?: { router: boolean };
  /** Path of the file holding the proxy's push credential (mode 0600). */
  tokenFile?: string;
  adminPort?: number;
  adminHost?: string;
  metricsPort?: number;
  mergedMetricsPort?: number;
  appMetricsUrl?: string;
  drainMs?: number;
  capture?: boolean;
  healthPort?: number;
  /** Address of the metrics and health ports (default: adminHost). */
  metricsHost?: string;
  /** DNS servers for ServiceEntry DNS resolution (`--dns-resolver`). */
  dnsResolvers?: string[];
}

/**
 * The node of a proxy in a pod, from the downward API (injection sets the variables and
 * mounts the labels): the id the control plane's pod layouts use, `sidecar~<pod>.<namespace>`.
 */
export async function nodeFromEnvironment(env: NodeJS.ProcessEnv, router: boolean, labelsFile = '/etc/istio/pod/labels'): Promise<ProxyNode> {
  const pod = env.POD_NAME;
  const namespace = env.POD_NAMESPACE;
  if (!pod || !namespace) throw new Error('POD_NAME and POD_NAMESPACE must be set (the injected container sets them from the downward API)');
  const labels: Record<string, string> = {};
  const text = await readFile(labelsFile, 'utf8').catch(() => '');
  // The downward API writes `key="value"` lines, values quoted as Go strings.
  for (const line of text.split('\n')) {
    const m = /^([^=]+)="(.*)"$/.exec(line.trim());
    if (m) labels[m[1]!] = JSON.parse(`"${m[2]}"`) as string;
  }
  return {
    id: `${router ? 'router' : 'sidecar'}~${pod}.${namespace}`,
    mode: router ? 'router' : 'sidecar',
    workload: env.ISTIO_META_WORKLOAD_NAME || pod,
    namespace,
    labels,
    ...(env.SERVICE_ACCOUNT ? { serviceAccount: env.SERVICE_ACCOUNT } : {}),
  };
}

/** A JSON Web Token's compact form (RFC 7519 §3): a header that is base64url JSON naming its `alg`, a payload, a signature. */
function isJwt(text: string): boolean {
  const parts = text.split('.');
  if (parts.length !== 3) return false;
  try {
    return typeof (JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

export async function runProxyAgentCommand(opts: ProxyAgentCommandOptions, io: Io): Promise<number> {
  let node: ProxyNode;
  try {
    node = opts.nodeFromEnv ? await nodeFromEnvironment(process.env, opts.nodeFromEnv.router) : (JSON.parse(await readFile(opts.node!, 'utf8')) as ProxyNode);
  } catch (err) {
    io.err(`✘ cannot name this proxy${opts.node ? ` from ${opts.node}` : ''}: ${(err as Error).message}\n`);
    return 1;
  }
  let credential: string | undefined;
  if (opts.tokenFile !== undefined) {
    try {
      credential = (await readFile(opts.tokenFile, 'utf8')).trim();
      // A push credential from a runner is kept like an SSH key. A pod's service-account
      // token (a JWT, RFC 7519) is kubelet's file, on a volume of the pod's own, with the mode
      // kubelet gives it (0644 unless every container runs as one user); it is bound to its
      // audience and expires.
      const mode = (await stat(opts.tokenFile)).mode & 0o777;
      if (mode & 0o077 && !isJwt(credential)) {
        io.err(`✘ ${opts.tokenFile} holds a credential but others may read it (mode ${mode.toString(8)}); make it owner-only: chmod 600 ${opts.tokenFile}\n`);
        return 1;
      }
    } catch (err) {
      io.err(`✘ cannot read the proxy's credential from ${opts.tokenFile}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const logger = createLogger({ scope: node.id });
  if (credential === undefined) logger.warn('no --token-file: a control plane that checks credentials will refuse this proxy');
  let capture;
  if (opts.capture) {
    const { loadOriginalDestination } = await import('../proxy/original-destination.js');
    try {
      capture = { outboundPort: 15001, inboundPort: 15006, originalDestination: loadOriginalDestination() };
    } catch (err) {
      io.err(`✘ ${(err as Error).message}\n`);
      return 1;
    }
  }
  const tokenFile = opts.tokenFile;
  const agent = await startProxyAgent({
    xds: opts.xds,
    node,
    // Read again at every connect: kubelet renews a pod's token in place (at 80 % of its
    // lifetime), and a reconnect must not present the expired one.
    credential:
      tokenFile === undefined
        ? undefined
        : () => {
            try {
              credential = readFileSync(tokenFile, 'utf8').trim();
            } catch (err) {
              logger.warn('cannot read the credential again; presenting the last one read', { file: tokenFile, error: (err as Error).message });
            }
            return credential;
          },
    adminPort: opts.adminPort,
    adminHost: opts.adminHost,
    metricsHost: opts.metricsHost,
    metricsPort: opts.metricsPort,
    mergedMetricsPort: opts.mergedMetricsPort,
    appMetricsUrl: opts.appMetricsUrl,
    capture,
    dnsResolvers: opts.dnsResolvers,
    logger,
  });
  const health = opts.healthPort === undefined ? undefined : await startHealthServer(agent, opts.healthPort, opts.metricsHost ?? opts.adminHost ?? '127.0.0.1', process.env.ISTIO_KUBE_APP_PROBERS);
  logger.info('proxy started', { admin: agent.proxy.adminAddress()?.port, metrics: agent.proxy.metricsAddress()?.port, controlPlane: opts.xds });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  health?.close();
  await agent.close({ drainMs: opts.drainMs ?? 5_000 });
  return 0;
}

/**
 * Istio's 15021: `/healthz/ready` answers 200 once the proxy holds a config, and each
 * `/app-health/<container>/<kind>` runs the app's original HTTP probe (injection moved it
 * here, ISTIO_KUBE_APP_PROBERS) against 127.0.0.1 and answers with its status.
 */
async function startHealthServer(agent: ProxyAgent, port: number, host: string, probersJson: string | undefined): Promise<http.Server> {
  const probers = probersJson ? (JSON.parse(probersJson) as Record<string, { httpGet: { path: string; port: number; scheme?: string; httpHeaders?: { name: string; value: string }[] }; timeoutSeconds?: number }>) : {};
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/healthz/ready') {
      const ready = agent.proxy.version !== undefined;
      res.writeHead(ready ? 200 : 503).end(ready ? 'ready\n' : 'no config yet\n');
      return;
    }
    const probe = probers[path];
    if (!probe) {
      res.writeHead(404).end('unknown probe\n');
      return;
    }
    const headers = Object.fromEntries((probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]));
    const upstream = http.get({ host: '127.0.0.1', port: probe.httpGet.port, path: probe.httpGet.path, headers, timeout: (probe.timeoutSeconds ?? 1) * 1000 }, (r) => {
      r.resume();
      res.writeHead(r.statusCode ?? 500).end();
    });
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(503).end('probe failed\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, () => resolve()));
  return server;
}
