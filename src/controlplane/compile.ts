/**
 * Joins what the control plane knows at run time (the replicas the runner registered, with
 * their ports) to the pure compiler's inputs: it finds the proxy's own registration, turns
 * it into the compiler's port layout, and compiles.
 */
import { createHash } from 'node:crypto';
import type { Address, ProxyConfig, ProxyNode } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { RegistrySnapshot } from '../api/registry-snapshot.js';
import type { WorkloadRegistration } from '../api/mesh-status.js';
import { compileProxyConfig, compileSharedOutbound, compileTelemetry, proxyClassKey, type SharedOutbound } from '../compiler/index.js';
import { DEFAULT_MESH, type MeshSettings, type ProxyPorts } from '../compiler/index.js';
import { SinewError } from '../core/errors.js';

export type { MeshSettings } from '../compiler/index.js';

/** `host:port` -> Address. */
export function parseAddress(value: string): Address {
  const i = value.lastIndexOf(':');
  return { host: value.slice(0, i), port: Number(value.slice(i + 1)) };
}

/**
 * Where a gateway listens for a Gateway server port that the runner did not map: Istio's
 * gateway Service maps the privileged ports to unprivileged ones the same way (80 -> 8080,
 * 443 -> 8443); ports from 1024 up listen as they are.
 */
export function defaultGatewayListenPort(serverPort: number): number {
  return serverPort < 1024 ? serverPort + 8000 : serverPort;
}

/**
 * Compiles proxies' configs for the push server. Sidecars of one proxy class (same
 * namespace, same answers to the config's label selectors, same locality: the compiler's
 * `proxyClassKey`) share their outbound part, which is built once per class per pair of
 * snapshots and reused for every sidecar of the class, as Istio's xds cache serves CDS/RDS
 * per SidecarScope. Only the latest snapshots' parts are kept: a push compiles every proxy
 * against one pair, and the next change makes the old parts useless.
 */
export class ProxyConfigBuilder {
  readonly mesh: MeshSettings;
  #shared: { resources: readonly Resource[]; registry: RegistrySnapshot; byClass: Map<string, SharedOutbound> } | undefined;
  /** The previous snapshots' parts with their content digests, to keep the same object when a change leaves a class untouched. */
  #previous = new Map<string, { shared: SharedOutbound; digest: string }>();
  #current = new Map<string, { shared: SharedOutbound; digest: string }>();
  /** Each proxy's last config and what it was built from (proxies are keyed by their frozen node). */
  readonly #lastBuilt = new WeakMap<ProxyNode, { registration: WorkloadRegistration | undefined; registry: RegistrySnapshot; shared: SharedOutbound; own: ProxyConfig }>();

  constructor(mesh: Partial<MeshSettings> = {}) {
    this.mesh = { ...DEFAULT_MESH, ...mesh };
  }

  /** Outbound parts built in the current cache (for tests and metrics). */
  get sharedClasses(): number {
    return this.#shared?.byClass.size ?? 0;
  }

  build(node: ProxyNode, resources: readonly Resource[], registry: RegistrySnapshot, registrations: ReadonlyMap<string, WorkloadRegistration>, configRevision: string): ProxyConfig {
    const kind = node.mode === 'router' ? 'gateway' : 'workload';
    const registration = registrations.get(`${kind}/${node.namespace}/${node.workload}`);
    const ports = registration ? portsOf(node, registration, resources) : undefined;
    if (node.mode === 'sidecar' && !ports) {
      throw new SinewError('SNW_ERR_UNKNOWN_PROXY', `no registered replica for proxy ${node.id}; register its workload first`);
    }
    const version = `${configRevision}.${registry.revision}`;
    const input = { version, config: { resources }, registry, node, mesh: this.mesh, ports };
    const shared = this.#sharedFor(input);
    if (!shared) return compileProxyConfig(input, shared);
    // A sidecar's own part depends on its node, its registration (ports), the registry
    // (inbound protocols) and its class's settings, which the shared part's identity stands
    // for: with all four unchanged, only the version differs from its last config. A change
    // that leaves most classes alone then costs those proxies nothing but the check.
    const last = this.#lastBuilt.get(node);
    if (last && last.registration === registration && last.registry === registry && last.shared === shared) {
      // Telemetry resources select proxies by namespace and labels of their own, which the
      // class key does not cover: they are checked on every build (a cheap lookup).
      const telemetry = compileTelemetry(input);
      if (JSON.stringify(telemetry) === JSON.stringify(last.own.telemetry)) return joinShared(last.own, shared, version);
    }
    const config = compileProxyConfig(input, shared);
    // Only the proxy's own items are remembered (the shared ones are the class's): holding
    // every proxy's whole arrays would cost thousands of references per proxy.
    if (Object.isFrozen(node)) {
      const own: ProxyConfig = Object.freeze({
        ...config,
        routeConfigs: config.routeConfigs.slice(0, config.routeConfigs.length - shared.routeConfigs.length),
        clusters: config.clusters.slice(0, config.clusters.length - shared.clusters.length),
        endpoints: config.endpoints.slice(0, config.endpoints.length - shared.endpoints.length),
      });
      this.#lastBuilt.set(node, { registration, registry, shared, own });
    }
    return config;
  }

