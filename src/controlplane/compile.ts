/**
 * Joins what the control plane knows at run time (the replicas the runner registered, with
 * their ports) to the pure compiler's inputs: it finds the proxy's own registration, turns
 * it into the compiler's port layout, and compiles.
 */
import type { Address, ProxyConfig, ProxyNode, RouteConfiguration, VirtualHost } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { RegistryService, RegistrySnapshot } from '../api/registry-snapshot.js';
import type { WorkloadRegistration } from '../api/mesh-status.js';
import { OutboundCache, compileProxyConfig, compileSharedOutbound, compileTelemetry, credentialSources, proxyClassKey, type SharedOutbound } from '../compiler/index.js';
import { DEFAULT_MESH, type MeshSettings, type ProxyPorts } from '../compiler/index.js';
import { SinewError } from '../core/errors.js';
import type { ComposedConfig } from '../xds/server.js';

/** A sidecar's config as its own part and its proxy class's shared outbound part (the push server's ComposedConfig). */
export interface ComposedSidecarConfig extends ComposedConfig {
  readonly shared: SharedOutbound;
}

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
 *
 * Builds after a change are incremental. The class parts are built through an
 * `OutboundCache` that this builder keeps (the compiler holds no state between calls, so
 * what spans builds lives here): a service whose inputs did not change keeps its compiled
 * virtual hosts and clusters, and classes that see a service alike share one build of it.
 * A sidecar's own part is kept while its inputs (node, registration, registry, its class's
 * outbound traffic policy, telemetry) are unchanged. Both caches hold the latest build and
 * the one before, no more.
 */
export class ProxyConfigBuilder {
  readonly mesh: MeshSettings;
  #shared: { resources: readonly Resource[]; registry: RegistrySnapshot; byClass: Map<string, SharedOutbound> } | undefined;
  /** The previous snapshots' parts, to keep the same objects where a change leaves a class (or an item) untouched. */
  #previous = new Map<string, SharedOutbound>();
  #current = new Map<string, SharedOutbound>();
  /** Each proxy's last own part, what it was built from, and its JSON without the version. */
  readonly #lastBuilt = new WeakMap<
    ProxyNode,
    { registration: WorkloadRegistration | undefined; registry: RegistrySnapshot; registryOutline: object; telemetries: readonly Resource[]; policy: SharedOutbound['outboundTrafficPolicy']; securityPolicies: readonly Resource[]; credentials: readonly Resource[]; own: ProxyConfig; ownJson: string }
  >();
  readonly #outlines = new RegistryOutlines();
  /** Services' outbound parts across builds and classes. */
  readonly #outbound: OutboundCache;
  #ownCompiled = 0;
  #telemetryCompiled = 0;

  constructor(mesh: Partial<MeshSettings> = {}, options: { onServiceCompiled?: (hostname: string, classKey: string) => void } = {}) {
    this.mesh = { ...DEFAULT_MESH, ...mesh };
    const onServiceCompiled = options.onServiceCompiled;
    this.#outbound = new OutboundCache(onServiceCompiled ? { onCompile: (service, classKey) => onServiceCompiled(service.hostname, classKey) } : {});
  }

  /** Outbound parts built in the current cache (for tests and metrics). */
  get sharedClasses(): number {
    return this.#shared?.byClass.size ?? 0;
  }

