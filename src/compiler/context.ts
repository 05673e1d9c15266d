/**
 * The per-compilation view of config and registry (Istio's PushContext plus SidecarScope):
 * resources indexed by kind in Istio's order, and what the proxy being compiled may see.
 */
import type { Resource } from '../api/resources/meta.js';
import type { Address, ProxyNode } from '../api/proxy-config.js';
import type { RegistryService, RegistrySnapshot } from '../api/registry-snapshot.js';
import { DEFAULT_MESH, toAddress, type CompileInput, type MeshSettings, type ProxyPorts } from './inputs.js';
import type { DestinationRuleSpec, GatewaySpec, SidecarSpec, Subset, TrafficPolicy, VirtualServiceSpec } from './istio-types.js';
import { proxyLocality } from './clusters.js';
import { hostSpecificity, hostSubsetOf, hostsOverlap, isWildcardHost } from '../semantics/hosts.js';
import { selectorMatches } from '../semantics/labels.js';
import { resolveShortName } from '../semantics/names.js';
import { isExportedTo } from '../semantics/visibility.js';
import { byCreation } from '../semantics/creation-order.js';
import { composePeerAuthentication, peerModeForPort, type ComposedPeerAuthentication, type EffectivePeerMode, type PeerAuthenticationResource } from '../semantics/peer-authentication.js';
import { bindGatewayApi, GATEWAY_NAME_LABEL, type GatewayApiBinding, type GatewayState } from '../semantics/gateway-api/binding.js';

export type VirtualServiceResource = Resource<VirtualServiceSpec>;
export type DestinationRuleResource = Resource<DestinationRuleSpec>;
export type GatewayResource = Resource<GatewaySpec>;
export type SidecarResource = Resource<SidecarSpec>;

/** A DestinationRule after Istio's merge of same-host rules in one namespace. */
export interface EffectiveDestinationRule {
  host: string;
  namespace: string;
  /** `namespace/name` of the rules merged, first one first. */
  sources: string[];
  /** The rules merged, first one first: with `host` and `namespace`, all the result is made of. */
  resources: DestinationRuleResource[];
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
}

interface EgressHost {
  namespace: string; // '*', a namespace, or '~' (none)
  host: string;
}

// === snapshot indexes ===

/**
 * What a context derives from the config snapshot alone: resources by kind in Istio's order,
 * and every label selector that makes a proxy's outbound config depend on its labels.
 */
interface ConfigIndex {
  virtualServices: VirtualServiceResource[];
  destinationRules: DestinationRuleResource[];
  gateways: GatewayResource[];
  sidecars: SidecarResource[];
  peerAuthentications: PeerAuthenticationResource[];
  vsByName: Map<string, VirtualServiceResource>;
  /** DestinationRules by namespace, in the order of `destinationRules`. */
  drByNamespace: Map<string, DestinationRuleResource[]>;
  /** Distinct selectors from VirtualService sourceLabels, DestinationRule and Sidecar workloadSelectors. */
  proxySelectors: Readonly<Record<string, string>>[];
  /** DestinationRules by namespace and resolved host, per DNS suffix (hosts resolve against it); built on first use. */
  drHosts: Map<string, Map<string, NamespaceRuleHosts>>;
  /** The Gateway API resources bound (src/semantics/gateway-api); built on first use. */
  gatewayApi?: GatewayApiBinding;
}

/** One namespace's DestinationRules by resolved host, each with its position in the namespace's list. */
interface NamespaceRuleHosts {
  exact: Map<string, RuleHost[]>;
  /** Hosts starting with `*` (`*` itself included), in list order. */
  wildcards: RuleHost[];
}

interface RuleHost {
  dr: DestinationRuleResource;
  host: string;
  position: number;
}

// === dependency recording ===

/**
 * One thing a piece of outbound config was built from, as read through the context, with
 * the answer it got. A piece built from a service (and its VirtualService) depends on
 * nothing else: if every read gives the same answer again (the same snapshot objects, the
 * same booleans), building it again would give the same result (outbound-cache.ts).
 */
