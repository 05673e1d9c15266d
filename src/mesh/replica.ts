/**
 * One replica of a Workload, or the ingress gateway, as the runner runs it: its proxy, then —
 * once the proxy holds its config, so that Istio's start-up race (istio/istio#11130) cannot
 * happen — its app. Each process is watched (readiness.ts) for as long as the mesh runs, and
 * every change of readiness goes to the control plane through the replica's registration, so
 * `sinew status` shows it and callers stop sending to a replica that cannot serve.
 */
import type { ProxyNode } from '../api/proxy-config.js';
import type { ReplicaRegistration } from '../api/mesh-status.js';
import type { ControlPlaneClient } from './control-plane-client.js';
import type { MeshLauncher } from './launch.js';
import type { ReplicaPlan } from './plan.js';
import { PartWatch, httpCheck, tcpCheck, type Check } from './readiness.js';
import type { RegistrationPublisher } from './registration.js';
import { allocatePort, SupervisorClosedError, type ManagedProcess, type Supervisor } from './supervisor.js';

/** What every replica needs from the runner. */
export interface ReplicaContext {
  host: string;
  supervisor: Supervisor;
  launcher: MeshLauncher;
  client: ControlPlaneClient;
  registrations: RegistrationPublisher;
  /** The control plane process (its log lines explain a proxy that gets no config). */
  controlPlane: () => ManagedProcess | undefined;
  readyTimeoutMs: number;
  /** A progress line (`• starting ...`). */
  step: (text: string) => void;
  /** A multi-line report (a late part). */
  report: (lines: string[]) => void;
}

export interface ReplicaPorts {
  /** containerPort -> the sidecar's inbound listener and the app's own port. */
  ports: Record<string, { inbound: number; app: number }>;
  outbound: number;
  admin: number;
  metrics: number;
}

export async function allocateReplicaPorts(plan: ReplicaPlan, host: string): Promise<ReplicaPorts> {
  const ports: ReplicaPorts['ports'] = {};
  for (const containerPort of plan.containerPorts) ports[String(containerPort)] = { inbound: await allocatePort(host), app: await allocatePort(host) };
  return { ports, outbound: await allocatePort(host), admin: await allocatePort(host), metrics: await allocatePort(host) };
}

/** The registration of a replica that is about to start: every address known, not ready yet. */
export function plannedRegistration(plan: ReplicaPlan, host: string, p: ReplicaPorts): ReplicaRegistration {
  const first = plan.containerPorts[0];
  return {
    id: plan.id,
    host,
    app: first !== undefined ? `${host}:${p.ports[String(first)].app}` : undefined,
    ports: p.ports,
    ready: false,
    reason: 'starting',
    restarts: 0,
    proxy: { inbound: first !== undefined ? `${host}:${p.ports[String(first)].inbound}` : undefined, outbound: `${host}:${p.outbound}`, admin: `${host}:${p.admin}`, metrics: `${host}:${p.metrics}` },
  };
}

/**
 * Why a proxy has no config, as the control plane sees it: its push state, and the control
 * plane's own log lines about it (a config it could not build, say).
 */
export async function explainProxy(client: ControlPlaneClient, nodeId: string, controlPlane: ManagedProcess | undefined): Promise<string[]> {
  const lines: string[] = [];
  try {
    const proxy = (await client.proxies()).find((p) => p.id === nodeId);
    if (!proxy) lines.push(`the control plane has no connection from ${nodeId}`);
    else if (proxy.sync === 'NACKED') lines.push(`${nodeId} rejected config ${proxy.versionSent}: ${proxy.lastNack ?? '(no reason given)'}`);
    else if (!proxy.versionSent) lines.push(`${nodeId} is connected, but the control plane has sent it no config`);
    else lines.push(`${nodeId} is connected; config ${proxy.versionSent} sent, ${proxy.versionAcked ? `${proxy.versionAcked} acknowledged` : 'none acknowledged'}`);
  } catch (err) {
    lines.push(`the control plane does not answer (${(err as Error).message})`);
  }
  const mentions = (controlPlane?.recentLines ?? []).filter((l) => l.includes(nodeId)).slice(-3);
  if (mentions.length) lines.push('the control plane said:', ...mentions.map((l) => `  ${l}`));
  return lines;
}

/** The proxy's admin `/ready`: 200 once it holds a config. */
export function proxyReadyCheck(host: string, admin: number): () => Promise<Check> {
  return async () => {
    const result = await httpCheck(`http://${host}:${admin}/ready`);
    return result.ok ? result : { ok: false, detail: /answered 503/.test(result.detail) ? 'it has no config from the control plane yet' : `its admin port does not answer (${result.detail})` };
  };
}

/** How long an app without a readinessProbe must run before it counts as ready. */
const MIN_READY_UPTIME_MS = 1000;

export class ReplicaRunner {
  sidecar?: ManagedProcess;
  app?: ManagedProcess;
  private sidecarWatch?: PartWatch;
  private appWatch?: PartWatch;
  private readonly workloadKey: { kind: 'workload'; namespace: string; name: string };