  /**
   * Work done so far (for tests and metrics): services' outbound parts compiled and reused
   * across all classes, and sidecars' own parts compiled.
   */
  get stats(): { servicesCompiled: number; servicesReused: number; ownCompiled: number; telemetryCompiled: number } {
    return { servicesCompiled: this.#outbound.compiled, servicesReused: this.#outbound.reused, ownCompiled: this.#ownCompiled, telemetryCompiled: this.#telemetryCompiled };
  }

  /** A proxy's whole config. */
  build(node: ProxyNode, resources: readonly Resource[], registry: RegistrySnapshot, registrations: ReadonlyMap<string, WorkloadRegistration>, configRevision: string): ProxyConfig {
    const built = this.buildComposed(node, resources, registry, registrations, configRevision);
    return 'own' in built ? joinShared(built.own, built.shared, `${configRevision}.${registry.revision}`) : built;
  }

  /**
   * A proxy's config for the push server: a sidecar's comes as its own part plus its class's
   * shared outbound part, which the server then encodes and diffs once per class. A sidecar
   * whose own part did not change gets the very same `own` object back (its version field
   * is then the one it was compiled with; the push server stamps its own), so the server can
   * tell it is unchanged without looking inside.
   */
  buildComposed(node: ProxyNode, resources: readonly Resource[], registry: RegistrySnapshot, registrations: ReadonlyMap<string, WorkloadRegistration>, configRevision: string): ProxyConfig | ComposedSidecarConfig {
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
    // A sidecar's own part (inbound listeners and clusters, the capture listener, telemetry)
    // depends on its node, its registration (ports), the registry's outline (inbound
    // protocols: RegistryOutlines), the mesh settings (this builder's), and of the config
    // only on its class's outbound traffic policy, the security policies and the Telemetry
    // resources: with those unchanged, only the version differs from its last config. A
    // routing change, or an endpoint turning ready or unready, then costs each proxy nothing
    // but the check.
    const last = this.#lastBuilt.get(node);
    // PeerAuthentications decide the inbound listeners' transport, AuthorizationPolicies and
    // RequestAuthentications their filters: a change to any builds the own part again.
    const securityPolicies = securityPoliciesOf(resources);
    // So do the Secrets and the DestinationRules that originate TLS with one (the credentials it carries).
    const credentials = credentialSourcesOf(resources);
    const registryOutline = this.#outlines.of(registry);
    const telemetries = telemetriesOf(resources);
    if (last && last.registration === registration && last.registryOutline === registryOutline && last.policy === shared.outboundTrafficPolicy && sameItems(last.securityPolicies, securityPolicies) && sameItems(last.credentials, credentials)) {
      // Telemetry resources select proxies by namespace and labels of their own, which the
      // class key does not cover, and a tracing provider's collector is looked up in the
      // registry: with the same Telemetry resources and the same registry snapshot the
      // telemetry is the one built last time (a routing change then costs no compile of it),
      // else it is compiled and compared.
      if (sameItems(last.telemetries, telemetries) && last.registry === registry) return { own: last.own, shared };
      this.#telemetryCompiled++;
      const telemetry = compileTelemetry(input);
      if (JSON.stringify(telemetry) === JSON.stringify(last.own.telemetry)) {
        this.#lastBuilt.set(node, { ...last, registry, telemetries });
        return { own: last.own, shared };
      }
    }
    // The own part alone: compiled with an empty outbound part, compileProxyConfig returns
    // just the proxy's own items (it appends the shared ones after them), sparing a copy of
    // the class's thousands of references per proxy.
    const own = compileProxyConfig(input, { classKey: shared.classKey, outboundTrafficPolicy: shared.outboundTrafficPolicy, routeConfigs: [], clusters: [], endpoints: [] });
    this.#ownCompiled++;
    const ownJson = JSON.stringify({ ...own, version: undefined });
    // A change to the class's part usually leaves the own part as it was: keep the old
    // object then, so the push server sees it unchanged without looking inside.
    const kept = last && last.ownJson === ownJson ? last.own : own;
    if (Object.isFrozen(node)) this.#lastBuilt.set(node, { registration, registry, registryOutline, telemetries, policy: shared.outboundTrafficPolicy, securityPolicies, credentials, own: kept, ownJson });
    return { own: kept, shared };
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
      shared = compileSharedOutbound(input, key, this.#outbound);
      // Unchanged content keeps the previous objects: an untouched class keeps its part (its
      // proxies are recognised as unchanged without being compiled or serialised again), and
      // a touched one keeps every item the change left alone, so only what changed is
      // serialised, hashed and diffed downstream.
      const previous = this.#previous.get(key);
      if (previous) shared = internShared(shared, previous);
      // Either way the old part is done with: let it go now rather than at the next change.
      this.#previous.delete(key);
      this.#current.set(key, shared);
      this.#shared.byClass.set(key, shared);
    }
    return shared;
  }
}

// === what a sidecar's own part reads of the registry ===

/**
 * Tokens naming the outline of registry snapshots: two snapshots with the same token build
 * the same own part for every sidecar, so a snapshot that differs from the last only in what
 * the own part does not read (an endpoint's health, address, labels or locality; a replica
 * more or less of a workload already behind the port) leaves every own part as it was, and
 * an endpoint change costs each proxy no compile (Istio's incremental EDS push likewise
 * rebuilds no listener for it).
 *
 * The own part reads the registry in two places, and the outline holds what they read:
 *  - the inbound listeners' protocol and their cluster's service (compiler/inbound.ts
 *    `servedBy`): per service in registry order, its host, namespace, name and ports, and for
 *    each port which workloads have an endpoint on which port;
 *  - a CUSTOM AuthorizationPolicy's provider (compiler/authz.ts): whether a service with that
 *    host and port exists.
 * Telemetry also reads the registry (a tracing provider's collector address), and is
 * compiled and compared on every build instead (`buildComposed`).
 * Keep this in step with those reads: test/controlplane/incremental.test.ts builds own parts
 * from scratch after each kind of registry change and compares.
 */
class RegistryOutlines {
  /** Per service object (frozen, kept by the registry while it is unchanged): its outline. */
  readonly #services = new WeakMap<RegistryService, string>();
  readonly #tokens = new WeakMap<RegistrySnapshot, object>();
  #last: { registry: RegistrySnapshot; token: object } | undefined;

  of(registry: RegistrySnapshot): object {
    const known = this.#tokens.get(registry);
    if (known) return known;
    const last = this.#last;
    const token = last && this.#sameOutline(last.registry, registry) ? last.token : {};
    // Only a frozen snapshot cannot change under its token.
    if (Object.isFrozen(registry)) {
      this.#tokens.set(registry, token);
      this.#last = { registry, token };
    }
    return token;
  }

