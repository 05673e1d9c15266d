/**
 * The service registry: services and their endpoints, built from Kubernetes `Service` and
 * `EndpointSlice`, Istio `ServiceEntry` / `WorkloadEntry` and Sinew `Workload` resources plus
 * the replicas the runner reports at run time. Like Istio's aggregate registry it answers "which hosts
 * exist, on which ports, and which endpoints serve each port"; the compiler reads only the
 * immutable snapshots it hands out.
 */
import type { Resource } from '../api/resources/meta.js';
import type {
  RegistryEndpoint,
  RegistryService,
  RegistryServicePort,
  RegistrySnapshot,
  ServiceResolution,
} from '../api/registry-snapshot.js';
import { deepFreeze } from '../core/freeze.js';
import { ENDPOINT_SLICE_SERVICE_LABEL } from '../api/resources/kubernetes.js';
import { kubeServicePortProtocol, parseProtocol, protocolFromPortName } from './protocol.js';
import { selectorMatches, serviceSelects } from '../semantics/labels.js';
import { DEFAULT_DOMAIN_SUFFIX, resolveClientHost, serviceFqdn, spiffeIdentity } from '../semantics/names.js';
import { workloadTargetPort, type DeclaredPort } from '../semantics/target-port.js';
import type { EndpointSliceSpec, KubeServiceSpec, ProbeSpec, ServiceEntrySpec, WorkloadEntrySpec, WorkloadSpec } from './spec-types.js';

/** One running replica of a Workload, as the embedded runner (or a Kubernetes source) reports it. */
export interface WorkloadInstance {
  /** Replica name, e.g. `reviews-v1-0`. */
  name: string;
  address: string;
  /**
   * containerPort -> the port clients must connect to. In embedded mode that is the public
   * inbound port of the replica's sidecar; absent entries mean the containerPort itself.
   */
  ports?: Readonly<Record<number, number>>;
  health?: RegistryEndpoint['health'];
  /** Extra labels of this replica (merged over the Workload's). */
  labels?: Readonly<Record<string, string>>;
  locality?: string;
  /**
   * The workload this instance belongs to when that is not the resource's name: a Kubernetes
   * pod is a Workload resource of its own (its labels are its own), yet belongs to its
   * Deployment, whose name Istio reports (`destination_workload`).
   */
  workload?: string;
  /**
   * A sidecar that accepts Istio mutual TLS is in front of this instance (the embedded runner
   * starts one beside every replica). Pods and WorkloadEntries say so with Istio's label
   * `security.istio.io/tlsMode: istio` instead.
   */
  sidecar?: boolean;
}

/** Istio's endpoint label saying a sidecar terminates Istio mutual TLS in front of it (pkg/model TLSModeLabelName). */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

export interface RegistryOptions {
  domainSuffix?: string;
  trustDomain?: string;
}

export type RegistryListener = (snapshot: RegistrySnapshot) => void;

/** Source kinds the registry reads; other resources are ignored. */
const SOURCE_KINDS = new Set(['Service', 'ServiceEntry', 'WorkloadEntry', 'Workload', 'EndpointSlice']);

export class ServiceRegistry {
  readonly #options: Required<RegistryOptions>;
  #resources: readonly Resource[] = [];
  readonly #instances = new Map<string, readonly WorkloadInstance[]>();
  readonly #listeners = new Set<RegistryListener>();
  #revision = 0;
  #snapshot: RegistrySnapshot | undefined;
  /** The last snapshot built: its unchanged services are reused by the next one. */
  #previous: RegistrySnapshot | undefined;
  /** What the last snapshot was built from, for the next one to rebuild only what changed. */
  #built: BuiltFrom | undefined;
  /** Workloads whose instances changed since the last snapshot; undefined: the resources did. */
  #changedWorkloads: Set<string> | undefined = new Set();
  #servicesBuilt = 0;
  #batchDepth = 0;
  #pending = false;