export type ContextRead =
  | { kind: 'service'; host: string; value: RegistryService | undefined }
  | { kind: 'destinationRule'; service: RegistryService; value: EffectiveDestinationRule | undefined }
  | { kind: 'virtualService'; name: string; namespace: string; value: VirtualServiceResource | undefined }
  | { kind: 'labels'; selector: Readonly<Record<string, string>>; value: boolean }
  | { kind: 'namespace'; namespace: string; value: boolean }
  | { kind: 'locality'; value: string | undefined }
  | { kind: 'peerMode'; namespace: string; labels: Readonly<Record<string, string>>; port: number | undefined; value: EffectivePeerMode };

function sameRule(a: EffectiveDestinationRule | undefined, b: EffectiveDestinationRule | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.host !== b.host || a.namespace !== b.namespace || a.resources.length !== b.resources.length) return false;
  for (let i = 0; i < a.resources.length; i++) if (a.resources[i] !== b.resources[i]) return false;
  return true;
}

// Memos of derived data, keyed by the snapshot itself. Only frozen snapshots are memoised:
// a frozen array or registry snapshot cannot change under its key, so the result is the
// same as computing it again, and the compiler stays a function of its inputs. The control
// plane hands the same frozen snapshot to every proxy of a push; this saves re-indexing
// thousands of resources per proxy.
const configIndexes = new WeakMap<readonly Resource[], ConfigIndex>();
const registryIndexes = new WeakMap<RegistrySnapshot, Map<string, RegistryService[]>>();

function configIndex(resources: readonly Resource[]): ConfigIndex {
  const cached = configIndexes.get(resources);
  if (cached) return cached;
  const of = <S>(kind: string) => resources.filter((r) => r.kind === kind).sort(byCreation) as Resource<S>[];
  const index: ConfigIndex = {
    virtualServices: of<VirtualServiceSpec>('VirtualService'),
    destinationRules: of<DestinationRuleSpec>('DestinationRule'),
    gateways: of<GatewaySpec>('Gateway').filter((g) => g.group === 'networking.istio.io'),
    sidecars: of<SidecarSpec>('Sidecar'),
    peerAuthentications: resources.filter((r) => r.kind === 'PeerAuthentication') as PeerAuthenticationResource[],
    vsByName: new Map(),
    drByNamespace: new Map(),
    proxySelectors: [],
    drHosts: new Map(),
  };
  for (const dr of index.destinationRules) {
    const list = index.drByNamespace.get(dr.metadata.namespace) ?? [];
    list.push(dr);
    index.drByNamespace.set(dr.metadata.namespace, list);
  }
  // The oldest of two same-named resources wins lookups, as the linear search it replaces did.
  for (const vs of index.virtualServices) {
    const key = `${vs.metadata.namespace}/${vs.metadata.name}`;
    if (!index.vsByName.has(key)) index.vsByName.set(key, vs);
  }
  const seen = new Set<string>();
  const addSelector = (sel: Readonly<Record<string, string>> | undefined) => {
    if (!sel || Object.keys(sel).length === 0) return;
    const key = JSON.stringify(Object.entries(sel).sort());
    if (seen.has(key)) return;
    seen.add(key);
    index.proxySelectors.push(sel);
  };
  for (const vs of index.virtualServices) {
    for (const rule of vs.spec.http ?? []) for (const m of rule.match ?? []) addSelector(m.sourceLabels);
    for (const rule of vs.spec.tls ?? []) for (const m of rule.match ?? []) addSelector(m.sourceLabels);
    for (const rule of vs.spec.tcp ?? []) for (const m of rule.match ?? []) addSelector(m.sourceLabels);
  }
  for (const dr of index.destinationRules) addSelector(dr.spec.workloadSelector?.matchLabels);
  for (const sc of index.sidecars) addSelector(sc.spec.workloadSelector?.labels);
  if (Object.isFrozen(resources)) configIndexes.set(resources, index);
  return index;
}

