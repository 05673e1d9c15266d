/**
 * `sinew up`: the whole mesh on one machine. Starts, in order:
 *
 *   1. the control plane (its own process, so killing it leaves traffic flowing);
 *   2. the config: every manifest applied through the control plane's API;
 *   3. the ingress gateway (a proxy in router mode with `istio: ingressgateway`);
 *   4. every Workload replica: first its sidecar, then — only once the sidecar holds its
 *      config (Istio's start-up race, istio/istio#11130, cannot happen) — the app, with PORT,
 *      HOST, SINEW_WORKLOAD, SINEW_NAMESPACE and HTTP_PROXY pointing at the sidecar;
 *
 * then prints what runs where and follows the logs. Crashed apps restart with backoff and are
 * marked unready meanwhile. SIGINT/SIGTERM (Ctrl-C, `sinew down`) stop everything.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import type { Resource } from '../api/resources/meta.js';
import type { ProxyNode } from '../api/proxy-config.js';
import type { ReplicaRegistration, WorkloadRegistration, MeshStatus } from '../api/mesh-status.js';
import { SinewError } from '../core/errors.js';
import { validateInputs } from '../config/validate.js';
import { formatDiagnostic } from '../api/diagnostics.js';
import { proxyIdOf } from '../controlplane/daemon.js';
import { defaultGatewayListenPort } from '../controlplane/compile.js';
import { Supervisor, allocatePort, type ManagedProcess } from './supervisor.js';
import { planReplicas, type ReplicaPlan } from './plan.js';
import { GatewayApiGateways } from './gateways.js';

export interface UpOptions {
  paths: string[];
  stateDir: string;
  host?: string;
  /** Listen port of the gateway's first HTTP server; `0` = pick free ports (tests). Default 8080. */
  gatewayPort?: number;
  /** The web console's port; default 20001, or a free port when `gatewayPort` is 0. `0` = a free port. */
  consolePort?: number;
  /** Where log and progress lines go. */
  output?: (line: string) => void;
  /** Resolves when the mesh should stop (default: SIGINT or SIGTERM). */
  stopSignal?: Promise<void>;
  /** The `sinew` entry point used to start the control plane and proxies. */
  sinewBin?: string;
}

/** bin/sinew.js of this installation, found from here whether running from src/ or dist/src/. */
function sinewEntry(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'bin', 'sinew.js');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new SinewError('SNW_ERR_NO_ENTRY', `cannot find bin/sinew.js above ${import.meta.dirname}`);
}
const GATEWAY_NAME = 'istio-ingressgateway';
const GATEWAY_NAMESPACE = 'istio-system';
/** The server ports of Istio's istio-ingressgateway Service (demo profile): http2, https, tcp, tls. */
const ISTIO_GATEWAY_SERVICE_PORTS = [80, 443, 31400, 15443];

interface RunningReplica {
  plan: ReplicaPlan;
  registration: ReplicaRegistration;
  app?: ManagedProcess;
  proxy: ManagedProcess;
  probeTimer?: NodeJS.Timeout;
}

