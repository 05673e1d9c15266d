/**
 * `sinew up`: the whole mesh on one machine. Starts, in order:
 *
 *   1. the control plane (its own process, so killing it leaves traffic flowing);
 *   2. the config: every manifest applied through the control plane's API;
 *   3. the registrations of every replica it plans (registration.ts), then the ingress gateway
 *      and every Workload replica at once: each replica's sidecar, then — once the sidecar
 *      holds its config — its app (replica.ts);
 *
 * then prints what runs where and follows the logs. Every process is written down in the
 * state directory before it starts (state.ts) and stopped on every way out: Ctrl-C or SIGTERM
 * (`sinew down`) at any moment, start-up included, or an error; `sinew down` stops what a
 * runner that died (kill -9) left. A part that is late or crashes is reported, retried with
 * backoff and shown as not ready while the rest of the mesh keeps serving (readiness.ts); only
 * a control plane that cannot start makes `sinew up` give up (exit 1).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { SinewError } from '../core/errors.js';
import { validateInputs } from '../config/validate.js';
import { loadMeshConfigFile } from '../config/mesh-config.js';
import { formatDiagnostic } from '../api/diagnostics.js';
import type { ProxyNode } from '../api/proxy-config.js';
import { ControlPlaneClient } from './control-plane-client.js';
import { API_TOKEN_FILE, readApiTokenFile } from '../controlplane/credentials.js';
import { CA_DIR } from '../controlplane/ca-dir.js';
import { EGRESS_GATEWAY_NAME, EGRESS_GATEWAY_NAMESPACE, planEgressGateway, selectsEgressGateway, type EgressGatewayPlan } from './egress-gateway.js';
import { GATEWAY_NAME, GATEWAY_NAMESPACE, planGateway } from './gateway.js';
import { manifestInputs } from './inputs.js';
import { GatewayApiGateways } from './gateways.js';
import { MeshLauncher } from './launch.js';
import { planReplicas } from './plan.js';
import { PartWatch, waitFor } from './readiness.js';
import { RegistrationPublisher } from './registration.js';
import { allocateReplicaPorts, explainProxy, plannedRegistration, proxyReadyCheck, ReplicaRunner, type ReplicaContext } from './replica.js';
import { CONTROL_PLANE_DIR, findLeftovers, liveRunnerPid, newRunId, PROCESSES_DIR, processStartTime, ProcessRegistry, REGISTRATIONS_FILE, removeMeshFile, stopLeftovers, writeMeshFile } from './state.js';
import { leftoverConfigLine, renderSummary } from './summary.js';
import { Supervisor, SupervisorClosedError, allocatePort, describeExit, type ManagedProcess } from './supervisor.js';

export { CONTROL_PLANE_NODE_FLAGS, PROXY_NODE_FLAGS } from './launch.js';

export interface UpOptions {
  paths: string[];
  stateDir: string;
  host?: string;
  /** Listen port of the gateway's first HTTP server; `0` = pick free ports (tests). Default 8080. */
  gatewayPort?: number;
  /** The web console's port; default 20001, or a free port when `gatewayPort` is 0. `0` = a free port. */
  consolePort?: number;
  /** Run Istio's egress gateway (istio-system/istio-egressgateway) even when no Gateway in the manifests selects it. */
  egressGateway?: boolean;
  /** Istio's MeshConfig in a file, handed to the control plane (`--mesh-config`). */
  meshConfig?: string;
  /** Istio plug-in certificates for the mesh CA (`--ca-plugin-dir`). */
  caPluginDir?: string;
  /** Drop the config and registrations an earlier run left in the state directory. */
  fresh?: boolean;
  /** How long a part may take to become ready before it is reported and retried (default 30 s). */
  readyTimeoutMs?: number;
  /** Where log and progress lines go. */
  output?: (line: string) => void;
  /** Resolves when the mesh should stop (besides SIGINT and SIGTERM). */
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

const DEFAULT_READY_TIMEOUT_MS = 30_000;
/**
 * How long the control plane may take to answer at start-up. Not --ready-timeout: a control
 * plane that does not start ends the run, so it gets a generous bound (one that exits fails
 * at once, with its log lines).
 */
const CONTROL_PLANE_START_TIMEOUT_MS = 60_000;

/** The reason start-up stopped early: Ctrl-C or SIGTERM. */
class StopRequested extends Error {
  constructor() {
    super('stop requested');
  }
}