function servicesByHost(registry: RegistrySnapshot): Map<string, RegistryService[]> {
  const cached = registryIndexes.get(registry);
  if (cached) return cached;
  const byHost = new Map<string, RegistryService[]>();
  for (const s of registry.services) {
    const list = byHost.get(s.hostname) ?? [];
    list.push(s);
    byHost.set(s.hostname, list);
  }
  if (Object.isFrozen(registry)) registryIndexes.set(registry, byHost);
  return byHost;
}

/**
 * DestinationRules of a namespace by resolved host, so that a lookup reads the few rules
 * for one host instead of resolving every rule of three namespaces per service.
 */
function ruleHosts(index: ConfigIndex, namespace: string, domainSuffix: string): NamespaceRuleHosts | undefined {
  const rules = index.drByNamespace.get(namespace);
  if (!rules) return undefined;
  let bySuffix = index.drHosts.get(domainSuffix);
  if (!bySuffix) index.drHosts.set(domainSuffix, (bySuffix = new Map()));
  let hosts = bySuffix.get(namespace);
  if (hosts) return hosts;
  hosts = { exact: new Map(), wildcards: [] };
  rules.forEach((dr, position) => {
    const entry = { dr, host: resolveShortName(dr.spec.host, namespace, domainSuffix), position };
    if (isWildcardHost(entry.host)) hosts!.wildcards.push(entry);
    else {
      const list = hosts!.exact.get(entry.host);
      if (list) list.push(entry);
      else hosts!.exact.set(entry.host, [entry]);
    }
  });
  bySuffix.set(namespace, hosts);
  return hosts;
}

/**
 * A key such that two sidecars with equal keys, compiled against the same config, registry
 * and mesh settings, get identical outbound route tables, clusters and endpoints: their
 * namespace, which of the config's label selectors they meet, and their locality. Labels no
 * selector reads, the workload name and the ports do not enter it. Undefined for gateways,
 * whose config is built whole.
 */
export function proxyClassKey(input: CompileInput): string | undefined {
  const node = input.node;
  if (node.mode !== 'sidecar') return undefined;
  const index = configIndex(input.config.resources);
  let bits = '';
  for (const sel of index.proxySelectors) bits += selectorMatches(sel, node.labels) ? '1' : '0';
  const l = node.labels;
  const locality = [l['topology.kubernetes.io/region'], l['topology.kubernetes.io/zone'], l['topology.istio.io/subzone']].map((v) => v ?? '').join('/');
  return JSON.stringify([node.namespace, bits, locality]);
}

export class CompileContext {
  readonly node: ProxyNode;
  readonly mesh: MeshSettings;
  readonly registry: RegistrySnapshot;
  readonly ports: ProxyPorts;
  readonly virtualServices: VirtualServiceResource[];
  readonly destinationRules: DestinationRuleResource[];
  readonly gateways: GatewayResource[];
  readonly sidecar: SidecarResource | undefined;
  /** The config snapshot's resources (every kind). */
  readonly resources: readonly Resource[];
  readonly #egress: EgressHost[] | undefined;
  readonly #servicesByHost: Map<string, RegistryService[]>;
  readonly #vsByName: Map<string, VirtualServiceResource>;
  readonly #drCache = new Map<string, EffectiveDestinationRule | undefined>();
  readonly #index: ConfigIndex;
  /** While a piece of config is built under `track`, what it reads. */
  #reads: ContextRead[] | undefined;

  constructor(input: CompileInput) {
    this.node = input.node;
    this.mesh = { ...DEFAULT_MESH, ...(input.mesh ?? {}) };
    this.registry = input.registry;
    this.ports = input.ports ?? {};
    const index = configIndex(input.config.resources);
    this.#index = index;
    this.resources = input.config.resources;
    this.virtualServices = index.virtualServices;
    this.destinationRules = index.destinationRules;
    this.gateways = index.gateways;
    this.#vsByName = index.vsByName;
    this.#servicesByHost = servicesByHost(this.registry);
    this.sidecar = this.node.mode === 'sidecar' ? this.#selectSidecar(index.sidecars) : undefined;
    this.#egress = this.sidecar?.spec.egress ? this.#parseEgress(this.sidecar) : undefined;
  }