  // Sharing is keyed on the identity of the snapshots, so it only pays when the caller
  // passes the same frozen resource list for one revision (the daemon does); a mutable list
  // could change under the cache, so it gets no sharing.
  #sharedFor(input: Parameters<typeof compileProxyConfig>[0]): SharedOutbound | undefined {
    const { resources } = input.config;
    if (!Object.isFrozen(resources) || !Object.isFrozen(input.registry)) return undefined;
    const key = proxyClassKey(input);
    if (key === undefined) return undefined;
    if (this.#shared?.resources !== resources || this.#shared.registry !== input.registry) {
      this.#shared = { resources, registry: input.registry, byClass: new Map() };
      this.#previous = this.#current;
      this.#current = new Map();
    }
    let shared = this.#shared.byClass.get(key);
    if (!shared) {
      shared = compileSharedOutbound(input, key);
      // Unchanged content keeps the previous object, so the proxies of an untouched class
      // are recognised as unchanged without being compiled or serialised again.
      const digest = createHash('sha256').update(JSON.stringify(shared)).digest('base64');
      const previous = this.#previous.get(key);
      if (previous?.digest === digest) shared = previous.shared;
      // Either way the old part is done with: let it go now rather than at the next change.
      this.#previous.delete(key);
      this.#current.set(key, { shared, digest });
      this.#shared.byClass.set(key, shared);
    }
    return shared;
  }
}

/** A proxy's own part joined with its class's shared outbound part, as compileProxyConfig joins them. */
function joinShared(own: ProxyConfig, shared: SharedOutbound, version: string): ProxyConfig {
  return Object.freeze({
    ...own,
    version,
    routeConfigs: Object.freeze([...own.routeConfigs, ...shared.routeConfigs]) as ProxyConfig['routeConfigs'],
    clusters: Object.freeze([...own.clusters, ...shared.clusters]) as ProxyConfig['clusters'],
    endpoints: Object.freeze([...own.endpoints, ...shared.endpoints]) as ProxyConfig['endpoints'],
  });
}

function portsOf(node: ProxyNode, registration: WorkloadRegistration, resources: readonly Resource[]): ProxyPorts | undefined {
  if (registration.kind === 'gateway') {
    const replica = registration.replicas[0];
    const host = replica?.host ?? '127.0.0.1';
    const gateway: Record<number, Address> = {};
    for (const r of resources) {
      if (r.kind !== 'Gateway') continue;
      for (const server of (r.spec as { servers?: { port?: { number?: number } }[] }).servers ?? []) {
        const port = server.port?.number;
        if (port !== undefined) gateway[port] = { host, port: defaultGatewayListenPort(port) };
      }
    }
    for (const [serverPort, mapped] of Object.entries(replica?.ports ?? {})) gateway[Number(serverPort)] = { host, port: mapped.inbound };
    return { gateway };
  }
  const replica = registration.replicas.find((r) => `sidecar~${r.id}.${registration.namespace}` === node.id);
  if (!replica) return undefined;
  return {
    outbound: replica.proxy.outbound ? parseAddress(replica.proxy.outbound) : undefined,
    inbound: Object.entries(replica.ports).map(([containerPort, p]) => ({
      containerPort: Number(containerPort),
      listen: { host: replica.host, port: p.inbound },
      app: { host: replica.host, port: p.app },
    })),
  };
}