  constructor(options: RegistryOptions = {}) {
    this.#options = {
      domainSuffix: options.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX,
      trustDomain: options.trustDomain ?? DEFAULT_DOMAIN_SUFFIX,
    };
  }

  /** Replaces the resources the registry is built from (kinds other than the source kinds are ignored). */
  setResources(resources: readonly Resource[]): void {
    this.#resources = resources.filter((r) => SOURCE_KINDS.has(r.kind));
    this.#changedWorkloads = undefined;
    this.#changed();
  }

  /** Replaces the running replicas of Workload `<namespace>/<name>`; an empty list removes them. */
  setWorkloadInstances(workloadKey: string, instances: readonly WorkloadInstance[]): void {
    if (instances.length === 0) this.#instances.delete(workloadKey);
    else this.#instances.set(workloadKey, deepFreeze(instances.map((i) => ({ ...i }))));
    this.#changedWorkloads?.add(workloadKey);
    this.#changed();
  }

  /** Services built so far (for tests): an instance change rebuilds only those that select its workload. */
  get servicesBuilt(): number {
    return this.#servicesBuilt;
  }

  /**
   * Runs several updates as one change: subscribers hear once, after `fn` (e.g. resources
   * and every workload's instances re-sent after a control-plane restart).
   */
  batch(fn: () => void): void {
    this.#batchDepth++;
    try {
      fn();
    } finally {
      this.#batchDepth--;
      if (this.#batchDepth === 0 && this.#pending) {
        this.#pending = false;
        this.#notify();
      }
    }
  }

  /** Called with the new snapshot after every change; returns the unsubscribe function. */
  subscribe(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The current state, immutable; the same object until the next change. A service that did
   * not change keeps its object from the previous snapshot, so consumers that memoise by
   * identity (the control plane's incremental compile) redo only what a change touched: a
   * replica turning ready recompiles the services that select it, not all of them.
   */
  snapshot(): RegistrySnapshot {
    if (!this.#snapshot) {
      const changed = this.#changedWorkloads;
      const patched = this.#previous && this.#built && changed ? this.#rebuildServicesOf(this.#previous, this.#built, changed) : undefined;
      if (patched) this.#snapshot = patched;
      else {
        this.#built = builtFrom(this.#resources, this.#instances, this.#options);
        this.#servicesBuilt += this.#built.owners.length;
        if (this.#previous) keepUnchangedServices(this.#previous, this.#built);
        this.#snapshot = deepFreeze({ revision: this.#revision, services: sortServices(this.#built.owners.flatMap((o) => o.services)) });
      }
      this.#changedWorkloads = new Set();
      this.#previous = this.#snapshot;
    }
    return this.#snapshot;
  }

  /**
   * The next snapshot when only some workloads' instances changed (a replica turned ready,
   * a pod came or went): only the services and ServiceEntries that select those workloads
   * are built again, as Istio's EDS update recomputes the endpoints of the services a pod
   * belongs to; the rest keep their objects and their place in the order.
   */
  #rebuildServicesOf(previous: RegistrySnapshot, built: BuiltFrom, changed: ReadonlySet<string>): RegistrySnapshot | undefined {
    // Many workloads at once (a resync, a fleet coming up): one whole build is cheaper.
    if (changed.size > built.owners.length / 4) return undefined;
    const owners = new Set<BuiltFrom['owners'][number]>();
    for (const key of changed) {
      // Instances of a Workload the resources do not have give no endpoints.
      for (const source of built.workloadSources.get(key) ?? []) {
        source.replicas = workloadReplicas(source, this.#instances.get(key));
        for (const owner of built.owners) if (selectsSource(owner.resource, source)) owners.add(owner);
      }
    }
    const replaced = new Map<RegistryService, RegistryService>();
    const rebuilt: [BuiltFrom['owners'][number], RegistryService[]][] = [];
    for (const owner of owners) {
      const before = owner.services;
      const after = servicesOfResource(owner.resource, built.sources, built.slices, this.#options);
      this.#servicesBuilt++;
      // Same hosts in the same order (endpoints are all that an instance change can alter);
      // anything else is built whole.
      if (after.length !== before.length || after.some((s, i) => s.hostname !== before[i]!.hostname || s.namespace !== before[i]!.namespace)) return undefined;
      const kept = after.map((s, i) => (JSON.stringify(before[i]) === JSON.stringify(s) ? before[i]! : deepFreeze(s)));
      kept.forEach((s, i) => s !== before[i] && replaced.set(before[i]!, s));
      rebuilt.push([owner, kept]);
    }
    for (const [owner, services] of rebuilt) owner.services = services;
    if (replaced.size === 0) return deepFreeze({ revision: this.#revision, services: previous.services });
    return deepFreeze({ revision: this.#revision, services: previous.services.map((s) => replaced.get(s) ?? s) });
  }

  /** Resolves a host name as a client in `fromNamespace` would (Kubernetes DNS search path). */
  resolveHost(name: string, fromNamespace: string): string {
    const known = new Set(this.snapshot().services.map((s) => s.hostname));
    return resolveClientHost(name, fromNamespace, (h) => known.has(h), this.#options.domainSuffix);
  }

  /** The service for `hostname`; with several (ServiceEntries in several namespaces), the one in `namespace` first. */
  findService(hostname: string, namespace?: string): RegistryService | undefined {
    const all = this.snapshot().services.filter((s) => s.hostname === hostname);
    return all.find((s) => s.namespace === namespace) ?? all[0];
  }

  #changed(): void {
    this.#revision++;
    this.#snapshot = undefined;
    if (this.#batchDepth > 0) this.#pending = true;
    else this.#notify();
  }

  #notify(): void {
    if (this.#listeners.size === 0) return;
    const snap = this.snapshot();
    for (const l of this.#listeners) l(snap);
  }
}

// === snapshot building (pure) ===

/** Replaces every service of `built` that equals one of `previous` with that (frozen) object. */
function keepUnchangedServices(previous: RegistrySnapshot, built: BuiltFrom): void {
  const before = new Map<string, RegistryService>();
  for (const s of previous.services) before.set(JSON.stringify(s), s);
  for (const owner of built.owners) owner.services = owner.services.map((s) => before.get(JSON.stringify(s)) ?? s);
}

/** A source of endpoints: a Workload's replicas or one WorkloadEntry. */
interface EndpointSource {
  namespace: string;
  workloadName: string;
  labels: Record<string, string>;
  serviceAccount?: string;
  /** containerPort names (Workload) or port name -> number (WorkloadEntry `ports`). */
  namedPorts: Record<string, number>;
  /** A Workload's declared container ports: the only ports its replicas can be reached on. */
  declaredPorts: readonly DeclaredPort[];
  kind: 'Workload' | 'WorkloadEntry';
  replicas: { name?: string; address: string; ports?: Readonly<Record<number, number>>; health: RegistryEndpoint['health']; labels: Record<string, string>; locality?: string; weight?: number; workload?: string; sidecar?: boolean }[];
  probe?: ProbeSpec;
}

/**
 * Builds the snapshot from resources and reported instances. Pure: the same input gives the
 * same output, services ordered by hostname then namespace.
 */
export function buildRegistrySnapshot(
  resources: readonly Resource[],
  instances: ReadonlyMap<string, readonly WorkloadInstance[]>,
  revision: number,
  options: RegistryOptions = {},
): RegistrySnapshot {
  return deepFreeze({ revision, services: sortServices(builtFrom(resources, instances, options).owners.flatMap((o) => o.services)) });
}

/** The services of a build with what they were built from, for the next build to redo only what changed. */
interface BuiltFrom {
  sources: EndpointSource[];
  /** The EndpointSlices, for the Services without a selector that take endpoints from them. */
  slices: readonly Resource<EndpointSliceSpec>[];
  /** Workload key (`<namespace>/<name>`) -> its endpoint sources (objects of `sources`; one, unless a list repeats a Workload). */
  workloadSources: Map<string, EndpointSource[]>;
  /** Each Service and ServiceEntry resource with its services, in resource order. */
  owners: { resource: Resource; services: RegistryService[] }[];
}

function builtFrom(resources: readonly Resource[], instances: ReadonlyMap<string, readonly WorkloadInstance[]>, options: RegistryOptions): BuiltFrom {
  const sources = endpointSources(resources, instances);
  const workloadSources = new Map<string, EndpointSource[]>();
  for (const s of sources) {
    if (s.kind !== 'Workload') continue;
    const key = `${s.namespace}/${s.workloadName}`;
    workloadSources.set(key, [...(workloadSources.get(key) ?? []), s]);
  }
  const slices = resources.filter((r) => r.kind === 'EndpointSlice') as Resource<EndpointSliceSpec>[];
  const owners: BuiltFrom['owners'] = [];
  for (const r of resources) if (r.kind === 'Service' || r.kind === 'ServiceEntry') owners.push({ resource: r, services: servicesOfResource(r, sources, slices, options) });
  return { sources, slices, workloadSources, owners };
}

function servicesOfResource(r: Resource, sources: EndpointSource[], slices: readonly Resource<EndpointSliceSpec>[], options: RegistryOptions): RegistryService[] {
  const suffix = options.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX;
  const trustDomain = options.trustDomain ?? DEFAULT_DOMAIN_SUFFIX;
  return r.kind === 'Service' ? [kubeService(r as Resource<KubeServiceSpec>, sources, slices, suffix, trustDomain)] : serviceEntryServices(r as Resource<ServiceEntrySpec>, sources, trustDomain);
}

function sortServices(services: RegistryService[]): RegistryService[] {
  return services.sort((a, b) => (a.hostname === b.hostname ? a.namespace.localeCompare(b.namespace) : a.hostname.localeCompare(b.hostname)));
}

/** Whether a Service or ServiceEntry takes endpoints from this source (the rules of kubeService and serviceEntryServices). */
function selectsSource(owner: Resource, source: EndpointSource): boolean {
  // A Service without a selector reaches replicas through its EndpointSlices' targetRefs and
  // addresses (sliceEndpoints), which may name any namespace: such Services are few, so any
  // instance change builds them again.
  if (owner.kind === 'Service' && isSelectorless(owner.spec as KubeServiceSpec | undefined)) return true;
  if (owner.metadata.namespace !== source.namespace) return false;
  if (owner.kind === 'Service') {
    const spec = (owner.spec ?? {}) as KubeServiceSpec;
    return spec.type !== 'ExternalName' && serviceSelects(spec.selector, source.labels);
  }
  const spec = (owner.spec ?? {}) as ServiceEntrySpec;
  return !(spec.endpoints && spec.endpoints.length > 0) && spec.workloadSelector !== undefined && selectorMatches(spec.workloadSelector.labels, source.labels);
}

function workloadReplicas(source: Pick<EndpointSource, 'labels'>, reported: readonly WorkloadInstance[] = []): EndpointSource['replicas'] {
  return reported.map((i) => ({
    name: i.name,
    address: i.address,
    ports: i.ports,
    health: i.health ?? 'HEALTHY',
    labels: { ...source.labels, ...(i.labels ?? {}) },
    locality: i.locality,
    workload: i.workload,
    sidecar: i.sidecar,
  }));
}

function endpointSources(resources: readonly Resource[], instances: ReadonlyMap<string, readonly WorkloadInstance[]>): EndpointSource[] {
  const out: EndpointSource[] = [];
  for (const r of resources) {
    const ns = r.metadata.namespace;
    if (r.kind === 'Workload') {
      const spec = (r.spec ?? {}) as WorkloadSpec;
      // A Workload's labels are its metadata.labels, as a Pod's (api/resources/workload.ts).
      const labels = { ...(r.metadata.labels ?? {}) };
      const namedPorts: Record<string, number> = {};
      for (const p of spec.ports ?? []) if (p.name) namedPorts[p.name] = p.containerPort;
      out.push({
        namespace: ns,
        workloadName: r.metadata.name,
        labels,
        serviceAccount: spec.serviceAccount,
        namedPorts,
        declaredPorts: spec.ports ?? [],
        kind: 'Workload',
        probe: spec.readinessProbe,
        replicas: workloadReplicas({ labels }, instances.get(`${ns}/${r.metadata.name}`)),
      });
    } else if (r.kind === 'WorkloadEntry') {
      const spec = (r.spec ?? {}) as WorkloadEntrySpec;
      if (!spec.address) continue;
      const labels = { ...(spec.labels ?? {}) };
      out.push({
        namespace: ns,
        workloadName: r.metadata.name,
        labels,
        serviceAccount: spec.serviceAccount,
        namedPorts: { ...(spec.ports ?? {}) },
        declaredPorts: [],
        kind: 'WorkloadEntry',
        replicas: [{ address: spec.address, health: 'HEALTHY', labels, locality: spec.locality, weight: spec.weight }],
      });
    }
  }
  return out;
}

function exportToAnnotation(r: Resource): string[] | undefined {
  const value = r.metadata.annotations?.['networking.istio.io/exportTo'];
  if (!value) return undefined;
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function kubeService(r: Resource<KubeServiceSpec>, sources: EndpointSource[], slices: readonly Resource<EndpointSliceSpec>[], suffix: string, trustDomain: string): RegistryService {
  const spec = r.spec ?? {};
  const ns = r.metadata.namespace;
  const ports: RegistryServicePort[] = (spec.ports ?? []).map((p) => ({
    name: p.name,
    port: p.port,
    targetPort: p.targetPort ?? p.port,
    protocol: kubeServicePortProtocol(p),
  }));
  const endpoints: Record<string, RegistryEndpoint[]> = {};
  // ExternalName: a DNS alias; Istio models it as a DNS-resolved service whose endpoint is
  // the external name (kube/conversion.go, resolution DNSLB).
  if (spec.type === 'ExternalName' && spec.externalName) {
    for (const port of ports) endpoints[String(port.port)] = [{ address: spec.externalName.toLowerCase(), port: port.port, labels: {}, health: 'HEALTHY' }];
    return {
      hostname: serviceFqdn(r.metadata.name, ns, suffix),
      namespace: ns,
      name: r.metadata.name,
      source: 'Service',
      ports,
      resolution: 'DNS',
      location: 'MESH_EXTERNAL',
      exportTo: exportToAnnotation(r),
      labels: { ...(r.metadata.labels ?? {}) },
      endpoints,
    };
  }
  // A Service without a selector has its endpoints managed elsewhere: the EndpointSlices that
  // name it (written by hand, as Kubernetes lets a user do). Headless or not, the same rule.
  const selectorless = isSelectorless(spec);
  const ownSlices = selectorless ? slices.filter((s) => s.metadata.namespace === ns && s.metadata.labels?.[ENDPOINT_SLICE_SERVICE_LABEL] === r.metadata.name) : [];
  for (const port of ports) {
    const list: RegistryEndpoint[] = [];
    if (selectorless) {
      for (const slice of ownSlices) list.push(...sliceEndpoints(slice, port, sources, trustDomain));
    } else {
      for (const src of sources) {
        if (src.namespace !== ns || !serviceSelects(spec.selector, src.labels)) continue;
        list.push(...sourceEndpoints(src, port, trustDomain));
      }
    }
    endpoints[String(port.port)] = list;
  }
  return {
    hostname: serviceFqdn(r.metadata.name, ns, suffix),
    namespace: ns,
    name: r.metadata.name,
    source: 'Service',
    ports,
    resolution: 'EDS',
    location: 'MESH_INTERNAL',
    exportTo: exportToAnnotation(r),
    addresses: spec.clusterIP && spec.clusterIP !== 'None' ? [spec.clusterIP] : undefined,
    labels: { ...(r.metadata.labels ?? {}) },
    endpoints,
  };
}

/**
 * The port an endpoint source serves a service port on. Workloads: the targetPort resolved as
 * Kubernetes does (src/semantics/target-port.ts), among the ports the Workload declares; a
 * replica without it is no endpoint of this port. WorkloadEntries: their `ports` entry named
 * like the service port, else the targetPort (Istio's rule).
 */
function containerPortFor(src: EndpointSource, port: RegistryServicePort): number | undefined {
  if (src.kind === 'WorkloadEntry') {
    if (port.name && src.namedPorts[port.name] !== undefined) return src.namedPorts[port.name];
    return typeof port.targetPort === 'number' ? port.targetPort : port.port;
  }
  return workloadTargetPort(port.targetPort, port.port, src.declaredPorts);
}

function sourceEndpoints(src: EndpointSource, port: RegistryServicePort, trustDomain: string): RegistryEndpoint[] {
  const containerPort = containerPortFor(src, port);
  if (containerPort === undefined) return [];
  const out: RegistryEndpoint[] = [];
  for (const rep of src.replicas) {
    // A replica that reports where its ports are (the embedded runner does) but not this one
    // cannot be reached on it: leave it out rather than guess the containerPort as a host port.
    if (rep.ports && src.kind === 'Workload' && rep.ports[containerPort] === undefined) continue;
    const ep: RegistryEndpoint = {
      address: rep.address,
      port: rep.ports?.[containerPort] ?? containerPort,
      labels: rep.labels,
      health: rep.health,
      identity: spiffeIdentity(src.namespace, src.serviceAccount, trustDomain),
      workload: { name: rep.workload ?? src.workloadName, namespace: src.namespace },
    };
    if (rep.sidecar || rep.labels[TLS_MODE_LABEL] === 'istio') ep.tlsMode = 'istio';
    ep.targetPort = containerPort;
    if (rep.locality) ep.locality = rep.locality;
    if (rep.weight !== undefined) ep.weight = rep.weight;
    const hc = src.probe ? probeToHealthCheck(src, src.probe, rep.ports) : undefined;
    if (hc) ep.healthCheck = hc;
    out.push(ep);
  }
  return out;
}

/** A Service whose endpoints are managed elsewhere (its EndpointSlices), as Kubernetes reads an empty selector. */
function isSelectorless(spec: KubeServiceSpec | undefined): boolean {
  return !spec?.selector || Object.keys(spec.selector).length === 0;
}

/**
 * The endpoints an EndpointSlice gives a Service port: the slice's port of the same name (how
 * Kubernetes pairs them; the empty name for a single unnamed port), and every endpoint not
 * marked unready (an unset `ready` means ready). An endpoint whose targetRef names a running
 * replica — or, without one, whose address is that of exactly one replica — is that replica,
 * reached as the replica's own endpoints are (through its sidecar, with its labels and
 * identity), as Istio looks the pod up behind a slice's endpoint (kube/controller
 * endpointslice.go); any other address is reached as written.
 */
function sliceEndpoints(slice: Resource<EndpointSliceSpec>, port: RegistryServicePort, sources: EndpointSource[], trustDomain: string): RegistryEndpoint[] {
  const spec = slice.spec;
  if (spec.addressType === 'FQDN') return [];
  const slicePort = (spec.ports ?? []).find((p) => (p.name ?? '') === (port.name ?? ''));
  if (slicePort?.port === undefined) return [];
  const ns = slice.metadata.namespace;
  const out: RegistryEndpoint[] = [];
  for (const endpoint of spec.endpoints ?? []) {
    if (endpoint.conditions?.ready === false) continue;
    for (const address of endpoint.addresses) {
      const replica = replicaBehind(sources, endpoint.targetRef?.kind === 'Pod' ? (endpoint.targetRef.namespace ?? ns) : ns, endpoint.targetRef?.kind === 'Pod' ? endpoint.targetRef.name : undefined, address);
      if (replica) {
        const [ep] = sourceEndpoints({ ...replica.src, replicas: [replica.rep] }, { ...port, targetPort: slicePort.port }, trustDomain);
        if (ep) {
          out.push(ep);
          continue;
        }
      }
      out.push({ address, port: slicePort.port, labels: {}, health: 'HEALTHY', targetPort: slicePort.port });
    }
  }
  return out;
}

/** The running replica an EndpointSlice endpoint stands for: by its pod's name, else by an address only it has. */
function replicaBehind(sources: EndpointSource[], namespace: string, podName: string | undefined, address: string): { src: EndpointSource; rep: EndpointSource['replicas'][number] } | undefined {
  const candidates = sources.filter((s) => s.kind === 'Workload' && s.namespace === namespace).flatMap((src) => src.replicas.map((rep) => ({ src, rep })));
  if (podName) return candidates.find((c) => c.rep.name === podName && c.rep.address === address);
  const byAddress = candidates.filter((c) => c.rep.address === address);
  return byAddress.length === 1 ? byAddress[0] : undefined;
}

/**
 * A Workload's readinessProbe as an active health check the proxy runs itself. Kubernetes
 * defaults: period 10 s, timeout 1 s, failureThreshold 3, successThreshold 1. The probe's
 * port (number or containerPort name) is mapped like traffic ports, so in embedded mode it
 * goes through the replica's sidecar.
 */
function probeToHealthCheck(src: EndpointSource, probe: ProbeSpec, mapping: Readonly<Record<number, number>> | undefined): RegistryEndpoint['healthCheck'] {
  const action = probe.httpGet ?? probe.tcpSocket;
  if (!action) return undefined;
  let port: number | undefined;
  if (typeof action.port === 'number') port = action.port;
  else if (typeof action.port === 'string') port = /^\d+$/.test(action.port) ? Number(action.port) : src.namedPorts[action.port];
  const hc: NonNullable<RegistryEndpoint['healthCheck']> = {
    intervalMs: (probe.periodSeconds ?? 10) * 1000,
    timeoutMs: (probe.timeoutSeconds ?? 1) * 1000,
    unhealthyThreshold: probe.failureThreshold ?? 3,
    healthyThreshold: probe.successThreshold ?? 1,
  };
  if (probe.httpGet) hc.httpPath = probe.httpGet.path ?? '/';
  if (port !== undefined) hc.port = mapping?.[port] ?? port;
  return hc;
}

/**
 * One service per ServiceEntry host (Istio's convertServices). Endpoints:
 * STATIC -> the inline endpoints, or the WorkloadEntries/Workloads its workloadSelector picks
 * in its namespace; DNS / DNS_ROUND_ROBIN -> the inline endpoints (hostnames allowed) or,
 * with none, the host itself; NONE -> inline endpoints if any (clients connect to the
 * address they asked for).
 */
function serviceEntryServices(r: Resource<ServiceEntrySpec>, sources: EndpointSource[], trustDomain: string): RegistryService[] {
  const spec = r.spec ?? {};
  const ns = r.metadata.namespace;
  // DYNAMIC_DNS (per-request DNS for wildcard hosts) resolves like DNS here.
  const resolution: ServiceResolution = spec.resolution === 'DYNAMIC_DNS' ? 'DNS' : spec.resolution ?? 'NONE';
  const ports: RegistryServicePort[] = (spec.ports ?? []).map((p) => {
    const fromProtocol = parseProtocol(p.protocol);
    return {
      name: p.name,
      port: p.number,
      targetPort: p.targetPort,
      protocol: fromProtocol !== 'UNSUPPORTED' ? fromProtocol : protocolFromPortName(p.name),
    };
  });
  const out: RegistryService[] = [];
  for (const rawHost of spec.hosts ?? []) {
    const hostname = rawHost.toLowerCase();
    const endpoints: Record<string, RegistryEndpoint[]> = {};
    for (const port of ports) {
      const list: RegistryEndpoint[] = [];
      if (spec.endpoints && spec.endpoints.length > 0) {
        for (const we of spec.endpoints) {
          if (!we.address || we.address.startsWith('unix://')) continue;
          const ep: RegistryEndpoint = {
            address: we.address,
            port: (port.name ? we.ports?.[port.name] : undefined) ?? numericTarget(port),
            labels: { ...(we.labels ?? {}) },
            health: 'HEALTHY',
          };
          if (we.serviceAccount) ep.identity = spiffeIdentity(ns, we.serviceAccount, trustDomain);
          if (we.labels?.[TLS_MODE_LABEL] === 'istio') ep.tlsMode = 'istio';
          if (we.locality) ep.locality = we.locality;
          if (we.weight !== undefined) ep.weight = we.weight;
          list.push(ep);
        }
      } else if (spec.workloadSelector) {
        for (const src of sources) {
          if (src.namespace !== ns || !selectorMatches(spec.workloadSelector.labels, src.labels)) continue;
          const seTarget: RegistryServicePort = src.kind === 'Workload' ? { ...port, targetPort: port.targetPort ?? port.port } : port;
          list.push(...sourceEndpoints(src, seTarget, trustDomain));
        }
      } else if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !hostname.startsWith('*')) {
        list.push({ address: hostname, port: numericTarget(port), labels: {}, health: 'HEALTHY' });
      }
      endpoints[String(port.port)] = list;
    }
    out.push({
      hostname,
      namespace: ns,
      name: r.metadata.name,
      source: 'ServiceEntry',
      ports,
      resolution,
      location: spec.location ?? 'MESH_EXTERNAL',
      exportTo: spec.exportTo,
      addresses: spec.addresses,
      labels: { ...(r.metadata.labels ?? {}) },
      endpoints,
    });
  }
  return out;
}

/** A ServiceEntry port's targetPort (always numeric there), else the port itself. */
function numericTarget(port: RegistryServicePort): number {
  return typeof port.targetPort === 'number' ? port.targetPort : port.port;
}