/** Runs the mesh until stopped. Returns the exit code. */
export async function runUp(options: UpOptions): Promise<number> {
  const out = options.output ?? ((line: string) => process.stdout.write(line + '\n'));
  const host = options.host ?? '127.0.0.1';
  const sinew = options.sinewBin ?? sinewEntry();
  const stateDir = resolve(options.stateDir);
  const step = (text: string) => out(`• ${text}`);

  // --- 0. manifests ---
  step(`reading ${options.paths.join(', ')}`);
  const validated = await validateInputs(options.paths);
  for (const d of validated.diagnostics) if (d.level === 'error') out(formatDiagnostic(d));
  if (validated.diagnostics.some((d) => d.level === 'error')) {
    out('✘ the manifests have errors (above); nothing was started');
    return 1;
  }
  const resources = validated.resources;
  const plans = planReplicas(resources);
  await mkdir(stateDir, { recursive: true });
  const running = await readMeshPid(stateDir);
  if (running !== undefined) {
    out(`✘ a mesh started from ${stateDir} is already running (pid ${running}); stop it with "sinew down" or use another --state-dir`);
    return 1;
  }
  if (options.gatewayPort !== 0 && !(await portFree(host, options.gatewayPort ?? 8080))) {
    out(`✘ port ${options.gatewayPort ?? 8080} on ${host} is in use, so the ingress gateway cannot listen there; choose another with --gateway-port <port> (0 = any free port)`);
    return 1;
  }

  const supervisor = new Supervisor({ output: out, initialBackoffMs: 1000 });
  const replicas: RunningReplica[] = [];
  let gatewayApi: GatewayApiGateways | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await gatewayApi?.stop();
    for (const r of replicas) if (r.probeTimer) clearInterval(r.probeTimer);
    await supervisor.stopAll();
    await rm(join(stateDir, 'mesh.json'), { force: true });
  };

  try {
    // --- 1. control plane ---
    const consolePort = options.consolePort ?? (options.gatewayPort === 0 ? 0 : 20001);
    if (consolePort !== 0 && !(await portFree(host, consolePort))) throw new SinewError('SNW_ERR_PORT', `port ${consolePort} on ${host} is in use, so the console cannot listen there; choose another with --console-port <port> (0 = any free port)`);
    const cp = { api: await allocatePort(host), push: await allocatePort(host), monitoring: await allocatePort(host), console: consolePort || (await allocatePort(host)) };
    step('starting the control plane');
    supervisor.start({
      id: 'control-plane',
      command: process.execPath,
      args: [sinew, 'controlplane', '--state-dir', join(stateDir, 'control-plane'), '--host', host, '--api-port', String(cp.api), '--push-port', String(cp.push), '--monitoring-port', String(cp.monitoring), '--console-port', String(cp.console), '--tracing-sampling', '100'],
      cwd: process.cwd(),
      env: childEnv({ SINEW_LOG_LEVEL: process.env.SINEW_LOG_LEVEL ?? 'warn' }),
    });
    const api = `http://${host}:${cp.api}`;
    await waitFor(() => httpOk(`${api}/healthz`), 30_000, 'the control plane did not become ready');
    await writeFile(
      join(stateDir, 'mesh.json'),
      JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), controlPlane: { api: `${host}:${cp.api}`, push: `${host}:${cp.push}`, monitoring: `${host}:${cp.monitoring}` } }, null, 2),
    );

    // --- 2. config ---
    step(`applying ${resources.length} resources`);
    const applied = await fetch(`${api}/api/v1/apply`, { method: 'POST', body: resources.map((r) => JSON.stringify(manifestOf(r))).join('\n---\n') });
    if (applied.status !== 200) throw new SinewError('SNW_ERR_APPLY', `the control plane refused the manifests: ${await applied.text()}`);

    // --- 3. gateway ---
    step(`starting the ingress gateway (${GATEWAY_NAMESPACE}/${GATEWAY_NAME})`);
    // Every Gateway server port gets a listen port: the first HTTP one (Istio's samples use
    // 8080) listens on --gateway-port; the others as the control plane's default rule says
    // (80 -> 8080, 443 -> 8443, 1024 and up as is), or on free ports when --gateway-port is 0.
    const serverPorts = gatewayServerPorts(resources);
    const gatewayPorts: Record<string, { inbound: number; app: number }> = {};
    const gatewayPort = options.gatewayPort === 0 ? await allocatePort(host) : options.gatewayPort ?? 8080;
    for (const [i, serverPort] of serverPorts.entries()) {
      const listen = i === 0 ? gatewayPort : options.gatewayPort === 0 ? await allocatePort(host) : defaultGatewayListenPort(serverPort);
      gatewayPorts[String(serverPort)] = { inbound: listen, app: listen };
    }
    // With free ports asked for, the ports Istio's ingress gateway Service exposes get free
    // ports too, so a Gateway applied later (tcp-echo's 31400, say) does not fall back to a
    // fixed port that may be taken.
    if (options.gatewayPort === 0) {
      for (const serverPort of ISTIO_GATEWAY_SERVICE_PORTS) {
        if (!gatewayPorts[String(serverPort)]) {
          const listen = await allocatePort(host);
          gatewayPorts[String(serverPort)] = { inbound: listen, app: listen };
        }
      }
    }
    const gatewayAdmin = await allocatePort(host);
    const gatewayMetrics = await allocatePort(host);
    const gatewayNode: ProxyNode = {
      id: proxyIdOf({ kind: 'gateway', namespace: GATEWAY_NAMESPACE }, GATEWAY_NAME),
      mode: 'router',
      workload: GATEWAY_NAME,
      namespace: GATEWAY_NAMESPACE,
      labels: { istio: 'ingressgateway', app: GATEWAY_NAME },
      serviceAccount: 'istio-ingressgateway-service-account',
    };
    const gatewayRegistration: WorkloadRegistration = {
      kind: 'gateway',
      name: GATEWAY_NAME,
      namespace: GATEWAY_NAMESPACE,
      labels: gatewayNode.labels,
      serviceAccount: gatewayNode.serviceAccount,
      replicas: [
        {
          id: GATEWAY_NAME,
          host,
          ports: gatewayPorts,
          ready: true,
          restarts: 0,
          proxy: {
            inbound: `${host}:${gatewayPort}`,
            admin: `${host}:${gatewayAdmin}`,
            metrics: `${host}:${gatewayMetrics}`,
            servers: Object.fromEntries(Object.entries(gatewayPorts).map(([serverPort, p]) => [serverPort, `${host}:${p.inbound}`])),
          },
        },
      ],
    };
    await register(api, gatewayRegistration);
    await startProxy(supervisor, sinew, stateDir, GATEWAY_NAME, gatewayNode, `${host}:${cp.push}`, { admin: gatewayAdmin, metrics: gatewayMetrics }, host);
    await waitFor(() => httpOk(`http://${host}:${gatewayAdmin}/ready`), 30_000, 'the ingress gateway did not receive its config');

    // --- 3b. a proxy per Gateway API Gateway, now and as Gateways are applied (gateways.ts) ---
    gatewayApi = new GatewayApiGateways({
      api,
      host,
      output: out,
      startProxy: (label, node, ports) => startProxy(supervisor, sinew, stateDir, label, node, `${host}:${cp.push}`, ports, host),
      stopProcess: (id) => supervisor.stop(id),
    });
    await gatewayApi.start();

    // --- 4. workloads ---
    const byWorkload = new Map<string, RunningReplica[]>();
    await Promise.all(
      plans.map(async (plan) => {
        const running = await startReplica(plan);
        replicas.push(running);
        const key = `${plan.namespace}/${plan.workload.metadata.name}`;
        byWorkload.set(key, [...(byWorkload.get(key) ?? []), running]);
      }),
    );

    async function startReplica(plan: ReplicaPlan): Promise<RunningReplica> {
      const ports: Record<string, { inbound: number; app: number }> = {};
      for (const containerPort of plan.containerPorts) ports[String(containerPort)] = { inbound: await allocatePort(host), app: await allocatePort(host) };
      const outbound = await allocatePort(host);
      const admin = await allocatePort(host);
      const metrics = await allocatePort(host);
      const first = plan.containerPorts[0];
      const registration: ReplicaRegistration = {
        id: plan.id,
        host,
        app: first !== undefined ? `${host}:${ports[String(first)].app}` : undefined,
        ports,
        ready: false,
        restarts: 0,
        proxy: { inbound: first !== undefined ? `${host}:${ports[String(first)].inbound}` : undefined, outbound: `${host}:${outbound}`, admin: `${host}:${admin}`, metrics: `${host}:${metrics}` },
      };
      const node: ProxyNode = {
        id: proxyIdOf({ kind: 'workload', namespace: plan.namespace }, plan.id),
        mode: 'sidecar',
        workload: plan.workload.metadata.name,
        namespace: plan.namespace,
        labels: plan.labels,
        serviceAccount: plan.serviceAccount,
      };
      const running: RunningReplica = { plan, registration, proxy: undefined as unknown as ManagedProcess };
      await publish(plan, running);
      step(`starting ${plan.label}: sidecar`);
      running.proxy = await startProxy(supervisor, sinew, stateDir, plan.label, node, `${host}:${cp.push}`, { admin, metrics }, host);
      await waitFor(() => httpOk(`http://${host}:${admin}/ready`), 30_000, `the sidecar of ${plan.label} did not receive its config`);
      // The sidecar holds its config: only now does the app start.
      step(`starting ${plan.label}: app`);
      const proxyUrl = `http://${host}:${outbound}`;
      running.app = supervisor.start({
        id: plan.label,
        command: plan.command,
        args: plan.args,
        cwd: plan.cwd,
        env: childEnv({
          ...plan.env,
          PORT: first !== undefined ? String(ports[String(first)].app) : '',
          HOST: host,
          SINEW_WORKLOAD: plan.workload.metadata.name,
          SINEW_NAMESPACE: plan.namespace,
          HTTP_PROXY: proxyUrl,
          http_proxy: proxyUrl,
          NO_PROXY: '',
          no_proxy: '',
        }),
      });
      running.app.on('exit', () => {
        if (stopping) return;
        running.registration = { ...running.registration, ready: false, restarts: running.app?.restarts ?? 0 };
        void publish(plan, running);
      });
      running.app.on('state', (state: string) => {
        if (state === 'running') running.registration = { ...running.registration, restarts: running.app?.restarts ?? 0 };
      });
      watchReadiness(running);
      return running;
    }

    async function publish(plan: ReplicaPlan, running: RunningReplica): Promise<void> {
      const key = `${plan.namespace}/${plan.workload.metadata.name}`;
      const siblings = (byWorkload.get(key) ?? []).filter((r) => r !== running).map((r) => r.registration);
      await register(api, {
        kind: 'workload',
        name: plan.workload.metadata.name,
        namespace: plan.namespace,
        labels: plan.labels,
        serviceAccount: plan.serviceAccount,
        replicas: [...siblings, running.registration].sort((a, b) => (a.id < b.id ? -1 : 1)),
      }).catch((err: Error) => out(`[sinew] could not update ${plan.id} in the control plane: ${err.message}`));
    }

    /** Probes the app as Kubernetes would and publishes readiness changes. */
    function watchReadiness(running: RunningReplica): void {
      const { plan } = running;
      const probe = plan.probe;
      const appPort = (containerPort: number) => running.registration.ports[String(containerPort)]?.app;
      let successes = 0;
      let failures = 0;
      const check = async () => {
        if (stopping || running.app?.state !== 'running') return;
        let ok: boolean;
        if (!probe) ok = true;
        else if (probe.kind === 'http') ok = await httpOk(`http://${host}:${appPort(probe.containerPort)}${probe.path}`, probe.timeoutMs);
        else ok = await tcpOk(host, appPort(probe.containerPort) ?? 0, probe.timeoutMs);
        if (ok) {
          successes++;
          failures = 0;
        } else {
          failures++;
          successes = 0;
        }
        const ready = running.registration.ready;
        if (!ready && successes >= (probe?.successThreshold ?? 1)) {
          running.registration = { ...running.registration, ready: true };
          await publish(plan, running);
        } else if (ready && failures >= (probe?.failureThreshold ?? 3)) {
          running.registration = { ...running.registration, ready: false };
          await publish(plan, running);
        }
      };
      // Fast at first so the mesh is ready quickly, then at the probe's period.
      const period = Math.max(100, Math.min(probe?.periodMs ?? 1000, 1000));
      running.probeTimer = setInterval(() => void check(), period);
      running.probeTimer.unref();
    }

    step('waiting for every replica to be ready');
    await waitFor(
      async () => {
        const status = (await (await fetch(`${api}/api/v1/status`)).json()) as MeshStatus;
        return [...status.workloads, ...status.gateways].every((w) => w.replicas.every((r) => r.ready && r.proxy.sync === 'SYNCED'));
      },
      60_000,
      'not every replica became ready; see the log lines above',
    );
    const status = (await (await fetch(`${api}/api/v1/status`)).json()) as MeshStatus;
    const token = (await readFile(join(stateDir, 'control-plane', 'api-token'), 'utf8').catch(() => '')).trim();
    out(renderSummary(status, host, gatewayPort, resources, token));
  } catch (err) {
    out(`✘ ${(err as Error).message}`);
    await stop();
    return 1;
  }

  await (options.stopSignal ?? signalled());
  out('• stopping the mesh');
  await stop();
  out('✔ stopped');
  return 0;
}