/** Runs the mesh until stopped. Returns the exit code. */
export async function runUp(options: UpOptions): Promise<number> {
  const out = options.output ?? ((line: string) => process.stdout.write(line + '\n'));
  const host = options.host ?? '127.0.0.1';
  const stateDir = resolve(options.stateDir);
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const step = (text: string) => out(`• ${text}`);
  const report = (lines: string[]) => {
    for (const line of lines) out(line);
  };

  // --- 0. manifests and the state directory ---
  step(`reading ${options.paths.join(', ')}`);
  const validated = await validateInputs(await manifestInputs(options.paths, stateDir));
  for (const d of validated.diagnostics) if (d.level === 'error') out(formatDiagnostic(d));
  if (validated.diagnostics.some((d) => d.level === 'error')) {
    out('✘ the manifests have errors (above); nothing was started');
    return 1;
  }
  // The mesh config is checked before anything starts, like the manifests. The embedded mesh
  // samples every request unless the mesh config says otherwise.
  let controlPlaneArgs = ['--tracing-sampling', '100'];
  if (options.meshConfig) {
    const meshConfig = await loadMeshConfigFile(options.meshConfig);
    for (const d of meshConfig.diagnostics) out(formatDiagnostic(d));
    if (!meshConfig.settings) {
      out(`✘ the mesh config ${options.meshConfig} has errors (above); nothing was started`);
      return 1;
    }
    controlPlaneArgs = ['--mesh-config', resolve(options.meshConfig), ...(meshConfig.settings.defaultTracingSampling === undefined ? ['--tracing-sampling', '100'] : [])];
  }
  if (options.caPluginDir) controlPlaneArgs.push('--ca-plugin-dir', resolve(options.caPluginDir));
  const resources = validated.resources;
  const plans = planReplicas(resources);
  const sinew = options.sinewBin ?? sinewEntry();
  await mkdir(stateDir, { recursive: true });
  const runner = liveRunnerPid(stateDir);
  if (runner !== undefined) {
    out(`✘ a mesh started from ${stateDir} is already running (pid ${runner}); stop it with "sinew down" or use another --state-dir`);
    return 1;
  }
  const leftovers = findLeftovers(stateDir);
  if (leftovers.alive.length > 0) {
    step(`an earlier "sinew up" from ${stateDir} is gone but left ${leftovers.alive.length} processes running; stopping them`);
  }
  await stopLeftovers(stateDir);
  if (options.gatewayPort !== 0 && !(await portFree(host, options.gatewayPort ?? 8080))) {
    out(`✘ port ${options.gatewayPort ?? 8080} on ${host} is in use, so the ingress gateway cannot listen there; choose another with --gateway-port <port> (0 = any free port)`);
    return 1;
  }
  const consolePort = options.consolePort ?? (options.gatewayPort === 0 ? 0 : 20001);
  if (consolePort !== 0 && !(await portFree(host, consolePort))) {
    out(`✘ port ${consolePort} on ${host} is in use, so the console cannot listen there; choose another with --console-port <port> (0 = any free port)`);
    return 1;
  }
  // Registrations describe the processes of one run; the config in force outlives runs (unless --fresh).
  try {
    // The mesh CA (control-plane/ca) outlives --fresh: its root is what proxies and operators trust.
    if (options.fresh) await Promise.all((await readdir(join(stateDir, CONTROL_PLANE_DIR)).catch(() => [] as string[])).filter((name) => name !== CA_DIR).map((name) => rm(join(stateDir, CONTROL_PLANE_DIR, name), { recursive: true, force: true })));
    else await rm(join(stateDir, CONTROL_PLANE_DIR, REGISTRATIONS_FILE), { force: true });
  } catch (err) {
    out(`✘ cannot prepare the state directory ${stateDir}: ${(err as Error).message}; remove it or use another --state-dir`);
    return 1;
  }

  // --- stopping, from here on: every path out stops what was started ---
  const runId = newRunId();
  const supervisor = new Supervisor({ output: out, initialBackoffMs: 1000, recorder: new ProcessRegistry(stateDir, runId) });
  const watches: PartWatch[] = [];
  const replicas: ReplicaRunner[] = [];
  let registrations: RegistrationPublisher | undefined;
  let gatewayApi: GatewayApiGateways | undefined;
  let stopping = false;
  let resolveStop!: () => void;
  const stopRequested = new Promise<void>((r) => (resolveStop = r));
  const abort = new AbortController();
  const aborted = stopRequested.then(() => {
    abort.abort();
    return Promise.reject(new StopRequested());
  });
  aborted.catch(() => undefined);
  /** An awaited start-up step that gives way to Ctrl-C / SIGTERM. */
  const unlessStopped = <T>(work: Promise<T>): Promise<T> => Promise.race([work, aborted]);
  const onSignal = () => {
    if (!stopping) {
      resolveStop();
      return;
    }
    // A second Ctrl-C while stopping: no more waiting.
    out('• stopping now (SIGKILL)');
    supervisor.killAllNow();
  };
  const killOnExit = () => supervisor.killAllNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killOnExit);
  void options.stopSignal?.then(() => resolveStop());

  const stop = async () => {
    stopping = true;
    for (const w of watches) w.stop();
    for (const r of replicas) r.stopWatching();
    registrations?.close();
    await gatewayApi?.stop();
    await supervisor.stopAll();
    removeMeshFile(stateDir);
    await rm(join(stateDir, PROCESSES_DIR), { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killOnExit);
  };

  let exitCode = 0;
  try {
    // --- 1. control plane ---
    const cpPorts = { api: await allocatePort(host), push: await allocatePort(host), monitoring: await allocatePort(host), console: consolePort || (await allocatePort(host)) };
    // The control plane makes its API token here at its first start (and keeps it): the runner
    // and the CLI are its operators and present it on every call (controlplane/credentials.ts).
    const tokenFile = join(stateDir, CONTROL_PLANE_DIR, API_TOKEN_FILE);
    writeMeshFile(stateDir, { pid: process.pid, pidStartTime: processStartTime(process.pid), runId, startedAt: new Date().toISOString(), controlPlane: { api: `${host}:${cpPorts.api}`, push: `${host}:${cpPorts.push}`, monitoring: `${host}:${cpPorts.monitoring}`, tokenFile } });
    const launcher = new MeshLauncher({ sinew, stateDir, host, runId, controlPlane: cpPorts, controlPlaneArgs });
    const client = new ControlPlaneClient(`${host}:${cpPorts.api}`, { tokenFile });
    step('starting the control plane');
    const controlPlane = supervisor.start(launcher.controlPlane());
    // Until it answers, or exits: a control plane that crashes at start (a damaged state
    // directory, say) will not do better on a restart, and nothing can run without it.
    await unlessStopped(
      waitFor(async () => controlPlane.lastExit !== undefined || (await client.healthy()), {
        timeoutMs: CONTROL_PLANE_START_TIMEOUT_MS,
        signal: abort.signal,
        failure: () => controlPlaneFailure(controlPlane, `it did not answer on ${client.base} within ${CONTROL_PLANE_START_TIMEOUT_MS / 1000}s`),
      }).catch((err: Error) => Promise.reject(err.name === 'AbortError' ? err : new SinewError('SNW_ERR_CONTROL_PLANE_START', err.message))),
    );
    if (controlPlane.lastExit) throw new SinewError('SNW_ERR_CONTROL_PLANE_START', controlPlaneFailure(controlPlane, `it exited (${describeExit(controlPlane.lastExit)})`));

    // --- 2. config ---
    const inForce = await unlessStopped(client.resources());
    const leftover = leftoverConfigLine(inForce, resources);
    step(`applying ${resources.length} resources`);
    if (leftover) step(leftover);
    await unlessStopped(client.apply(resources));
    // Istio's egress gateway, when asked for: its Service and the WorkloadEntry standing for its pod.
    let egress: EgressGatewayPlan | undefined;
    if (options.egressGateway || selectsEgressGateway(resources)) {
      egress = await planEgressGateway(resources, host);
      await unlessStopped(client.apply(egress.resources));
    }

    // --- 3. registrations, gateway, replicas ---
    const publisher = new RegistrationPublisher(client, out);
    registrations = publisher;
    const gateway = await planGateway(resources, host, options.gatewayPort);
    publisher.add(gateway.registration);
    if (egress) publisher.add(egress.registration);
    const planned = await Promise.all(plans.map(async (plan) => ({ plan, ports: await allocateReplicaPorts(plan, host) })));
    const byWorkload = new Map<string, typeof planned>();
    for (const p of planned) {
      const key = `${p.plan.namespace}/${p.plan.workload.metadata.name}`;
      byWorkload.set(key, [...(byWorkload.get(key) ?? []), p]);
    }
    for (const group of byWorkload.values()) {
      const { plan } = group[0];
      publisher.add({
        kind: 'workload',
        name: plan.workload.metadata.name,
        namespace: plan.namespace,
        labels: plan.labels,
        serviceAccount: plan.serviceAccount,
        replicas: group.map((p) => plannedRegistration(p.plan, host, p.ports)),
      });
    }
    await unlessStopped(publisher.publishAll());

    // The control plane keeps the registrations on disk, but one that arrived just before a
    // crash may not have been written yet: send them all again whenever it comes back.
    let controlPlaneWasReady = true;
    const controlPlaneWatch = new PartWatch({
      name: 'the control plane',
      process: controlPlane,
      check: async () => ((await client.healthy()) ? { ok: true, detail: 'healthy' } : { ok: false, detail: `${client.base}/healthz does not answer` }),
      readyTimeoutMs,
      onChange: (ready) => {
        if (ready && !controlPlaneWasReady) void publisher.publishAll();
        controlPlaneWasReady = ready;
      },
      report,
    });
    watches.push(controlPlaneWatch);

    /** Starts an Istio gateway's proxy (the ingress gateway, the egress gateway) and watches it like a replica. */
    const startGateway = async (label: string, namespace: string, name: string, plan: { node: ProxyNode; admin: number; metrics: number }): Promise<PartWatch> => {
      step(`starting ${label} (${namespace}/${name})`);
      const key = { kind: 'gateway' as const, namespace, name };
      const credential = await unlessStopped(client.proxyCredential(plan.node));
      const proxy = supervisor.start(launcher.proxy(name, plan.node, { admin: plan.admin, metrics: plan.metrics }, credential));
      const watch = new PartWatch({
        name: label,
        process: proxy,
        check: proxyReadyCheck(host, plan.admin),
        explain: () => explainProxy(client, plan.node.id, controlPlane),
        readyTimeoutMs,
        onChange: (ready, reason) => publisher.update(key, name, { ready, reason, restarts: proxy.restarts }),
        report,
      });
      watches.push(watch);
      return watch;
    };
    const gatewayWatch = await startGateway('the ingress gateway', GATEWAY_NAMESPACE, GATEWAY_NAME, gateway);
    const egressWatch = egress ? await startGateway('the egress gateway', EGRESS_GATEWAY_NAMESPACE, EGRESS_GATEWAY_NAME, egress) : undefined;

    // A proxy per Gateway API Gateway, now and as Gateways are applied (gateways.ts).
    gatewayApi = new GatewayApiGateways({
      client,
      host,
      output: out,
      startProxy: async (label, node, ports) => supervisor.start(launcher.proxy(label, node, ports, await client.proxyCredential(node))),
      stopProcess: (id) => supervisor.stop(id),
    });
    await unlessStopped(gatewayApi.start());

    const ctx: ReplicaContext = { host, supervisor, launcher, client, registrations: publisher, controlPlane: () => controlPlane, readyTimeoutMs, step, report };
    for (const { plan, ports } of planned) {
      const replica = new ReplicaRunner(plan, ports, ctx);
      replicas.push(replica);
      await unlessStopped(replica.start());
    }

    // --- 4. wait: every part ready (and every proxy holding the latest config), or reported late ---
    step('waiting for every replica to be ready');
    let settledAt: number | undefined;
    await unlessStopped(
      waitFor(
        async () => {
          const settled = [gatewayWatch, egressWatch].every((w) => !w || w.ready || w.reports > 0) && replicas.every((r) => r.settled);
          if (!settled) return false;
          settledAt ??= Date.now();
          await publisher.flush();
          const status = await client.status();
          const synced = [...status.workloads, ...status.gateways].every((w) => w.replicas.every((r) => !r.ready || r.proxy.sync === 'SYNCED'));
          // Parts that are late do not hold up the summary for long: they are retried meanwhile.
          const allReady = gatewayWatch.ready && (egressWatch?.ready ?? true) && replicas.every((r) => r.ready);
          return synced || (!allReady && Date.now() - settledAt > 5000);
        },
        // Every part settles on its own (ready, or reported late): this bound is never the one that acts.
        { timeoutMs: 24 * 3600_000, signal: abort.signal, failure: () => 'start-up did not settle' },
      ),
    );
    const status = await client.status().catch(() => undefined);
    const token = await readApiTokenFile(tokenFile).catch(() => '');
    if (status) out(renderSummary(status, host, gateway.port, resources, token));

    await stopRequested;
  } catch (err) {
    if (!(err instanceof StopRequested || err instanceof SupervisorClosedError)) {
      out(`✘ ${(err as Error).message}`);
      exitCode = 1;
    }
  }
  out('• stopping the mesh');
  await stop();
  out('✔ stopped');
  return exitCode;
}

/** Why the control plane could not start, with its last log lines. */
function controlPlaneFailure(controlPlane: ManagedProcess, what: string): string {
  const recent = controlPlane.recentLines.slice(-15);
  return [
    `the control plane could not start: ${what}; nothing else was started`,
    ...(recent.length ? ['its last lines:', ...recent.map((l) => `    ${l}`)] : ['it printed nothing']),
  ].join('\n  ');
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen(port, host, () => server.close(() => resolvePromise(true)));
  });
}