  #sameOutline(a: RegistrySnapshot, b: RegistrySnapshot): boolean {
    if (a.services.length !== b.services.length) return false;
    for (let i = 0; i < a.services.length; i++) {
      const x = a.services[i]!;
      const y = b.services[i]!;
      if (x !== y && this.#outline(x) !== this.#outline(y)) return false;
    }
    return true;
  }

  #outline(service: RegistryService): string {
    let outline = this.#services.get(service);
    if (outline !== undefined) return outline;
    const ports = service.ports.map((port) => {
      const served = new Set<string>();
      for (const e of service.endpoints[String(port.port)] ?? []) served.add(`${e.port} ${e.workload?.namespace ?? ''}/${e.workload?.name ?? ''}`);
      return [port.name, port.port, port.targetPort, port.protocol, [...served].sort()];
    });
    outline = JSON.stringify([service.hostname, service.namespace, service.name, service.source, ports]);
    if (Object.isFrozen(service)) this.#services.set(service, outline);
    return outline;
  }
}

// === the resources a sidecar's own part reads ===

const securityPolicyLists = new WeakMap<readonly Resource[], readonly Resource[]>();
const telemetryLists = new WeakMap<readonly Resource[], readonly Resource[]>();

/** The resources of some kinds in a snapshot, listed once per (frozen) snapshot. */
function kindsOf(resources: readonly Resource[], kinds: ReadonlySet<string>, lists: WeakMap<readonly Resource[], readonly Resource[]>): readonly Resource[] {
  let list = lists.get(resources);
  if (!list) {
    list = resources.filter((r) => kinds.has(r.kind));
    if (Object.isFrozen(resources)) lists.set(resources, list);
  }
  return list;
}

/** The kinds that shape a sidecar's inbound listeners (compiler/inbound.ts, compiler/security-filters.ts). */
const SECURITY_POLICY_KINDS: ReadonlySet<string> = new Set(['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication']);

/** The PeerAuthentication, AuthorizationPolicy and RequestAuthentication resources of a snapshot. */
function securityPoliciesOf(resources: readonly Resource[]): readonly Resource[] {
  return kindsOf(resources, SECURITY_POLICY_KINDS, securityPolicyLists);
}

/** The Telemetry resources of a snapshot. */
function telemetriesOf(resources: readonly Resource[]): readonly Resource[] {
  return kindsOf(resources, new Set(['Telemetry']), telemetryLists);
}

const credentialSourceLists = new WeakMap<readonly Resource[], readonly Resource[]>();

/** The Secrets and the DestinationRules that originate TLS with one (compiler/client-credentials.ts). */
function credentialSourcesOf(resources: readonly Resource[]): readonly Resource[] {
  let list = credentialSourceLists.get(resources);
  if (!list) {
    list = credentialSources(resources);
    if (Object.isFrozen(resources)) credentialSourceLists.set(resources, list);
  }
  return list;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// === keeping unchanged objects ===

/** `next` with every list and item equal to `previous`'s replaced by `previous`'s object; `previous` itself when all are equal. */
function internShared(next: SharedOutbound, previous: SharedOutbound): SharedOutbound {
  const routeConfigs = internList(next.routeConfigs, previous.routeConfigs, (rc) => rc.name, internRouteConfig);
  const clusters = internList(next.clusters, previous.clusters, (c) => c.name);
  const endpoints = internList(next.endpoints, previous.endpoints, (e) => e.clusterName);
  const same = routeConfigs === previous.routeConfigs && clusters === previous.clusters && endpoints === previous.endpoints;
  if (same && next.outboundTrafficPolicy === previous.outboundTrafficPolicy) return previous;
  return Object.freeze({ classKey: next.classKey, outboundTrafficPolicy: next.outboundTrafficPolicy, routeConfigs, clusters, endpoints });
}

function internList<T extends object>(next: readonly T[], previous: readonly T[], nameOf: (item: T) => string, internChanged?: (next: T, previous: T) => T): readonly T[] {
  const byName = new Map<string, T>();
  for (const item of previous) byName.set(nameOf(item), item);
  let same = next.length === previous.length;
  const out = next.map((item, i) => {
    const old = byName.get(nameOf(item));
    let kept = item;
    if (old !== undefined) kept = sameJson(item, old) ? old : internChanged ? internChanged(item, old) : item;
    if (kept !== previous[i]) same = false;
    return kept;
  });
  return same ? previous : Object.freeze(out);
}

/** A changed route table keeps the virtual hosts the change left alone. */
function internRouteConfig(next: RouteConfiguration, previous: RouteConfiguration): RouteConfiguration {
  const virtualHosts = internList(next.virtualHosts, previous.virtualHosts, (vh) => vh.name);
  return virtualHosts === next.virtualHosts ? next : Object.freeze({ ...next, virtualHosts: virtualHosts as VirtualHost[] });
}

/**
 * Deep equality of plain JSON data, keys in the same order: two values equal here
 * serialise to the same JSON, so keeping one for the other never changes what is sent.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  if (ak.length !== bk.length) return false;
  for (let i = 0; i < ak.length; i++) {
    const k = ak[i]!;
    if (k !== bk[i] || !sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
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
      if (r.kind !== 'Gateway' || r.group !== 'networking.istio.io') continue;
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