/**
 * V8 flags of every proxy process `sinew up` starts (the benchmarks run proxies with the same).
 * A 2 MB semi-space caps the young generation that V8 otherwise grows to 16 MB per semi-space
 * under load. Against V8's default, a 4 MB cap lowered a proxy's peak RSS under load by ~22 MB
 * (91 -> 69 MB) for ~2% more CPU per request at saturation; 2 MB saves ~4 MB more at 1000
 * req/s for ~1% more again (measured side by side, two proxies on one core). 1 MB would save
 * ~2.5 MB more but cost ~4%, and V8's --optimize-for-size ~35%.
 *
 * One V8 worker thread instead of node's four: a sidecar gets about one core's worth of CPU,
 * where more threads for concurrent GC and compilation only take turns, and each thread costs
 * a stack and a malloc arena. It saves ~1.7 MB at 1000 req/s for ~1% more CPU per request at
 * saturation (within the noise of the side-by-side runs).
 */
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--v8-pool-size=1'];

/**
 * Starts a proxy process that takes its config from the control plane, with its admin port
 * and its Prometheus port (Istio's 15090, `/stats/prometheus`); its log lines are prefixed
 * `<label>/proxy`.
 */
async function startProxy(supervisor: Supervisor, sinew: string, stateDir: string, label: string, node: ProxyNode, push: string, ports: { admin: number; metrics: number }, host: string): Promise<ManagedProcess> {
  const nodeFile = join(stateDir, 'proxies', `${node.id.replace(/[^\w.-]/g, '_')}.json`);
  await mkdir(join(stateDir, 'proxies'), { recursive: true });
  await writeFile(nodeFile, JSON.stringify(node, null, 2));
  return supervisor.start({
    id: `${label}/proxy`,
    command: process.execPath,
    args: [...PROXY_NODE_FLAGS, sinew, 'proxy', '--xds', push, '--node', nodeFile, '--admin-port', String(ports.admin), '--metrics-port', String(ports.metrics), '--host', host],
    cwd: process.cwd(),
    env: childEnv({ SINEW_LOG_LEVEL: process.env.SINEW_LOG_LEVEL ?? 'warn' }),
  });
}

