/**
 * The Kubernetes source of the control plane (Istio's kube registry and CRD client in one):
 * informers on the Istio kinds, Services, EndpointSlices (or Endpoints), Pods, Nodes and
 * Namespaces feed
 *
 *  - a config store (`KubeConfigStore`): the Istio resources that pass validation, the
 *    Services, the Namespaces, a `Workload` per pod, WorkloadEntries for selector-less
 *    Services' endpoints — what `sinew up` puts in its store, read-only here (the cluster is
 *    where config is written: kubectl apply);
 *  - the registry: each pod's running instance (IP, readiness, locality, workload name);
 *  - the port layout of every pod's sidecar (`registrations`), which the control plane's
 *    builder reads as it reads the embedded runner's registrations.
 *
 * Events are coalesced: everything that arrives in one turn of the event loop becomes one
 * store change and one registry batch. `start()` resolves once every informer has listed, so
 * a control plane that (re)starts serves nothing before it knows the whole cluster: proxies
 * that reconnect then get the same config they hold, and the push server sends nothing.
 *
 * Secrets are not read: Sinew has no gateway credentials to take from them yet, and the
 * right to read every Secret in the cluster is not one to ask for in advance.
 */
import type { WorkloadRegistration, ReplicaRegistration } from '../api/mesh-status.js';
import type { Diagnostic } from '../api/diagnostics.js';
import type { Resource } from '../api/resources/meta.js';
import { kindKey, kindKeyOf } from '../api/resources/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import { SinewError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { MemoryConfigStore, keyOf, type ConfigChange, type ResourceKey } from '../config/store.js';
import type { ServiceRegistry } from '../registry/index.js';
import type { KubeClient } from './api.js';
import { KubeApiError } from './api.js';
import { KubeInformer, type InformerEvent, type InformerOptions } from './informer.js';
import {
  GATEWAY_API_KINDS,
  ISTIO_KINDS,
  SECRETS_FIELD_SELECTOR,
  checkObject,
  isCredentialSecret,
  trimSecret,
  endpointsEndpoints,
  hasSelector,
  nodeLocality,
  objectKey,
  podInstance,
  podView,
  podWorkload,
  serviceEndpointEntries,
  sliceEndpoints,
  withEndpointSelector,
  type KubeObject,
  type KubePod,
  type PodView,
  type SliceEndpoint,
  type WatchedKind,
} from './objects.js';

/** Ports of a sidecar in a pod (Istio's): where iptables sends captured traffic, admin, metrics. */
export const SIDECAR_PORTS = Object.freeze({ outboundCapture: 15001, inboundCapture: 15006, admin: 15000, mergedMetrics: 15020, health: 15021, metrics: 15090 });

/** The config store of a control plane whose config lives in the cluster: read-only to `sinew apply`. */
export class KubeConfigStore extends MemoryConfigStore {
  override apply(): Promise<ConfigChange> {
    return Promise.reject(readOnly());
  }

  override delete(): Promise<ConfigChange> {
    return Promise.reject(readOnly());
  }

  /** The source's own writes. */
  async sync(applied: readonly Resource[], deleted: readonly ResourceKey[], cause: string): Promise<void> {
    if (applied.length) await super.apply(applied, cause);
    if (deleted.length) await super.delete(deleted, cause);
  }
}

function readOnly(): SinewError {
  return new SinewError('SNW_ERR_CONFIG_IN_KUBERNETES', 'this control plane reads its config from Kubernetes: change it there (kubectl apply -f / kubectl delete -f)');
}

/** A resource the cluster holds that Sinew refuses, with why. */
export interface RejectedResource {
  kind: WatchedKind;
  object: KubeObject;
  diagnostics: Diagnostic[];
}

