/**
 * From Kubernetes objects to what the config store and the registry hold. Pure functions.
 *
 *  - Istio resources and Services are validated by the same pipeline as `sinew apply`
 *    (config/validate.ts), so a resource that got into the cluster without the webhook is
 *    refused here with the same diagnostics (and reported on its status, status.ts).
 *  - A Pod becomes a Sinew `Workload` resource of its own (its labels, service account and
 *    named container ports: what Service selectors and DestinationRule subsets read) plus one
 *    running instance (IP, readiness, locality), named after the workload it belongs to
 *    (Deployment, StatefulSet, ... as Istio names it for `source_workload`).
 *  - A Service without a selector takes its endpoints from EndpointSlices (or Endpoints), which
 *    then become WorkloadEntries that the Service selects by a label of Sinew's own.
 */
import type { Diagnostic } from '../api/diagnostics.js';
import type { Resource } from '../api/resources/meta.js';
import { kindDefinitions } from '../api/resources/index.js';
import { GENERIC_SECRET_KEYS, SECRET_TOP_LEVEL_FIELDS, TLS_SECRET_KEYS } from '../api/resources/secret.js';
import { deepFreeze } from '../core/freeze.js';
import { validateText } from '../config/validate.js';
import type { WorkloadInstance } from '../registry/index.js';

// === kinds ===

export interface WatchedKind {
  kind: string;
  group: string;
  /** Versions Sinew reads, newest first: the informer watches the first one the server serves. */
  versions: readonly string[];
  plural: string;
  namespaced: boolean;
}

const PLURALS: Record<string, string> = {
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  Gateway: 'gateways',
  ServiceEntry: 'serviceentries',
  WorkloadEntry: 'workloadentries',
  WorkloadGroup: 'workloadgroups',
  Sidecar: 'sidecars',
  PeerAuthentication: 'peerauthentications',
  AuthorizationPolicy: 'authorizationpolicies',
  RequestAuthentication: 'requestauthentications',
  Telemetry: 'telemetries',
  GatewayClass: 'gatewayclasses',
  BackendTLSPolicy: 'backendtlspolicies',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
  TLSRoute: 'tlsroutes',
  TCPRoute: 'tcproutes',
  ReferenceGrant: 'referencegrants',
};

/**
 * Kubernetes' version priority (apimachinery's version.CompareKubeAwareVersionStrings): GA
 * before beta before alpha, and a higher number first within each (v1, v1beta2, v1beta1,
 * v1alpha3, v1alpha2).
 */
export function newestVersionFirst(versions: readonly string[]): string[] {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [-1, 0, 0];
    return [m[2] === undefined ? 2 : m[2] === 'beta' ? 1 : 0, Number(m[1]), Number(m[3] ?? 0)];
  };
  return [...versions].sort((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    return rb[0] - ra[0] || rb[1] - ra[1] || rb[2] - ra[2];
  });
}

const watched = (group: (g: string) => boolean): WatchedKind[] =>
  kindDefinitions
    .filter((d) => group(d.group))
    .map((d) => ({ kind: d.kind, group: d.group, versions: newestVersionFirst(d.versions), plural: PLURALS[d.kind] ?? `${d.kind.toLowerCase()}s`, namespaced: d.namespaced }));

/** Every Istio kind Sinew reads (api/resources), as the cluster serves it. */
export const ISTIO_KINDS: readonly WatchedKind[] = watched((g) => g.endsWith('istio.io'));

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/**
 * The Kubernetes Gateway API kinds Sinew reads. Their CRDs are the Gateway API project's
 * (`kubectl apply -f standard-install.yaml`, or experimental for TLSRoute and TCPRoute), as
 * with Istio: `sinew install` does not install them.
 */
export const GATEWAY_API_KINDS: readonly WatchedKind[] = watched((g) => g === GATEWAY_API_GROUP);

// === metadata ===

export interface KubeMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | Date;
  ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  deletionTimestamp?: string | Date;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: KubeMeta;
  spec?: unknown;
  status?: unknown;
}