  constructor(
    readonly plan: ReplicaPlan,
    private readonly ports: ReplicaPorts,
    private readonly ctx: ReplicaContext,
  ) {
    this.workloadKey = { kind: 'workload', namespace: plan.namespace, name: plan.workload.metadata.name };
  }

  get nodeId(): string {
    return `sidecar~${this.plan.id}.${this.plan.namespace}`;
  }

  /** Ready to serve: the sidecar holds its config and the app passes its probe. */
  get ready(): boolean {
    return Boolean(this.sidecarWatch?.ready && this.appWatch?.ready);
  }

  /** Ready, or reported as late: start-up has nothing more to wait for. */
  get settled(): boolean {
    const sidecar = this.sidecarWatch;
    if (!sidecar) return false;
    if (!sidecar.ready) return sidecar.reports > 0;
    const app = this.appWatch;
    return Boolean(app && (app.ready || app.reports > 0));
  }

  /** Starts the sidecar, with the push credential minted for it; the app follows once the sidecar holds its config. */
  async start(): Promise<void> {
    const { plan, ports, ctx } = this;
    const node: ProxyNode = {
      id: this.nodeId,
      mode: 'sidecar',
      workload: plan.workload.metadata.name,
      namespace: plan.namespace,
      labels: plan.labels,
      serviceAccount: plan.serviceAccount,
    };
    ctx.step(`starting ${plan.label}: sidecar`);
    const credential = await ctx.client.proxyCredential(node);
    const sidecar = ctx.supervisor.start(ctx.launcher.proxy(plan.label, node, { admin: ports.admin, metrics: ports.metrics }, credential));
    this.sidecar = sidecar;
    this.sidecarWatch = new PartWatch({
      name: `${plan.label}'s sidecar`,
      process: sidecar,
      check: proxyReadyCheck(ctx.host, ports.admin),
      explain: () => explainProxy(ctx.client, this.nodeId, ctx.controlPlane()),
      readyTimeoutMs: ctx.readyTimeoutMs,
      onChange: (ready) => {
        if (ready && !this.app) this.startApp();
        this.publish();
      },
      report: ctx.report,
    });
  }

  private startApp(): void {
    const { plan, ports, ctx } = this;
    const first = plan.containerPorts[0];
    ctx.step(`starting ${plan.label}: app`);
    try {
      const appPorts = Object.fromEntries(Object.entries(ports.ports).map(([containerPort, p]) => [containerPort, p.app]));
      this.app = ctx.supervisor.start(ctx.launcher.app(plan, first !== undefined ? ports.ports[String(first)].app : undefined, `${ctx.host}:${ports.outbound}`, appPorts));
    } catch (err) {
      if (err instanceof SupervisorClosedError) return;
      throw err;
    }
    const probe = plan.probe;
    const appPort = (containerPort: number) => ports.ports[String(containerPort)]?.app ?? 0;
    const app = this.app;
    const check = (): Promise<Check> => {
      // Without a probe, running is ready — once it has stayed up a moment, so that an app
      // that exits at once is a crash loop, not one that keeps coming ready.
      if (!probe) return Promise.resolve(app.uptimeMs() >= MIN_READY_UPTIME_MS ? { ok: true, detail: 'running (no readinessProbe)' } : { ok: false, detail: 'just started (no readinessProbe)' });
      if (probe.kind === 'http') return httpCheck(`http://${ctx.host}:${appPort(probe.containerPort)}${probe.path}`, probe.timeoutMs);
      return tcpCheck(ctx.host, appPort(probe.containerPort), probe.timeoutMs);
    };
    this.appWatch = new PartWatch({
      name: `${plan.label}'s app`,
      process: this.app,
      check,
      readyTimeoutMs: ctx.readyTimeoutMs,
      initialDelayMs: probe?.initialDelayMs,
      // Fast at first so the mesh is ready quickly, then at the probe's period (at most 1 s).
      periodMs: Math.max(100, Math.min(probe?.periodMs ?? 1000, 1000)),
      successThreshold: probe?.successThreshold,
      failureThreshold: probe?.failureThreshold,
      onChange: () => this.publish(),
      report: ctx.report,
    });
  }

  /** Sends the replica's readiness, the reason it is not ready, and its restarts to the control plane. */
  private publish(): void {
    const sidecar = this.sidecarWatch;
    const app = this.appWatch;
    let reason: string | undefined;
    if (!sidecar?.ready) reason = `sidecar: ${sidecar?.reason ?? 'starting'}`;
    else if (!app) reason = 'app: starting';
    else if (!app.ready) reason = `app: ${app.reason ?? 'starting'}`;
    const restarts = (this.sidecar?.restarts ?? 0) + (this.app?.restarts ?? 0);
    this.ctx.registrations.update(this.workloadKey, this.plan.id, { ready: reason === undefined, reason, restarts });
  }

  stopWatching(): void {
    this.sidecarWatch?.stop();
    this.appWatch?.stop();
  }
}