export interface KubeSourceOptions {
  client: KubeClient;
  registry: ServiceRegistry;
  clock?: Clock;
  logger?: Logger;
  /** Which endpoints API to read for selector-less Services; default: the newest the server serves. */
  endpointsApi?: 'auto' | 'discovery.k8s.io/v1' | 'discovery.k8s.io/v1beta1' | 'v1';
  /** Informers' backoff (tests shorten it). */
  backoff?: { initialMs: number; maxMs: number };
  /** Objects per list page (500). */
  pageSize?: number;
}

type Informed = KubeObject & { metadata?: NonNullable<KubeObject['metadata']> };

export class KubeSource {
  readonly store = new KubeConfigStore();
  /** Sidecar port layouts of the pods, by `workload/<namespace>/<workload>` (the builder's lookup). */
  readonly registrations = new Map<string, WorkloadRegistration>();
  /** Istio resources in the cluster that failed validation, by `Kind/namespace/name`. */
  readonly rejected = new Map<string, RejectedResource>();
  /** Which API each kind is watched at, once started (for `sinew controlplane` to print). */
  readonly watching: string[] = [];
  readonly informers: KubeInformer<Informed>[] = [];
  readonly #options: KubeSourceOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #listeners = new Set<(reason: string) => void>();
  readonly #rejectedListeners = new Set<(key: string, entry: RejectedResource | undefined) => void>();

  // What the informers hold, converted.
  readonly #config = new Map<string, Resource>(); // Istio kinds and Namespaces, by store key
  readonly #services = new Map<string, Resource>(); // ns/name
  readonly #pods = new Map<string, PodView>(); // ns/name
  /** `workload/<ns>/<workload>` -> its pods' keys, and each pod's workload key. */
  readonly #podsByWorkload = new Map<string, Set<string>>();
  readonly #workloadOfPod = new Map<string, string>();
  readonly #nodes = new Map<string, string | undefined>(); // name -> locality
  readonly #sliceEndpoints = new Map<string, { service: string; endpoints: SliceEndpoint[] }>(); // slice ns/name

  // What changed since the last flush.
  readonly #dirtyKeys = new Set<string>(); // store keys to recompute
  readonly #dirtyPods = new Set<string>(); // ns/name
  readonly #dirtyServices = new Set<string>(); // ns/name (endpoint entries)
  readonly #dirtyWorkloads = new Set<string>(); // workload keys (sidecar layouts)
  #flushScheduled = false;
  #flushing: Promise<void> = Promise.resolve();
  #started = false;

  constructor(options: KubeSourceOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
  }