/**
 * The metadata the store keeps: what rules read (labels, annotations, creationTimestamp for
 * "the oldest VirtualService wins", uid, generation). Not resourceVersion or managedFields,
 * which change on every write (a status update too) without changing what a proxy gets.
 */
export function storedMetadata(meta: KubeMeta = {}): Record<string, unknown> {
  const annotations = { ...(meta.annotations ?? {}) };
  delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
  const out: Record<string, unknown> = { name: meta.name, namespace: meta.namespace };
  if (meta.labels && Object.keys(meta.labels).length) out.labels = { ...meta.labels };
  if (Object.keys(annotations).length) out.annotations = annotations;
  if (meta.uid) out.uid = meta.uid;
  if (meta.generation !== undefined) out.generation = meta.generation;
  if (meta.creationTimestamp) out.creationTimestamp = meta.creationTimestamp instanceof Date ? meta.creationTimestamp.toISOString() : meta.creationTimestamp;
  return out;
}

export const objectKey = (o: KubeObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export interface Checked {
  resource?: Resource;
  /** Every finding (errors and warnings), as `sinew validate` reports them. */
  diagnostics: Diagnostic[];
}

/**
 * An Istio resource or Service from the cluster, validated as `sinew apply` would validate it.
 * `origin` names it in diagnostics (no file: it came from the API server).
 */
export function checkObject(obj: KubeObject, origin = 'kubernetes'): Checked {
  // A Secret's content sits at the top level (type, data), every other kind's under spec.
  const content = obj.kind === 'Secret' && !obj.apiVersion?.includes('/') ? pick(obj as Record<string, unknown>, SECRET_TOP_LEVEL_FIELDS) : { spec: obj.spec ?? {} };
  const doc = { apiVersion: obj.apiVersion, kind: obj.kind, metadata: storedMetadata(obj.metadata), ...content };
  const result = validateText(`${origin}:${obj.kind}/${objectKey(obj)}`, JSON.stringify(doc), { defaultNamespace: obj.metadata?.namespace ?? 'default' });
  const resource = result.resources[0];
  // No file and line here: the position inside a JSON rendering means nothing to the user.
  const diagnostics = result.diagnostics.map((d) => ({ ...d, source: undefined }));
  return resource ? { resource, diagnostics } : { diagnostics };
}

function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

// === secrets ===

/** Secrets that are never mesh credentials, left out by the informer's field selector. */
export const SECRETS_FIELD_SELECTOR = 'type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1';

/**
 * Whether a Secret has the shape of a gateway credential as Istio reads one
 * (pilot/pkg/credentials/kube/secrets.go): `kubernetes.io/tls` with tls.crt and tls.key, or a
 * generic Secret with cert and key, or with only a CA (`cacert`, or `ca.crt`).
 */
export function isCredentialSecret(secret: { type?: string; data?: Record<string, string> }): boolean {
  const keys = new Set(Object.keys(secret.data ?? {}));
  const has = (...k: string[]) => k.every((x) => keys.has(x));
  return has(TLS_SECRET_KEYS.cert, TLS_SECRET_KEYS.key) || has(GENERIC_SECRET_KEYS.cert, GENERIC_SECRET_KEYS.key) || has(GENERIC_SECRET_KEYS.ca) || has(TLS_SECRET_KEYS.ca);
}

/** The informer's trim for Secrets: only credentials keep their values in the control plane. */
export function trimSecret<T extends KubeObject & { data?: Record<string, string> }>(secret: T): T {
  if (!isCredentialSecret(secret) && secret.data !== undefined) delete secret.data;
  return secret;
}

// === pods ===

interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface KubePod extends KubeObject {
  spec?: {
    serviceAccountName?: string;
    nodeName?: string;
    hostNetwork?: boolean;
    containers?: { name: string; ports?: ContainerPort[] }[];
    initContainers?: { name: string; ports?: ContainerPort[]; restartPolicy?: string }[];
  };
  status?: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

/** What the mesh needs of a Pod. */
export interface PodView {
  namespace: string;
  name: string;
  /** The Deployment (StatefulSet, Job, ...) the pod belongs to: Istio's workload name. */
  workload: string;
  labels: Record<string, string>;
  serviceAccount: string;
  ip: string;
  ready: boolean;
  nodeName?: string;
  ports: ContainerPort[];
}

/**
 * The workload a pod belongs to, as Istio derives it (pkg/kube/util.go GetDeployMetaFromPod):
 * a ReplicaSet named `<deployment>-<pod-template-hash>` means the Deployment; a Job named
 * `<cronjob>-<digits>` the CronJob; any other controller by its name; a bare pod by its own.
 */
export function workloadNameOf(pod: KubePod): string {
  const meta = pod.metadata ?? {};
  const owner = meta.ownerReferences?.find((o) => o.controller) ?? meta.ownerReferences?.[0];
  if (!owner) return meta.name ?? '';
  const hash = meta.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return owner.name.slice(0, -hash.length - 1);
  if (owner.kind === 'Job' && /-\d+$/.test(owner.name) && meta.labels?.['job-name'] === owner.name) {
    // CronJob's jobs are `<cronjob>-<scheduled minute>`.
    return owner.name.replace(/-\d+$/, '');
  }
  return owner.name;
}

/** Undefined for pods that serve nothing yet or any more (no IP, finished, host network). */
export function podView(pod: KubePod): PodView | undefined {
  const meta = pod.metadata ?? {};
  const ip = pod.status?.podIP;
  const phase = pod.status?.phase;
  if (!ip || phase === 'Succeeded' || phase === 'Failed' || pod.spec?.hostNetwork || !meta.name || !meta.namespace) return undefined;
  const ports: ContainerPort[] = [];
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')]) {
    for (const p of c.ports ?? []) ports.push({ name: p.name, containerPort: p.containerPort, protocol: p.protocol });
  }
  return {
    namespace: meta.namespace,
    name: meta.name,
    workload: workloadNameOf(pod),
    labels: { ...(meta.labels ?? {}) },
    serviceAccount: pod.spec?.serviceAccountName ?? 'default',
    ip,
    // Terminating pods leave the endpoints at once, as the EndpointSlice controller does.
    ready: !meta.deletionTimestamp && (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    nodeName: pod.spec?.nodeName,
    ports,
  };
}

/** The pod as a Workload resource: labels, service account, named ports (no command: Kubernetes runs it). */
export function podWorkload(view: PodView): Resource {
  return deepFreeze({
    apiVersion: 'sinew.dev/v1alpha1',
    group: 'sinew.dev',
    kind: 'Workload',
    metadata: { name: view.name, namespace: view.namespace, labels: view.labels, annotations: { 'sinew.dev/pod-of': view.workload } },
    spec: {
      command: [],
      serviceAccount: view.serviceAccount,
      ports: view.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, ...(p.protocol ? { protocol: p.protocol } : {}) })),
    },
  }) as Resource;
}