function renderSummary(status: MeshStatus, host: string, gatewayPort: number, resources: readonly Resource[], token: string): string {
  const lines = ['', '✔ the mesh is up', ''];
  const rows = [...status.gateways, ...status.workloads].flatMap((w) => w.replicas.map((r) => [`${w.namespace}/${w.name}`, r.id, r.app ?? '-', r.proxy.inbound ?? '-', r.proxy.outbound ?? '-', r.proxy.admin, r.proxy.metrics ?? '-']));
  const header = ['WORKLOAD', 'REPLICA', 'APP', 'SIDECAR IN', 'SIDECAR OUT', 'ADMIN', 'METRICS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) lines.push('  ' + row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  lines.push('');
  const gatewayHost = host === '127.0.0.1' ? 'localhost' : host;
  const paths = exposedPaths(resources);
  lines.push('Open:');
  for (const p of paths.length ? paths : ['/']) lines.push(`  http://${gatewayHost}:${gatewayPort}${p}`);
  const servers = status.gateways[0]?.replicas[0]?.proxy.servers ?? {};
  const others = gatewayServerPorts(resources).filter((port) => servers[String(port)] && servers[String(port)] !== `${host}:${gatewayPort}`);
  if (others.length) lines.push(`Other gateway ports: ${others.map((port) => `${port} -> ${servers[String(port)]}`).join(', ')}`);
  lines.push(`Control plane API: http://${status.controlPlane.api}   metrics: http://${status.controlPlane.monitoring}/metrics`);
  if (status.controlPlane.console) lines.push(`Console: http://${status.controlPlane.console.replace(/^127\.0\.0\.1:/, 'localhost:')}/?token=${token}`);
  lines.push('Try: sinew status · sinew apply -f <file> · sinew exec <workload> -- curl http://<service>:<port>/ · Ctrl-C or sinew down to stop');
  lines.push('');
  return lines.join('\n');
}

/** Server ports of the Gateways the ingress gateway runs, HTTP ones first. */
function gatewayServerPorts(resources: readonly Resource[]): number[] {
  const http: number[] = [];
  const other: number[] = [];
  for (const r of resources) {
    if (r.kind !== 'Gateway' || r.group !== 'networking.istio.io') continue;
    const spec = r.spec as { selector?: Record<string, string>; servers?: { port?: { number?: number; protocol?: string } }[] };
    if (spec.selector && spec.selector.istio !== 'ingressgateway') continue;
    for (const server of spec.servers ?? []) {
      const port = server.port?.number;
      if (port === undefined) continue;
      (/^HTTP$/i.test(server.port?.protocol ?? '') ? http : other).push(port);
    }
  }
  return [...new Set([...http.sort((a, b) => a - b), ...other.sort((a, b) => a - b)])];
}

/** Exact paths that gateway-bound VirtualServices expose (for the URLs to print). */
function exposedPaths(resources: readonly Resource[]): string[] {
  const paths: string[] = [];
  for (const r of resources) {
    if (r.kind !== 'VirtualService') continue;
    const spec = r.spec as { gateways?: string[]; http?: { match?: { uri?: { exact?: string } }[] }[] };
    if (!spec.gateways?.some((g) => g !== 'mesh')) continue;
    for (const rule of spec.http ?? []) for (const m of rule.match ?? []) if (m.uri?.exact && !/log(in|out)/.test(m.uri.exact)) paths.push(m.uri.exact);
  }
  return [...new Set(paths)];
}

function manifestOf(r: Resource): Record<string, unknown> {
  return { apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec };
}

async function register(api: string, registration: WorkloadRegistration): Promise<void> {
  const res = await fetch(`${api}/api/v1/registrations/${registration.kind}/${registration.namespace}/${registration.name}`, {
    method: 'PUT',
    body: JSON.stringify(registration),
  });
  if (res.status !== 200) throw new SinewError('SNW_ERR_REGISTER', `registration of ${registration.name} refused: ${await res.text()}`);
}

function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(https?_proxy|HTTPS?_PROXY|NO_PROXY|no_proxy)$/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

async function httpOk(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}

function tcpOk(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, failure: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new SinewError('SNW_ERR_TIMEOUT', failure);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pid of a live mesh started from this state directory, if any. */
async function readMeshPid(stateDir: string): Promise<number | undefined> {
  try {
    const { pid } = JSON.parse(await readFile(join(stateDir, 'mesh.json'), 'utf8')) as { pid: number };
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

function signalled(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