  get outboundAddress(): Address | undefined {
    return this.ports.outbound === undefined ? undefined : toAddress(this.ports.outbound);
  }

  get namespace(): string {
    return this.node.namespace;
  }

  /** Outbound policy: the proxy's Sidecar overrides the mesh setting (Istio Sidecar.outboundTrafficPolicy). */
  get outboundTrafficPolicy(): 'ALLOW_ANY' | 'REGISTRY_ONLY' {
    return this.sidecar?.spec.outboundTrafficPolicy?.mode ?? this.mesh.outboundTrafficPolicy;
  }

  resolve(host: string, namespace: string): string {
    return resolveShortName(host, namespace, this.mesh.domainSuffix);
  }

  // === reads of the proxy and dependency recording ===

  /**
   * Runs `build` and returns what it read through this context. Outbound config for a
   * service reads the proxy only through `nodeMatches`, `isNodeNamespace` and `locality`, and
   * the snapshots only through `service`, `destinationRule` and `findVirtualService`, so the
   * reads are everything it depends on besides the service, its VirtualService and the mesh
   * settings.
   */
  track<T>(build: () => T): { value: T; reads: ContextRead[] } {
    const outer = this.#reads;
    const reads: ContextRead[] = [];
    this.#reads = reads;
    try {
      return { value: build(), reads };
    } finally {
      this.#reads = outer;
    }
  }

  /** True when every read gets the same answer in this context as when it was recorded. */
  replays(reads: readonly ContextRead[]): boolean {
    const outer = this.#reads;
    this.#reads = undefined;
    try {
      for (const r of reads) {
        switch (r.kind) {
          case 'service':
            if (this.service(r.host) !== r.value) return false;
            break;
          case 'destinationRule':
            if (!sameRule(this.destinationRule(r.service), r.value)) return false;
            break;
          case 'virtualService':
            if (this.findVirtualService(r.name, r.namespace) !== r.value) return false;
            break;
          case 'labels':
            if (selectorMatches(r.selector, this.node.labels) !== r.value) return false;
            break;
          case 'namespace':
            if ((this.node.namespace === r.namespace) !== r.value) return false;
            break;
          case 'locality':
            if (this.locality() !== r.value) return false;
            break;
          case 'peerMode':
            if (this.peerMode(r.namespace, r.labels, r.port) !== r.value) return false;
            break;
        }
      }
      return true;
    } finally {
      this.#reads = outer;
    }
  }

  /** Whether the proxy's labels meet a selector (an absent selector is met). */
  nodeMatches(selector: Readonly<Record<string, string>> | undefined): boolean {
    if (!selector) return true;
    const value = selectorMatches(selector, this.node.labels);
    this.#reads?.push({ kind: 'labels', selector, value });
    return value;
  }

  /** Whether the proxy is in `namespace`. */
  isNodeNamespace(namespace: string): boolean {
    const value = this.node.namespace === namespace;
    this.#reads?.push({ kind: 'namespace', namespace, value });
    return value;
  }

  /** The PeerAuthentication in force for a workload (semantics/peer-authentication.ts). */
  peerAuthentication(workload: { namespace: string; labels: Readonly<Record<string, string>> }): ComposedPeerAuthentication {
    return composePeerAuthentication(this.#index.peerAuthentications, this.mesh.rootNamespace, workload);
  }

  /**
   * The PeerAuthentication mode of a workload on one of its container ports (the workload's
   * own mode when `port` is undefined): what auto mTLS asks of an endpoint.
   */
  peerMode(namespace: string, labels: Readonly<Record<string, string>>, port: number | undefined): EffectivePeerMode {
    const composed = this.peerAuthentication({ namespace, labels });
    const value = port === undefined ? composed.mode : peerModeForPort(composed, port);
    this.#reads?.push({ kind: 'peerMode', namespace, labels, port, value });
    return value;
  }

  /** The proxy's locality `region/zone/subzone` (see `proxyLocality`); undefined without a region. */
  locality(): string | undefined {
    const value = proxyLocality(this.node.labels);
    this.#reads?.push({ kind: 'locality', value });
    return value;
  }

  // === Sidecar scope ===

  /**
   * Istio's Sidecar selection: a Sidecar in the proxy's namespace whose workloadSelector
   * matches the proxy, else the one without selector in that namespace, else the one
   * without selector in the root namespace.
   */
  #selectSidecar(sidecars: SidecarResource[]): SidecarResource | undefined {
    const inNs = sidecars.filter((s) => s.metadata.namespace === this.node.namespace);
    const selected = inNs.find((s) => s.spec.workloadSelector?.labels && selectorMatches(s.spec.workloadSelector.labels, this.node.labels));
    if (selected) return selected;
    const nsWide = inNs.find((s) => !s.spec.workloadSelector?.labels);
    if (nsWide) return nsWide;
    return sidecars.find((s) => s.metadata.namespace === this.mesh.rootNamespace && !s.spec.workloadSelector?.labels);
  }

