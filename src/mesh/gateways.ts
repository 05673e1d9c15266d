/**
 * Gateway API Gateways in the embedded mesh: a proxy of its own for every Gateway of a class
 * Sinew controls (`istio`, `sinew`, or a GatewayClass of Sinew's or Istio's controller), as
 * Istio's deployment controller creates a Deployment per Gateway. Gateways come and go with
 * the config (`sinew apply`, `sinew delete`), so this keeps the running proxies in line with
 * it: it watches the config revision, starts a proxy for a new Gateway, gives a new listener
 * port a local port, and stops the proxy of a Gateway that is gone.
 *
 * Each listener port listens on a free local port (every Gateway has its own port 80); the
 * mapping is the gateway's registration, so `sinew status -o json` shows it as
 * `gateways[].replicas[].proxy.servers["<port>"]`, as for the ingress gateway.
 */
import type { ProxyNode } from '../api/proxy-config.js';
import type { WorkloadRegistration } from '../api/mesh-status.js';
import type { Resource } from '../api/resources/meta.js';
import { groupOf } from '../api/resources/meta.js';
import { gatewayDeployments, type GatewayDeployment } from '../config/gateway-api/deployments.js';
import { proxyIdOf } from '../controlplane/daemon.js';
import type { ControlPlaneClient } from './control-plane-client.js';
import { allocatePort, type ManagedProcess } from './supervisor.js';

export interface GatewayApiGatewaysOptions {
  /** The control plane's API, called with the runner's credential. */
  client: ControlPlaneClient;
  host: string;
  /** Starts a proxy process for `node` (the runner's own start-up, with its flags and logs), labelled `label` in the logs. */
  startProxy: (label: string, node: ProxyNode, ports: { admin: number; metrics: number }) => Promise<ManagedProcess>;
  /** Stops the process the runner started under `id` (`<label>/proxy`). */
  stopProcess: (id: string) => Promise<void>;
  output: (line: string) => void;
  /** How often the config revision is checked (default 250 ms). */
  pollMs?: number;
}

interface Running {
  deployment: GatewayDeployment;
  registration: WorkloadRegistration;
  node: ProxyNode;
  label: string;
}

/** Keeps a proxy running for every Gateway API Gateway Sinew controls. */
export class GatewayApiGateways {
  readonly #options: GatewayApiGatewaysOptions;
  readonly #running = new Map<string, Running>();
  #revision = -1;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: GatewayApiGatewaysOptions) {
    this.#options = options;
  }

  /** Starts the Gateways of the config in force and keeps watching it. */
  async start(): Promise<void> {
    await this.reconcile();
    const tick = () => {
      if (this.#stopped) return;
      this.#pass = this.#pass
        .then(() => this.reconcile())
        .catch((err: Error) => this.#options.output(`[sinew] Gateway API gateways: ${err.message}`))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#options.pollMs ?? 250);
        });
    };
    this.#timer = setTimeout(tick, this.#options.pollMs ?? 250);
  }

  /** Stops watching (the supervisor stops the proxies with everything else). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#pass.catch(() => undefined);
  }

  /** One pass: the desired Gateways from the config in force, against the running ones. */
  async reconcile(): Promise<void> {
    const { client } = this.#options;
    let revision = -1;
    const list = async (kind: string) => {
      const res = await client.request(`/api/v1/resources?kind=${encodeURIComponent(kind)}`);
      if (res.status !== 200) throw new Error(`the control plane answered ${res.status} to the list of ${kind}: ${await res.text()}`);
      const body = (await res.json()) as { revision: number; items: Resource[] };
      revision = body.revision;
      return body.items.map((m) => ({ ...m, group: groupOf(m.apiVersion) }) as Resource);
    };
    const resources = [...(await list('GatewayClass')), ...(await list('Gateway.gateway.networking.k8s.io'))];
    if (revision === this.#revision) return;
    const desired = new Map(gatewayDeployments(resources).map((d) => [d.key, d]));
    for (const [key, running] of this.#running) {
      if (!desired.has(key)) await this.#remove(key, running);
    }
    for (const [key, deployment] of desired) {
      const running = this.#running.get(key);
      if (!running) await this.#add(deployment);
      else if (running.deployment.ports.join() !== deployment.ports.join() || JSON.stringify(running.deployment.labels) !== JSON.stringify(deployment.labels)) await this.#update(running, deployment);
    }
    this.#revision = revision;
  }

  async #add(d: GatewayDeployment): Promise<void> {
    const { host } = this.#options;
    const admin = await allocatePort(host);
    const metrics = await allocatePort(host);
    const node: ProxyNode = {
      id: proxyIdOf({ kind: 'gateway', namespace: d.namespace }, d.workload),
      mode: 'router',
      workload: d.workload,
      namespace: d.namespace,
      labels: d.labels,
      serviceAccount: d.workload,
    };
    const registration: WorkloadRegistration = {
      kind: 'gateway',
      name: d.workload,
      namespace: d.namespace,
      labels: d.labels,
      serviceAccount: d.workload,
      replicas: [{ id: d.workload, host, ports: {}, ready: true, restarts: 0, proxy: { admin: `${host}:${admin}`, metrics: `${host}:${metrics}`, servers: {} } }],
    };
    const label = `${d.namespace}/${d.workload}`;
    const running: Running = { deployment: d, registration, node, label };
    await this.#mapPorts(running, d.ports);
    this.#running.set(d.key, running);
    const servers = running.registration.replicas[0].proxy.servers ?? {};
    this.#options.output(`• Gateway ${d.key}: starting its proxy (${d.workload}), ports ${d.ports.map((p) => `${p} -> ${servers[String(p)]}`).join(', ') || 'none yet'}`);
    await this.#options.startProxy(label, node, { admin, metrics });
  }

  async #update(running: Running, d: GatewayDeployment): Promise<void> {
    running.deployment = d;
    running.registration = { ...running.registration, labels: d.labels };
    await this.#mapPorts(running, d.ports);
  }

  /** Gives every port a local port (keeping those already given) and registers the mapping. */
  async #mapPorts(running: Running, ports: number[]): Promise<void> {
    const { host, client } = this.#options;
    const replica = running.registration.replicas[0];
    const mapped: Record<string, { inbound: number; app: number }> = {};
    for (const port of ports) {
      const local = replica.ports[String(port)]?.inbound ?? (await allocatePort(host));
      mapped[String(port)] = { inbound: local, app: local };
    }
    const servers = Object.fromEntries(Object.entries(mapped).map(([p, m]) => [p, `${host}:${m.inbound}`]));
    const first = ports[0];
    running.registration = {
      ...running.registration,
      replicas: [{ ...replica, ports: mapped, proxy: { ...replica.proxy, ...(first !== undefined ? { inbound: servers[String(first)] } : {}), servers } }],
    };
    await client.register(running.registration);
  }

  async #remove(key: string, running: Running): Promise<void> {
    const { client } = this.#options;
    this.#options.output(`• Gateway ${key} is gone: stopping its proxy`);
    this.#running.delete(key);
    await this.#options.stopProcess(`${running.label}/proxy`);
    const r = running.registration;
    await client.request(`/api/v1/registrations/gateway/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`, { method: 'DELETE' });
  }
}