/** The pod's one running instance (endpoints are `<pod IP>:<containerPort>`). */
export function podInstance(view: PodView, locality: string | undefined): WorkloadInstance {
  const instance: WorkloadInstance = { name: view.name, address: view.ip, health: view.ready ? 'HEALTHY' : 'UNHEALTHY', workload: view.workload };
  // A pod's own `istio-locality` label overrides its node's (Istio's rule).
  const own = view.labels['istio-locality']?.replace(/\./g, '/');
  if (own ?? locality) instance.locality = own ?? locality;
  return instance;
}

/** `region/zone/subzone` from a Node's topology labels (Istio's locality). */
export function nodeLocality(labels: Record<string, string> | undefined): string | undefined {
  if (!labels) return undefined;
  const region = labels['topology.kubernetes.io/region'] ?? labels['failure-domain.beta.kubernetes.io/region'];
  const zone = labels['topology.kubernetes.io/zone'] ?? labels['failure-domain.beta.kubernetes.io/zone'];
  const subzone = labels['topology.istio.io/subzone'];
  if (!region) return undefined;
  return [region, zone, subzone].filter((s) => s !== undefined && s !== '').join('/');
}

// === services and their endpoint slices ===

/** The label by which a selector-less Service selects the WorkloadEntries made from its slices. */
export const ENDPOINTS_OF_LABEL = 'sinew.dev/endpoints-of';