  /** Called after changes the store does not show (pod instances and sidecar layouts): push then. */
  onChange(listener: (reason: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called when a resource is refused (entry) or no longer is (undefined). */
  onRejected(listener: (key: string, entry: RejectedResource | undefined) => void): () => void {
    this.#rejectedListeners.add(listener);
    return () => this.#rejectedListeners.delete(listener);
  }

  /** Starts every informer and resolves when all have listed and the store holds the result. */
  async start(): Promise<void> {
    if (this.#started) throw new SinewError('SNW_ERR_STARTED', 'the Kubernetes source is already started');
    this.#started = true;
    const client = this.#options.client;
    const add = (path: string, handler: (event: InformerEvent, o: Informed) => void, extra: Pick<InformerOptions<Informed>, 'fieldSelector' | 'trim'> = {}) => {
      const informer = new KubeInformer<Informed>({ client, path, onEvent: handler, clock: this.#clock, logger: this.#logger.child('informer'), backoff: this.#options.backoff, pageSize: this.#options.pageSize, ...extra });
      this.informers.push(informer);
      this.watching.push(path);
    };

    for (const kind of ISTIO_KINDS) {
      const version = await servedVersion(client, kind.group, kind.versions);
      if (!version) {
        this.#logger.warn('not watched: the cluster does not serve this kind (install the CRDs: sinew install)', { kind: kind.kind, group: kind.group });
        continue;
      }
      add(`/apis/${kind.group}/${version}/${kind.plural}`, (event, o) => this.#onConfig(kind, `${kind.group}/${version}`, event, o));
    }
    // The Gateway API is optional in a cluster (its CRDs are the Gateway API project's): the
    // kinds it serves are read, the rest named once.
    const unserved: string[] = [];
    for (const kind of GATEWAY_API_KINDS) {
      const version = await servedVersion(client, kind.group, kind.versions);
      if (!version) unserved.push(kind.kind);
      else add(`/apis/${kind.group}/${version}/${kind.plural}`, (event, o) => this.#onConfig(kind, `${kind.group}/${version}`, event, o));
    }
    if (unserved.length) this.#logger.info('Gateway API kinds not served by this cluster are not read (install the Gateway API CRDs to use them)', { kinds: unserved.join(', ') });
    // Gateway credentials (credentialName, certificateRefs): Secrets, of which only those with
    // a credential's shape keep their values here.
    add('/api/v1/secrets', (event, o) => this.#onSecret(event, o), { fieldSelector: SECRETS_FIELD_SELECTOR, trim: trimSecret });
    add('/api/v1/namespaces', (event, o) => this.#onNamespace(event, o));
    add('/api/v1/services', (event, o) => this.#onService(event, o));
    add('/api/v1/nodes', (event, o) => this.#onNode(event, o));
    add('/api/v1/pods', (event, o) => this.#onPod(event, o as KubePod));
    const endpointsPath = await this.#endpointsPath();
    add(endpointsPath, (event, o) => this.#onEndpoints(event, o, endpointsPath === '/api/v1/endpoints'));

    for (const i of this.informers) i.start();
    await Promise.all(this.informers.map((i) => i.synced));
    await this.flush();
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.#flushing;
  }

  /** Applies what has arrived so far (the informers' handlers schedule it by themselves). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flush()).catch((err: Error) => this.#logger.error('applying cluster changes failed', { error: err.stack ?? err.message }));
    return this.#flushing;
  }

  async #endpointsPath(): Promise<string> {
    const wanted = this.#options.endpointsApi ?? 'auto';
    if (wanted === 'v1') return '/api/v1/endpoints';
    if (wanted !== 'auto') return `/apis/${wanted}/endpointslices`;
    // discovery.k8s.io/v1 from Kubernetes 1.21, v1beta1 from 1.17; Endpoints before.
    const version = await servedVersion(this.#options.client, 'discovery.k8s.io', ['v1', 'v1beta1']);
    return version ? `/apis/discovery.k8s.io/${version}/endpointslices` : '/api/v1/endpoints';
  }

  #schedule(): void {
    if (this.#flushScheduled || !this.#started) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      void this.flush();
    });
  }

  // === informer handlers: record, mark dirty, schedule ===

  #onConfig(kind: WatchedKind, apiVersion: string, event: InformerEvent, o: Informed): void {
    // Keyed as the store keys it: Istio's Gateway and the Gateway API's share a kind name.
    const key = `${kindKey(kind.kind, kind.group)}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    this.#dirtyKeys.add(key);
    if (event === 'delete') {
      this.#config.delete(key);
      this.#setRejected(key, undefined);
    } else {
      // List items of a kind may come without apiVersion and kind: the watched ones are meant.
      const checked = checkObject({ ...o, apiVersion, kind: kind.kind });
      if (checked.resource) {
        this.#config.set(key, checked.resource);
        this.#setRejected(key, undefined);
      } else {
        // The last good version stays in force, as with a refused `sinew apply`.
        this.#setRejected(key, { kind, object: o, diagnostics: checked.diagnostics });
      }
    }
    this.#schedule();
  }

  #setRejected(key: string, entry: RejectedResource | undefined): void {
    if (!entry && !this.rejected.has(key)) return;
    if (entry) this.rejected.set(key, entry);
    else this.rejected.delete(key);
    for (const l of this.#rejectedListeners) l(key, entry);
  }

  #onSecret(event: InformerEvent, o: Informed & { data?: Record<string, string> }): void {
    const key = `Secret/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    if (event === 'delete' || !isCredentialSecret(o)) {
      // Not (or no longer) a credential: not in the store.
      if (this.#config.delete(key)) this.#dirtyKeys.add(key);
    } else {
      const checked = checkObject({ ...o, apiVersion: 'v1', kind: 'Secret' });
      if (checked.resource) this.#config.set(key, checked.resource);
      else this.#logger.warn('a Secret with a credential\'s keys was not read', { secret: key, errors: checked.diagnostics.map((d) => d.message).join('; ') });
      this.#dirtyKeys.add(key);
    }
    this.#schedule();
  }

  #onNamespace(event: InformerEvent, o: Informed): void {
    const key = `Namespace//${o.metadata?.name ?? ''}`;
    this.#dirtyKeys.add(key);
    if (event === 'delete') this.#config.delete(key);
    else {
      const checked = checkObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: o.metadata?.name, labels: o.metadata?.labels, uid: o.metadata?.uid, creationTimestamp: o.metadata?.creationTimestamp } });
      if (checked.resource) this.#config.set(key, checked.resource);
    }
    this.#schedule();
  }

  #onService(event: InformerEvent, o: Informed): void {
    const key = objectKey(o);
    this.#dirtyKeys.add(`Service/${key}`);
    this.#dirtyServices.add(key);
    if (event === 'delete') this.#services.delete(key);
    else {
      const spec = { ...((o.spec as Record<string, unknown>) ?? {}) };
      const checked = checkObject({ apiVersion: 'v1', kind: 'Service', metadata: o.metadata, spec });
      if (checked.resource) this.#services.set(key, checked.resource);
      else this.#logger.warn('Service not used: Sinew cannot read it', { service: key, problems: checked.diagnostics.map((d) => d.message) });
    }
    this.#schedule();
  }

  #onNode(event: InformerEvent, o: Informed): void {
    const name = o.metadata?.name ?? '';
    const before = this.#nodes.get(name);
    const locality = event === 'delete' ? undefined : nodeLocality(o.metadata?.labels);
    if (event === 'delete') this.#nodes.delete(name);
    else this.#nodes.set(name, locality);
    if (before === locality) return;
    for (const [key, pod] of this.#pods) if (pod.nodeName === name) this.#dirtyPods.add(key);
    this.#schedule();
  }

  #onPod(event: InformerEvent, o: KubePod): void {
    const key = objectKey(o);
    this.#dirtyPods.add(key);
    const view = event === 'delete' ? undefined : podView(o);
    if (view) this.#pods.set(key, view);
    else this.#pods.delete(key);
    const before = this.#workloadOfPod.get(key);
    const after = view ? `workload/${view.namespace}/${view.workload}` : undefined;
    if (before !== after) {
      if (before) this.#podsByWorkload.get(before)?.delete(key);
      if (after) {
        let set = this.#podsByWorkload.get(after);
        if (!set) this.#podsByWorkload.set(after, (set = new Set()));
        set.add(key);
        this.#workloadOfPod.set(key, after);
      } else this.#workloadOfPod.delete(key);
      // The workload the pod left needs its layout rebuilt too.
      if (before) this.#dirtyWorkloads.add(before);
    }
    if (after) this.#dirtyWorkloads.add(after);
    this.#schedule();
  }

  #onEndpoints(event: InformerEvent, o: Informed, legacy: boolean): void {
    const key = objectKey(o);
    const ns = o.metadata?.namespace ?? '';
    const service = legacy ? o.metadata?.name : o.metadata?.labels?.['kubernetes.io/service-name'];
    const before = this.#sliceEndpoints.get(key);
    if (before) this.#dirtyServices.add(`${ns}/${before.service}`);
    if (event === 'delete' || !service) this.#sliceEndpoints.delete(key);
    else {
      this.#sliceEndpoints.set(key, { service, endpoints: legacy ? endpointsEndpoints(o) : sliceEndpoints(o) });
      this.#dirtyServices.add(`${ns}/${service}`);
    }
    this.#schedule();
  }

  // === flush: one store change, one registry batch ===

  async #flush(): Promise<void> {
    const applied: Resource[] = [];
    const deleted: ResourceKey[] = [];
    const want = (key: string, resource: Resource | undefined) => {
      const current = this.store.get(...(splitKey(key) as [string, string, string]));
      if (resource) {
        if (current !== resource) applied.push(resource);
      } else if (current) deleted.push({ kind: kindKeyOf(current), namespace: current.metadata.namespace, name: current.metadata.name });
    };

    for (const key of this.#dirtyKeys) if (!key.startsWith('Service/')) want(key, this.#config.get(key));
    this.#dirtyKeys.clear();

    // Services, and for selector-less ones the WorkloadEntries of their endpoints.
    const services = new Set([...this.#dirtyServices]);
    this.#dirtyServices.clear();
    for (const key of services) {
      const [ns, name] = key.split('/') as [string, string];
      const service = this.#services.get(key);
      const usesEndpoints = service && !hasSelector(service) && (service.spec as { type?: string }).type !== 'ExternalName';
      want(`Service/${key}`, service && usesEndpoints ? this.#intern(withEndpointSelector(service)) : service);
      const entries = usesEndpoints ? serviceEndpointEntries(service, this.#endpointsOf(ns, name), (node) => (node ? this.#nodes.get(node) : undefined)) : [];
      const wanted = new Set(entries.map((e) => keyOf(e)));
      for (const e of entries) want(keyOf(e), this.#intern(e));
      for (const r of this.store.list('WorkloadEntry', ns)) {
        if (r.metadata.labels?.['sinew.dev/endpoints-of'] === name && !wanted.has(keyOf(r))) want(keyOf(r), undefined);
      }
    }

    // Pods: their Workload resources here; instances and sidecar layouts below.
    const pods = [...this.#dirtyPods];
    this.#dirtyPods.clear();
    for (const key of pods) {
      const pod = this.#pods.get(key);
      want(`Workload/${key}`, pod ? this.#intern(podWorkload(pod)) : undefined);
    }

    if (applied.length || deleted.length) await this.store.sync(applied, deleted, 'kubernetes');

    if (pods.length) {
      this.#options.registry.batch(() => {
        for (const key of pods) {
          const pod = this.#pods.get(key);
          this.#options.registry.setWorkloadInstances(key, pod ? [podInstance(pod, pod.nodeName ? this.#nodes.get(pod.nodeName) : undefined)] : []);
        }
      });
      for (const wkey of this.#dirtyWorkloads) this.#rebuildRegistration(wkey);
      this.#dirtyWorkloads.clear();
      for (const l of this.#listeners) l(`pods (${pods.length})`);
    }
  }

  /** The same frozen object while the content is the same, so the store and the builder see nothing new. */
  #intern(resource: Resource): Resource {
    const current = this.store.get(resource.kind, resource.metadata.namespace, resource.metadata.name);
    if (current && JSON.stringify({ m: current.metadata, s: current.spec }) === JSON.stringify({ m: resource.metadata, s: resource.spec })) return current;
    return resource;
  }

  #endpointsOf(ns: string, service: string): SliceEndpoint[] {
    const out: SliceEndpoint[] = [];
    for (const [key, s] of this.#sliceEndpoints) if (s.service === service && key.startsWith(`${ns}/`)) out.push(...s.endpoints);
    return out;
  }

  /** A workload's sidecars: every pod's capture ports, as the builder reads a runner's registration. */
  #rebuildRegistration(wkey: string): void {
    const [, ns, workload] = wkey.split('/') as [string, string, string];
    const pods = [...(this.#podsByWorkload.get(wkey) ?? [])].map((k) => this.#pods.get(k)!).sort((a, b) => (a.name < b.name ? -1 : 1));
    if (pods.length === 0) {
      this.registrations.delete(wkey);
      this.registrations.delete(wkey.replace(/^workload\//, 'gateway/'));
      this.#podsByWorkload.delete(wkey);
      return;
    }
    // Gateway pods (Istio's `istio: ingressgateway` label) run a router, looked up as `gateway/...`.
    const gateway = pods.some(isGatewayPod);
    const key = gateway ? `gateway/${ns}/${workload}` : wkey;
    this.registrations.delete(gateway ? wkey : `gateway/${ns}/${workload}`);
    const replicas = pods.map((p) => (gateway ? gatewayLayout(p) : sidecarLayout(p)));
    const before = this.registrations.get(key);
    const next: WorkloadRegistration = { name: workload, namespace: ns, labels: pods[0]!.labels, serviceAccount: pods[0]!.serviceAccount, kind: gateway ? 'gateway' : 'workload', replicas };
    // Same content, same object: the builder then knows the sidecars' own parts did not change.
    if (before && JSON.stringify(before) === JSON.stringify(next)) return;
    this.registrations.set(key, next);
  }
}

/**
 * A pod's sidecar as the builder sees it. In a pod, iptables sends every inbound connection
 * to 15006 and every outbound one to 15001; the proxy hands each to the listener its original
 * destination names (proxy/capture.ts). So an inbound listener is named by the containerPort
 * it serves (and binds nothing itself), and the app is reached on 127.0.0.1 — from the proxy's
 * user (UID 1337), which the rules let through.
 */
function sidecarLayout(pod: PodView): ReplicaRegistration {
  const ports: Record<string, { inbound: number; app: number }> = {};
  for (const p of pod.ports) if ((p.protocol ?? 'TCP') === 'TCP') ports[String(p.containerPort)] = { inbound: p.containerPort, app: p.containerPort };
  return {
    id: pod.name,
    host: '127.0.0.1',
    ports,
    ready: pod.ready,
    restarts: 0,
    proxy: {
      inbound: `${pod.ip}:${SIDECAR_PORTS.inboundCapture}`,
      outbound: `127.0.0.1:${SIDECAR_PORTS.outboundCapture}`,
      admin: `${pod.ip}:${SIDECAR_PORTS.admin}`,
      metrics: `${pod.ip}:${SIDECAR_PORTS.metrics}`,
    },
  };
}

/** Istio's gateway pods carry `istio: ingressgateway` (or egressgateway). */
export function isGatewayPod(pod: Pick<PodView, 'labels'>): boolean {
  return pod.labels.istio === 'ingressgateway' || pod.labels.istio === 'egressgateway';
}

/**
 * A gateway pod: its Gateway servers listen on every address of the pod, the privileged ports
 * moved up by 8000 as the gateway's Service expects (80 -> 8080, 443 -> 8443).
 */
function gatewayLayout(pod: PodView): ReplicaRegistration {
  return { id: pod.name, host: '0.0.0.0', ports: {}, ready: pod.ready, restarts: 0, proxy: { admin: `127.0.0.1:${SIDECAR_PORTS.admin}`, metrics: `${pod.ip}:${SIDECAR_PORTS.metrics}` } };
}

function splitKey(key: string): string[] {
  const first = key.indexOf('/');
  const second = key.indexOf('/', first + 1);
  return [key.slice(0, first), key.slice(first + 1, second), key.slice(second + 1)];
}

/** The first of `versions` the server serves for `group`, or undefined when it serves none (CRDs not installed). */
export async function servedVersion(client: KubeClient, group: string, versions: readonly string[]): Promise<string | undefined> {
  try {
    const info = await client.get<{ versions?: { version: string }[] }>(`/apis/${group}`);
    const served = new Set((info.versions ?? []).map((v) => v.version));
    return versions.find((v) => served.has(v));
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) return undefined;
    throw err;
  }
}