  /**
   * Egress hosts `namespace/dnsName`: `.` is the Sidecar's namespace, `*` any, `~` none.
   * Sinew takes the union of all egress listeners' hosts (port-specific egress listeners
   * are not modelled separately: the embedded capture is one HTTP listener).
   */
  #parseEgress(sidecar: SidecarResource): EgressHost[] {
    const out: EgressHost[] = [];
    for (const listener of sidecar.spec.egress ?? []) {
      for (const entry of listener.hosts ?? []) {
        const slash = entry.indexOf('/');
        let ns = slash >= 0 ? entry.slice(0, slash) : '*';
        const host = (slash >= 0 ? entry.slice(slash + 1) : entry).toLowerCase();
        if (ns === '.') ns = sidecar.metadata.namespace;
        out.push({ namespace: ns, host });
      }
    }
    return out;
  }

  #egressAllows(namespace: string, hosts: readonly string[]): boolean {
    if (!this.#egress) return true;
    return this.#egress.some((e) => (e.namespace === '*' || e.namespace === namespace) && e.namespace !== '~' && hosts.some((h) => hostsOverlap(e.host, h)));
  }

  // === services ===

  /** Services this proxy may reach: exported to its namespace and (sidecars) allowed by its Sidecar's egress. */
  visibleServices(): RegistryService[] {
    return this.registry.services.filter((s) => this.serviceVisible(s));
  }

  serviceVisible(s: RegistryService): boolean {
    return isExportedTo(s.exportTo, s.namespace, this.node.namespace) && this.#egressAllows(s.namespace, [s.hostname]);
  }

  /** The service for a host as this proxy sees it; with several (ServiceEntries), the one in the proxy's namespace first. */
  service(hostname: string): RegistryService | undefined {
    const all = (this.#servicesByHost.get(hostname) ?? []).filter((s) => isExportedTo(s.exportTo, s.namespace, this.node.namespace));
    const value = all.find((s) => s.namespace === this.node.namespace) ?? all[0];
    this.#reads?.push({ kind: 'service', host: hostname, value });
    return value;
  }

  // === virtual services ===

  /** VirtualServices exported to this proxy's namespace (and allowed by its Sidecar's egress hosts). */
  visibleVirtualServices(): VirtualServiceResource[] {
    return this.virtualServices.filter((vs) => {
      if (!vs.spec.hosts || vs.spec.hosts.length === 0) return false; // delegates are reached only through a root
      if (!isExportedTo(vs.spec.exportTo, vs.metadata.namespace, this.node.namespace)) return false;
      const hosts = vs.spec.hosts.map((h) => this.resolve(h, vs.metadata.namespace));
      return this.#egressAllows(vs.metadata.namespace, hosts);
    });
  }

  findVirtualService(name: string, namespace: string): VirtualServiceResource | undefined {
    const value = this.#vsByName.get(`${namespace}/${name}`);
    this.#reads?.push({ kind: 'virtualService', name, namespace, value });
    return value;
  }

  // === destination rules ===

  /**
   * Istio's DestinationRule lookup (PushContext.destinationRule; DESIGN.md behaviour 5):
   * the client's namespace first, then the service's namespace, then the root namespace,
   * each subject to exportTo. Within a namespace the most specific host wins, and rules
   * for the same host are merged (Istio mergeDestinationRule: subsets added by name, the
   * oldest rule's trafficPolicy kept). Rules with a workloadSelector apply only to the
   * proxies they select, and only from the client's namespace.
   */
  destinationRule(service: RegistryService): EffectiveDestinationRule | undefined {
    const key = `${service.namespace}/${service.hostname}`;
    let found: EffectiveDestinationRule | undefined;
    if (this.#drCache.has(key)) found = this.#drCache.get(key);
    else {
      const order = [this.node.namespace, service.namespace, this.mesh.rootNamespace];
      for (const ns of order) {
        found = this.#destinationRuleIn(ns, service.hostname);
        if (found) break;
      }
      this.#drCache.set(key, found);
    }
    this.#reads?.push({ kind: 'destinationRule', service, value: found });
    return found;
  }

  #destinationRuleIn(namespace: string, hostname: string): EffectiveDestinationRule | undefined {
    const hosts = ruleHosts(this.#index, namespace, this.mesh.domainSuffix);
    if (!hosts) return undefined;
    // The rules whose host matches, in the namespace's order (the merge below keeps the first).
    let matching = hosts.exact.get(hostname) ?? [];
    const wild = hosts.wildcards.filter((w) => hostSubsetOf(hostname, w.host));
    if (wild.length) matching = [...matching, ...wild].sort((a, b) => a.position - b.position);
    const candidates: { dr: DestinationRuleResource; host: string }[] = [];
    for (const { dr, host } of matching) {
      if (namespace !== this.node.namespace && !isExportedTo(dr.spec.exportTo, namespace, this.node.namespace)) continue;
      const selector = dr.spec.workloadSelector?.matchLabels;
      if (selector && (namespace !== this.node.namespace || !selectorMatches(selector, this.node.labels))) continue;
      candidates.push({ dr, host });
    }
    if (candidates.length === 0) return undefined;
    // Most specific host: an exact match beats wildcards, a longer wildcard beats a shorter one.
    const best = Math.max(...candidates.map((c) => hostSpecificity(c.host)));
    const chosen = candidates.filter((c) => hostSpecificity(c.host) === best);
    // Istio keeps a workload-selected rule apart from the namespace-wide one and prefers it.
    const selected = chosen.filter((c) => c.dr.spec.workloadSelector?.matchLabels);
    const group = selected.length > 0 ? selected : chosen;
    const merged: EffectiveDestinationRule = { host: group[0].host, namespace, sources: [], resources: [], subsets: [] };
    for (const { dr } of group) {
      merged.sources.push(`${dr.metadata.namespace}/${dr.metadata.name}`);
      merged.resources.push(dr);
      if (!merged.trafficPolicy && dr.spec.trafficPolicy) merged.trafficPolicy = dr.spec.trafficPolicy;
      for (const s of dr.spec.subsets ?? []) if (!merged.subsets.some((m) => m.name === s.name)) merged.subsets.push(s);
    }
    return merged;
  }

  // === the Gateway API ===

  /** The Gateway API resources of the snapshot, bound once per snapshot. */
  get gatewayApi(): GatewayApiBinding {
    return (this.#index.gatewayApi ??= bindGatewayApi(this.resources));
  }

  /**
   * The Gateway API Gateway this proxy runs for (`sinew up` labels a Gateway's proxy with
   * `gateway.networking.k8s.io/gateway-name`, in the Gateway's namespace), if any.
   */
  gatewayApiGateway(): GatewayState | undefined {
    if (this.node.mode !== 'router') return undefined;
    const name = this.node.labels[GATEWAY_NAME_LABEL];
    return name === undefined ? undefined : this.gatewayApi.gatewayByKey.get(`${this.node.namespace}/${name}`);
  }

  // === gateways ===

  /** Gateways whose selector matches this router's labels (an empty selector selects every gateway proxy). */
  selectedGateways(): GatewayResource[] {
    if (this.node.mode !== 'router') return [];
    return this.gateways.filter((g) => selectorMatches(g.spec.selector, this.node.labels));
  }
}