export interface SliceEndpoint {
  address: string;
  ready: boolean;
  /** port name -> number */
  ports: Record<string, number>;
  nodeName?: string;
}

interface EndpointSliceLike extends KubeObject {
  addressType?: string;
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean | null }; nodeName?: string; topology?: Record<string, string> }[];
  ports?: { name?: string; port?: number }[] | null;
}

/** The ready endpoints of one EndpointSlice (discovery.k8s.io v1 or v1beta1: same fields here). */
export function sliceEndpoints(slice: EndpointSliceLike): SliceEndpoint[] {
  if (slice.addressType && slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') return [];
  const ports: Record<string, number> = {};
  for (const p of slice.ports ?? []) if (p.port !== undefined) ports[p.name ?? ''] = p.port;
  const out: SliceEndpoint[] = [];
  for (const e of slice.endpoints ?? []) {
    // An unset ready condition means ready (the API's documented default).
    const ready = e.conditions?.ready !== false;
    for (const address of e.addresses) out.push({ address, ready, ports, nodeName: e.nodeName ?? e.topology?.['kubernetes.io/hostname'] });
  }
  return out;
}

interface EndpointsLike extends KubeObject {
  subsets?: { addresses?: { ip: string; nodeName?: string }[]; notReadyAddresses?: { ip: string }[]; ports?: { name?: string; port: number }[] }[];
}

/** core/v1 Endpoints, for servers without EndpointSlices. */
export function endpointsEndpoints(endpoints: EndpointsLike): SliceEndpoint[] {
  const out: SliceEndpoint[] = [];
  for (const s of endpoints.subsets ?? []) {
    const ports: Record<string, number> = {};
    for (const p of s.ports ?? []) ports[p.name ?? ''] = p.port;
    for (const a of s.addresses ?? []) out.push({ address: a.ip, ready: true, ports, nodeName: a.nodeName });
    for (const a of s.notReadyAddresses ?? []) out.push({ address: a.ip, ready: false, ports });
  }
  return out;
}

/**
 * A selector-less Service's endpoints as WorkloadEntries the Service then selects. Only ready
 * endpoints serve, as Kubernetes' own proxies do.
 */
export function serviceEndpointEntries(service: Resource, endpoints: readonly SliceEndpoint[], locality: (nodeName: string | undefined) => string | undefined): Resource[] {
  const ns = service.metadata.namespace;
  const name = service.metadata.name;
  const out: Resource[] = [];
  const seen = new Set<string>();
  for (const e of endpoints) {
    if (!e.ready || seen.has(e.address)) continue;
    seen.add(e.address);
    const ports = Object.fromEntries(Object.entries(e.ports).filter(([portName]) => portName !== ''));
    const loc = locality(e.nodeName);
    out.push(
      deepFreeze({
        apiVersion: 'networking.istio.io/v1',
        group: 'networking.istio.io',
        kind: 'WorkloadEntry',
        metadata: { name: `${name}-ep-${e.address.replace(/[.:]/g, '-')}`, namespace: ns, labels: { [ENDPOINTS_OF_LABEL]: name } },
        spec: { address: e.address, labels: { [ENDPOINTS_OF_LABEL]: name }, ...(Object.keys(ports).length ? { ports } : {}), ...(loc ? { locality: loc } : {}) },
      }) as Resource,
    );
  }
  return out;
}

/** A selector-less Service, selecting the WorkloadEntries made from its endpoints. */
export function withEndpointSelector(service: Resource): Resource {
  const spec = service.spec as { selector?: Record<string, string> | null };
  return deepFreeze({ ...service, spec: { ...spec, selector: { [ENDPOINTS_OF_LABEL]: service.metadata.name } } }) as Resource;
}

export function hasSelector(service: Resource): boolean {
  const selector = (service.spec as { selector?: Record<string, string> | null }).selector;
  return !!selector && Object.keys(selector).length > 0;
}
