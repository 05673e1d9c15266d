/**
 * The Kubernetes Gateway API's binding rules, written once for the compiler (what a gateway
 * proxy and a sidecar serve) and for status (what `sinew get` shows, src/config/gateway-api):
 *
 *   - which GatewayClasses Sinew controls, and so which Gateways it runs;
 *   - each listener's validity: protocol, TLS certificate references (and ReferenceGrants),
 *     route kinds, conflicts with the other listeners of its port;
 *   - which listeners (of Gateways) or Services (GAMMA, GEP-1426) each route attaches to, with
 *     the hostnames it serves there (GEP-1215 hostname intersection and listener isolation);
 *   - each backendRef: found, permitted (ReferenceGrant), of a kind Sinew can send to.
 *
 * The reasons are the Gateway API's (sigs.k8s.io/gateway-api/apis/v1 RouteConditionReason,
 * ListenerConditionReason, GatewayConditionReason), chosen where the spec leaves a choice as
 * Istio's controller chooses them (pilot/pkg/config/kube/gateway). Pure: resources in, a
 * frozen-able plain object out.
 */
import type { Resource } from '../../api/resources/meta.js';
import type {
  AllowedRoutes,
  BackendObjectReference,
  GatewayClassSpec,
  GatewaySpec,
  LabelSelector,
  Listener,
  ParentReference,
  ReferenceGrantSpec,
  RouteGroupKind,
  RouteKind,
  SecretObjectReference,
} from '../../api/resources/gateway-api/types.js';
import { GATEWAY_API_GROUP, ROUTE_KINDS } from '../../api/resources/gateway-api/types.js';
import { hostIntersection, hostSubsetOf, isWildcardHost } from '../hosts.js';
import { byCreation } from '../creation-order.js';
import { servesCertificate } from '../credentials.js';
import type { SecretSpec } from '../../api/resources/secret.js';
import type { ServiceSpec as KubeServiceSpec } from '../../api/resources/kubernetes.js';
import { bindBackendTlsPolicies, type BackendTlsPolicyState } from './backend-tls.js';
import { configMapsOf, resolveCaCertificateRefs } from './ca-certificates.js';

// === constants ===

/** The controller names Sinew answers to: its own and Istio's (so Istio's GatewayClasses work as they are). */
export const SINEW_CONTROLLER = 'sinew.dev/gateway-controller';
export const ISTIO_CONTROLLER = 'istio.io/gateway-controller';
export const CONTROLLER_NAMES: readonly string[] = [SINEW_CONTROLLER, ISTIO_CONTROLLER];

/**
 * GatewayClasses that exist without a resource, as istiod installs `istio`: a Gateway of class
 * `istio` or `sinew` is Sinew's even when no GatewayClass of that name was applied.
 */
export const BUILT_IN_CLASSES: Readonly<Record<string, string>> = { istio: ISTIO_CONTROLLER, sinew: SINEW_CONTROLLER };

/** The label every pod of a Gateway's deployment carries (Istio's, and the Gateway API's GEP-1762). */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

const CORE = '';

/** The route kinds a listener of each protocol takes, as Istio supports them (GRPCRoute beside HTTPRoute). */
const KINDS_BY_PROTOCOL: Readonly<Record<string, readonly RouteKind[]>> = {
  HTTP: ['HTTPRoute', 'GRPCRoute'],
  HTTPS: ['HTTPRoute', 'GRPCRoute'],
  TLS: ['TLSRoute'],
  TCP: ['TCPRoute'],
};

// === results ===

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionState {
  status: ConditionStatus;
  reason: string;
  message: string;
}

export interface ClassState {
  name: string;
  controllerName: string;
  /** Whether Sinew controls it (a known controller name). */
  ours: boolean;
  /** Absent for the built-in classes. */
  resource?: Resource<GatewayClassSpec>;
  accepted: ConditionState;
}

/** A certificate a listener presents: a Secret, found and permitted, or why not. */
export interface CertificateRefState {
  ref: SecretObjectReference;
  namespace: string;
  name: string;
  /** Undefined when usable; else the listener's ResolvedRefs reason. */
  problem?: { reason: 'InvalidCertificateRef' | 'RefNotPermitted'; message: string };
}

export interface ListenerState {
  listener: Listener;
  index: number;
  /** `HTTP`, `HTTPS`, `TLS`, `TCP` or what was written. */
  protocol: string;
  tlsMode?: 'Terminate' | 'Passthrough';
  certificates: CertificateRefState[];
  supportedKinds: RouteGroupKind[];
  accepted: ConditionState;
  resolvedRefs: ConditionState;
  conflicted: ConditionState;
  /**
   * HTTPS: the client certificates it asks for (GEP-91 `tls.frontend`, the entry for its port or
   * the default): the CA bundle they must chain to, or `insecureFallback` (every client let in).
   */
  clientValidation?: { caPem: string; insecureFallback: boolean };
  /** Routes attach to it (it is accepted and not conflicted). */
  usable: boolean;
  attachedRoutes: number;
}

export interface GatewayState {
  resource: Resource<GatewaySpec>;
  /** `namespace/name`. */
  key: string;
  className: string;
  listeners: ListenerState[];
  accepted: ConditionState;
  /** Some listener lets clients in without a valid certificate (frontend validation AllowInsecureFallback). */
  insecureFrontendValidation: boolean;
}

/** Where a route attached on one listener, and the hostnames it serves there. */
export interface ListenerAttachment {
  gateway: GatewayState;
  listener: ListenerState;
  /** The intersection of the route's and the listener's hostnames (`*` for any). */
  hostnames: string[];
}

export interface ParentState {
  ref: ParentReference;
  index: number;
  /** `Gateway` or `Service` (GAMMA). */
  kind: 'Gateway' | 'Service';
  namespace: string;
  name: string;
  accepted: ConditionState;
  /** Gateways: the listeners it attached to. */
  listeners: ListenerAttachment[];
  /** Services (GAMMA): the service it shapes, and the port when the parentRef names one. */
  service?: { namespace: string; name: string; port?: number };
}

export interface BackendState {
  ref: BackendObjectReference & { weight?: number };
  index: number;
  namespace: string;
  /** Undefined when the backend can be sent to; else the route's ResolvedRefs reason. */
  problem?: { reason: 'BackendNotFound' | 'RefNotPermitted' | 'InvalidKind' | 'UnsupportedProtocol'; message: string };
  /** A found Service and its port: where to send. */
  service?: { namespace: string; name: string; port: number; appProtocol?: string };
  weight: number;
}

export interface RouteState {
  resource: Resource;
  kind: RouteKind;
  /** `namespace/name`. */
  key: string;
  parents: ParentState[];
  /** Per rule, per backendRef (the rule's own backendRefs). */
  rules: BackendState[][];
  /** Backends named by filters (RequestMirror): per rule, per filter index. */
  filterBackends: Map<string, BackendState>;
  resolvedRefs: ConditionState;
}

export interface GatewayApiBinding {
  classes: Map<string, ClassState>;
  /** The Gateways of Sinew's classes, oldest first. */
  gateways: GatewayState[];
  /** Gateways of classes that are not Sinew's (listed so status can leave them alone). */
  foreignGateways: Resource<GatewaySpec>[];
  /** Every route, oldest first. */
  routes: RouteState[];
  gatewayByKey: Map<string, GatewayState>;
  /** Every BackendTLSPolicy (./backend-tls.ts), oldest first, with the Gateways that send to its targets. */
  backendTlsPolicies: (BackendTlsPolicyState & { ancestors: GatewayState[] })[];
}

// === helpers ===

const ok = (reason: string, message: string): ConditionState => ({ status: 'True', reason, message });
const notOk = (reason: string, message: string): ConditionState => ({ status: 'False', reason, message });

const isGatewayApiKind = (r: Resource, kind: string) => r.kind === kind && r.group === GATEWAY_API_GROUP;

/** Kubernetes label selector semantics (matchLabels and matchExpressions, ANDed). */
export function labelSelectorMatches(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** A Namespace's labels, with the `kubernetes.io/metadata.name` label the API server adds to every namespace. */
function namespaceLabels(resources: readonly Resource[], namespace: string): Record<string, string> {
  const ns = resources.find((r) => r.kind === 'Namespace' && r.group === CORE && r.metadata.name === namespace);
  return { ...(ns?.metadata.labels ?? {}), 'kubernetes.io/metadata.name': namespace };
}

/**
 * Whether a ReferenceGrant in the target's namespace lets `from` (group, kind, namespace) refer
 * to `to` (group, kind, name) there (GEP-709). A reference within one namespace needs none.
 */
export function referenceAllowed(
  grants: readonly Resource<ReferenceGrantSpec>[],
  from: { group: string; kind: string; namespace: string },
  to: { group: string; kind: string; namespace: string; name: string },
): boolean {
  if (from.namespace === to.namespace) return true;
  return grants.some(
    (g) =>
      g.metadata.namespace === to.namespace &&
      g.spec.from.some((f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace) &&
      g.spec.to.some((t) => t.group === to.group && t.kind === to.kind && (t.name === undefined || t.name === '' || t.name === to.name)),
  );
}

/** The route kinds a listener takes: its protocol's, narrowed by `allowedRoutes.kinds`; and whether some asked-for kind is not one of them. */
function routeKinds(protocol: string, allowed: AllowedRoutes | undefined): { kinds: RouteGroupKind[]; invalid: RouteGroupKind[] } {
  const supported = KINDS_BY_PROTOCOL[protocol] ?? [];
  if (!allowed?.kinds?.length) return { kinds: supported.map((kind) => ({ group: GATEWAY_API_GROUP, kind })), invalid: [] };
  const kinds: RouteGroupKind[] = [];
  const invalid: RouteGroupKind[] = [];
  for (const k of allowed.kinds) {
    const group = k.group ?? GATEWAY_API_GROUP;
    if (group === GATEWAY_API_GROUP && (supported as readonly string[]).includes(k.kind)) kinds.push({ group, kind: k.kind });
    else invalid.push(k);
  }
  return { kinds, invalid };
}

/**
 * GEP-1215: the hostnames a route serves on a listener: the intersection of the two sets, where
 * an absent set is `*`. A listener `*.example.com` and a route `foo.example.com` meet at
 * `foo.example.com`; `*.example.com` does not match `example.com`.
 */
export function intersectHostnames(listenerHostname: string | undefined, routeHostnames: readonly string[] | undefined): string[] {
  const listener = listenerHostname ? listenerHostname.toLowerCase() : '*';
  const route = routeHostnames?.length ? routeHostnames.map((h) => h.toLowerCase()) : ['*'];
  const out: string[] = [];
  for (const h of route) {
    const i = listener === '*' ? h : h === '*' ? listener : hostIntersection(listener, h);
    if (i !== undefined && !out.includes(i)) out.push(i);
  }
  return out;
}

/** How the transport of a listener's port is spoken: listeners that share a port must agree on it. */
function transportOf(protocol: string): string {
  return protocol === 'HTTPS' || protocol === 'TLS' ? 'tls' : protocol.toLowerCase();
}

// === the binding ===

export interface BindOptions {
  /** Whether a Secret holds a certificate and key a listener can present (default: Istio's layouts, PEM checked). */
  secretUsable?: (secret: Resource) => boolean;
}

/** Binds the Gateway API resources of a config snapshot: see the module comment. */
export function bindGatewayApi(resources: readonly Resource[], options: BindOptions = {}): GatewayApiBinding {
  const classes = new Map<string, ClassState>();
  for (const [name, controllerName] of Object.entries(BUILT_IN_CLASSES)) {
    classes.set(name, { name, controllerName, ours: true, accepted: ok('Accepted', `Handled by ${controllerName === SINEW_CONTROLLER ? 'Sinew' : 'Sinew, as Istio\'s controller'}`) });
  }
  for (const r of resources) {
    if (!isGatewayApiKind(r, 'GatewayClass')) continue;
    const spec = r.spec as GatewayClassSpec;
    const ours = CONTROLLER_NAMES.includes(spec.controllerName);
    const accepted = !ours
      ? { status: 'Unknown' as const, reason: 'Pending', message: `controller ${spec.controllerName} is not Sinew's (${CONTROLLER_NAMES.join(', ')})` }
      : spec.parametersRef
        ? notOk('InvalidParameters', `parametersRef ${spec.parametersRef.kind} ${spec.parametersRef.name} is not supported: Sinew takes no parameters`)
        : ok('Accepted', 'Handled by Sinew');
    classes.set(r.metadata.name, { name: r.metadata.name, controllerName: spec.controllerName, ours, resource: r as Resource<GatewayClassSpec>, accepted });
  }

  const grants = resources.filter((r) => isGatewayApiKind(r, 'ReferenceGrant')) as Resource<ReferenceGrantSpec>[];
  const secrets = new Map(resources.filter((r) => r.kind === 'Secret' && r.group === CORE).map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]));
  const services = new Map(resources.filter((r) => r.kind === 'Service' && r.group === CORE).map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]));
  const secretUsable = options.secretUsable ?? ((s: Resource) => servesCertificate(s.spec as SecretSpec));
  const configMaps = configMapsOf(resources);

  const gateways: GatewayState[] = [];
  const foreignGateways: Resource<GatewaySpec>[] = [];
  const allGateways = (resources.filter((r) => isGatewayApiKind(r, 'Gateway')) as Resource<GatewaySpec>[]).sort(byCreation);
  for (const gw of allGateways) {
    const cls = classes.get(gw.spec.gatewayClassName);
    if (!cls?.ours) {
      foreignGateways.push(gw);
      continue;
    }
    gateways.push(bindGateway(gw, cls, grants, secrets, secretUsable, configMaps));
  }
  const gatewayByKey = new Map(gateways.map((g) => [g.key, g]));

  const routes: RouteState[] = [];
  const allRoutes = resources.filter((r) => r.group === GATEWAY_API_GROUP && (ROUTE_KINDS as readonly string[]).includes(r.kind)).sort(byCreation);
  for (const route of allRoutes) routes.push(bindRoute(route, resources, gatewayByKey, grants, services));
  // Listener isolation needs every route's hostnames first; counts need the final attachments.
  isolateListeners(routes);
  for (const route of routes) for (const parent of route.parents) for (const a of parent.listeners) a.listener.attachedRoutes++;
  const backendTlsPolicies = bindBackendTlsPolicies(resources).map((p) => ({ ...p, ancestors: backendTlsAncestors(p, routes, services) }));
  return { classes, gateways, foreignGateways, routes, gatewayByKey, backendTlsPolicies };
}

/**
 * A BackendTLSPolicy's ancestors (GEP-1897 status): the Gateways with a route attached that
 * sends to one of its targets (the Service, or the port its sectionName names), in the order
 * the Gateways were created.
 */
function backendTlsAncestors(policy: BackendTlsPolicyState, routes: readonly RouteState[], services: ReadonlyMap<string, Resource>): GatewayState[] {
  const ns = policy.resource.metadata.namespace;
  const targets = (policy.resource.spec.targetRefs ?? []).filter((t) => (t.group ?? '') === '' && t.kind === 'Service');
  const portName = (service: string, port: number) => ((services.get(`${ns}/${service}`)?.spec ?? {}) as KubeServiceSpec).ports?.find((p) => p.port === port)?.name;
  const sends = (b: BackendState) =>
    b.service?.namespace === ns && targets.some((t) => t.name === b.service!.name && (t.sectionName === undefined || t.sectionName === portName(t.name, b.service!.port)));
  const out: GatewayState[] = [];
  for (const route of routes) {
    if (![...route.rules.flat(), ...route.filterBackends.values()].some(sends)) continue;
    for (const parent of route.parents) for (const a of parent.listeners) if (!out.includes(a.gateway)) out.push(a.gateway);
  }
  return out.sort((a, b) => byCreation(a.resource, b.resource));
}

function bindGateway(
  gw: Resource<GatewaySpec>,
  cls: ClassState,
  grants: readonly Resource<ReferenceGrantSpec>[],
  secrets: Map<string, Resource>,
  secretUsable: (secret: Resource) => boolean,
  configMaps: ReadonlyMap<string, Resource>,
): GatewayState {
  const ns = gw.metadata.namespace;
  const frontend = gw.spec.tls?.frontend;
  const listeners: ListenerState[] = gw.spec.listeners.map((listener, index) => {
    const protocol = listener.protocol;
    const supportedProtocol = KINDS_BY_PROTOCOL[protocol] !== undefined;
    const { kinds, invalid } = supportedProtocol ? routeKinds(protocol, listener.allowedRoutes) : { kinds: [], invalid: [] };
    const tlsMode = protocol === 'HTTPS' || protocol === 'TLS' ? (listener.tls?.mode ?? 'Terminate') : undefined;
    const certificates: CertificateRefState[] = [];
    if (tlsMode === 'Terminate') {
      for (const ref of listener.tls?.certificateRefs ?? []) {
        const refNs = ref.namespace ?? ns;
        const state: CertificateRefState = { ref, namespace: refNs, name: ref.name };
        const group = ref.group ?? CORE;
        const kind = ref.kind ?? 'Secret';
        const secret = secrets.get(`${refNs}/${ref.name}`);
        if (group !== CORE || kind !== 'Secret') state.problem = { reason: 'InvalidCertificateRef', message: `certificateRef ${group ? `${group}/` : ''}${kind} ${ref.name} is not a Secret` };
        else if (!referenceAllowed(grants, { group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: ns }, { group: CORE, kind: 'Secret', namespace: refNs, name: ref.name })) {
          state.problem = { reason: 'RefNotPermitted', message: `no ReferenceGrant in ${refNs} lets Gateways of ${ns} use Secret ${ref.name}` };
        } else if (!secret) state.problem = { reason: 'InvalidCertificateRef', message: `Secret ${refNs}/${ref.name} does not exist` };
        else if (!secretUsable(secret)) state.problem = { reason: 'InvalidCertificateRef', message: `Secret ${refNs}/${ref.name} holds no usable certificate and key (tls.crt and tls.key, PEM, the key the certificate's)` };
        certificates.push(state);
      }
    }
    let accepted: ConditionState = ok('Accepted', 'No errors found');
    let resolvedRefs: ConditionState = ok('ResolvedRefs', 'No errors found');
    if (!supportedProtocol) accepted = notOk('UnsupportedProtocol', `protocol ${protocol} is not supported (HTTP, HTTPS, TLS and TCP are)`);
    else if (protocol === 'HTTPS' && tlsMode === 'Passthrough') accepted = notOk('UnsupportedProtocol', 'an HTTPS listener terminates TLS; use protocol TLS for Passthrough');
    // TLSRouteModeTerminate is an extended feature Sinew does not declare: the spec's answer is Accepted False, UnsupportedValue.
    else if (protocol === 'TLS' && tlsMode === 'Terminate') accepted = notOk('UnsupportedValue', 'a TLS listener passes TLS through to its TLSRoutes (mode Passthrough); terminating it (mode Terminate) is not supported');
    const badCert = certificates.find((c) => c.problem);
    if (invalid.length > 0) resolvedRefs = notOk('InvalidRouteKinds', `route kinds ${invalid.map((k) => k.kind).join(', ')} are not supported on a ${protocol} listener`);
    else if (badCert) resolvedRefs = notOk(badCert.problem!.reason, badCert.problem!.message);
    else if (tlsMode === 'Terminate' && certificates.length === 0 && supportedProtocol) resolvedRefs = notOk('InvalidCertificateRef', 'a listener that terminates TLS needs a certificateRef');
    // GEP-91: an HTTPS listener verifies client certificates as its port's entry, else the
    // default, asks; a validation none of whose CA references resolves leaves it unusable.
    let clientValidation: ListenerState['clientValidation'];
    const validation = protocol === 'HTTPS' ? (frontend?.perPort?.find((p) => p.port === listener.port)?.tls.validation ?? frontend?.default.validation) : undefined;
    if (validation && accepted.status === 'True') {
      const permitted = (ref: { namespace: string; name: string }) => referenceAllowed(grants, { group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: ns }, { group: CORE, kind: 'ConfigMap', ...ref });
      const { caPem, problems } = resolveCaCertificateRefs(validation.caCertificateRefs, ns, configMaps, permitted);
      const first = problems.find((p) => p.problem === 'kind') ?? problems.find((p) => p.problem === 'notPermitted') ?? problems[0];
      if (first && resolvedRefs.status === 'True') {
        resolvedRefs = notOk(first.problem === 'kind' ? 'InvalidCACertificateKind' : first.problem === 'notPermitted' ? 'RefNotPermitted' : 'InvalidCACertificateRef', problems.map((p) => p.message).join('; '));
      }
      if (!caPem) accepted = notOk('NoValidCACertificate', 'no caCertificateRef of its client certificate validation resolves to a CA certificate');
      else clientValidation = { caPem, insecureFallback: validation.mode === 'AllowInsecureFallback' };
    }
    return {
      listener,
      index,
      protocol,
      tlsMode,
      certificates,
      supportedKinds: kinds,
      accepted,
      resolvedRefs,
      ...(clientValidation ? { clientValidation } : {}),
      conflicted: notOk('NoConflicts', 'No conflicts'),
      usable: accepted.status === 'True',
      attachedRoutes: 0,
    };
  });
  // Listeners of one port must speak one transport: the first one keeps the port (ProtocolConflict).
  const firstByPort = new Map<number, ListenerState>();
  for (const l of listeners) {
    if (!l.usable) continue;
    const first = firstByPort.get(l.listener.port);
    if (!first) firstByPort.set(l.listener.port, l);
    else if (transportOf(first.protocol) !== transportOf(l.protocol)) {
      l.conflicted = ok('ProtocolConflict', `port ${l.listener.port} is taken by listener ${first.listener.name} (${first.protocol})`);
      l.accepted = notOk('ProtocolConflict', l.conflicted.message);
      l.usable = false;
    } else if (transportOf(l.protocol) === 'tcp') {
      // Two TCP listeners on one port cannot be told apart (no hostname on TCP).
      l.conflicted = ok('HostnameConflict', `port ${l.listener.port} is taken by TCP listener ${first.listener.name}`);
      l.accepted = notOk('HostnameConflict', l.conflicted.message);
      l.usable = false;
    }
  }
  const valid = listeners.filter((l) => l.usable).length;
  let accepted: ConditionState;
  const parametersRef = gw.spec.infrastructure?.parametersRef;
  if (cls.accepted.status !== 'True') accepted = notOk('InvalidParameters', `GatewayClass ${cls.name} is not accepted: ${cls.accepted.message}`);
  // Gateway API: a parametersRef that cannot be resolved makes the Gateway not Accepted, reason
  // InvalidParameters. Sinew's gateways take no parameters, so none resolves (Istio reads a ConfigMap).
  else if (parametersRef) accepted = notOk('InvalidParameters', `infrastructure.parametersRef ${parametersRef.group}/${parametersRef.kind} ${parametersRef.name} cannot be used: Sinew's gateways take no parameters`);
  else if (valid === listeners.length) accepted = ok('Accepted', 'Resource accepted');
  // Spec: Accepted stays True while at least one listener is valid, with reason ListenersNotValid.
  else accepted = valid > 0 ? ok('ListenersNotValid', `${listeners.length - valid} of ${listeners.length} listeners are not valid`) : notOk('ListenersNotValid', 'no listener is valid');
  const insecureFrontendValidation = listeners.some((l) => l.usable && l.clientValidation?.insecureFallback);
  return { resource: gw, key: `${gw.metadata.namespace}/${gw.metadata.name}`, className: cls.name, listeners, accepted, insecureFrontendValidation };
}

function bindRoute(
  route: Resource,
  resources: readonly Resource[],
  gatewayByKey: Map<string, GatewayState>,
  grants: readonly Resource<ReferenceGrantSpec>[],
  services: Map<string, Resource>,
): RouteState {
  const kind = route.kind as RouteKind;
  const ns = route.metadata.namespace;
  const spec = route.spec as { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: { backendRefs?: (BackendObjectReference & { weight?: number })[]; filters?: { type: string; requestMirror?: { backendRef: BackendObjectReference } }[] }[] };
  const parents: ParentState[] = [];
  (spec.parentRefs ?? []).forEach((ref, index) => {
    const group = ref.group ?? GATEWAY_API_GROUP;
    const refKind = ref.kind ?? 'Gateway';
    const pns = ref.namespace ?? ns;
    if (group === GATEWAY_API_GROUP && refKind === 'Gateway') {
      const gw = gatewayByKey.get(`${pns}/${ref.name}`);
      if (!gw) return; // not a Gateway Sinew runs: another controller's, or none (no status of ours)
      parents.push(attachToGateway(route, kind, ref, index, gw, resources, spec.hostnames));
    } else if (group === CORE && refKind === 'Service' && (kind === 'HTTPRoute' || kind === 'GRPCRoute')) {
      const svc = services.get(`${pns}/${ref.name}`);
      const state: ParentState = { ref, index, kind: 'Service', namespace: pns, name: ref.name, accepted: ok('Accepted', 'Route was valid'), listeners: [] };
      const ports = ((svc?.spec as { ports?: { port: number }[] } | undefined)?.ports ?? []).map((p) => p.port);
      if (!svc) state.accepted = notOk('BackendNotFound', `Service ${pns}/${ref.name} does not exist`);
      else if (ref.port !== undefined && !ports.includes(ref.port)) state.accepted = notOk('NoMatchingParent', `Service ${pns}/${ref.name} has no port ${ref.port}`);
      else state.service = { namespace: pns, name: ref.name, ...(ref.port !== undefined ? { port: ref.port } : {}) };
      parents.push(state);
    }
  });

  const backendOf = (ref: BackendObjectReference & { weight?: number }, index: number): BackendState => {
    const group = ref.group ?? CORE;
    const bkind = ref.kind ?? 'Service';
    const bns = ref.namespace ?? ns;
    const state: BackendState = { ref, index, namespace: bns, weight: ref.weight ?? 1 };
    if (group !== CORE || bkind !== 'Service') {
      state.problem = { reason: 'InvalidKind', message: `backendRef ${group ? `${group}/` : ''}${bkind} ${ref.name} is not a Service` };
      return state;
    }
    // A consumer route (GEP-1426) sends to the Service it is attached to without a
    // ReferenceGrant: naming it as the parent already says the route is about it.
    const ownParent = parents.some((p) => p.kind === 'Service' && p.namespace === bns && p.name === ref.name);
    if (!ownParent && !referenceAllowed(grants, { group: GATEWAY_API_GROUP, kind, namespace: ns }, { group: CORE, kind: 'Service', namespace: bns, name: ref.name })) {
      state.problem = { reason: 'RefNotPermitted', message: `no ReferenceGrant in ${bns} lets ${kind}s of ${ns} send to Service ${ref.name}` };
      return state;
    }
    const svc = services.get(`${bns}/${ref.name}`);
    if (!svc) {
      state.problem = { reason: 'BackendNotFound', message: `Service ${bns}/${ref.name} does not exist` };
      return state;
    }
    const port = ((svc.spec as { ports?: { port: number; appProtocol?: string }[] }).ports ?? []).find((p) => p.port === ref.port);
    if (ref.port === undefined || !port) {
      state.problem = { reason: 'BackendNotFound', message: `Service ${bns}/${ref.name} has no port ${ref.port ?? '(none given)'}` };
      return state;
    }
    state.service = { namespace: bns, name: ref.name, port: port.port, ...(port.appProtocol ? { appProtocol: port.appProtocol } : {}) };
    return state;
  };

  const rules = (spec.rules ?? []).map((rule) => (rule.backendRefs ?? []).map(backendOf));
  const filterBackends = new Map<string, BackendState>();
  (spec.rules ?? []).forEach((rule, r) => {
    (rule.filters ?? []).forEach((f, i) => {
      if (f.type === 'RequestMirror' && f.requestMirror) filterBackends.set(`${r}/${i}`, backendOf(f.requestMirror.backendRef, i));
    });
    (rule.backendRefs ?? []).forEach((b, j) => {
      ((b as { filters?: { type: string; requestMirror?: { backendRef: BackendObjectReference } }[] }).filters ?? []).forEach((f, i) => {
        if (f.type === 'RequestMirror' && f.requestMirror) filterBackends.set(`${r}/${j}/${i}`, backendOf(f.requestMirror.backendRef, i));
      });
    });
  });
  const bad = [...rules.flat(), ...filterBackends.values()].find((b) => b.problem);
  const resolvedRefs = bad ? notOk(bad.problem!.reason, bad.problem!.message) : ok('ResolvedRefs', 'All references resolved');
  return { resource: route, kind, key: `${ns}/${route.metadata.name}`, parents, rules, filterBackends, resolvedRefs };
}

function attachToGateway(
  route: Resource,
  kind: RouteKind,
  ref: ParentReference,
  index: number,
  gw: GatewayState,
  resources: readonly Resource[],
  routeHostnames: string[] | undefined,
): ParentState {
  const state: ParentState = { ref, index, kind: 'Gateway', namespace: gw.resource.metadata.namespace, name: gw.resource.metadata.name, accepted: ok('Accepted', 'Route was valid'), listeners: [] };
  const candidates = gw.listeners.filter((l) => (ref.sectionName === undefined || l.listener.name === ref.sectionName) && (ref.port === undefined || l.listener.port === ref.port));
  if (candidates.length === 0) {
    state.accepted = notOk('NoMatchingParent', ref.sectionName !== undefined ? `no listener named ${ref.sectionName}${ref.port !== undefined ? ` on port ${ref.port}` : ''}` : `no listener on port ${ref.port}`);
    return state;
  }
  const routeNs = route.metadata.namespace;
  let allowedSomewhere = false;
  for (const l of candidates) {
    if (!l.usable) continue;
    if (!l.supportedKinds.some((k) => k.kind === kind)) continue;
    if (!namespaceAllowed(l.listener.allowedRoutes, gw.resource.metadata.namespace, routeNs, resources)) continue;
    allowedSomewhere = true;
    // TLS passthrough and TCP take no hostnames of their own beyond SNI (TLSRoute) or none (TCPRoute).
    const hostnames = kind === 'TCPRoute' ? ['*'] : intersectHostnames(l.listener.hostname, routeHostnames);
    if (hostnames.length === 0) continue;
    state.listeners.push({ gateway: gw, listener: l, hostnames });
  }
  if (state.listeners.length === 0) {
    state.accepted = allowedSomewhere
      ? notOk('NoMatchingListenerHostname', `no hostname of the route (${(routeHostnames ?? ['*']).join(', ')}) matches a listener's`)
      : notOk('NotAllowedByListeners', `no listener of Gateway ${gw.key} allows ${kind}s from namespace ${routeNs}`);
  }
  return state;
}

function namespaceAllowed(allowed: AllowedRoutes | undefined, gatewayNs: string, routeNs: string, resources: readonly Resource[]): boolean {
  const from = allowed?.namespaces?.from ?? 'Same';
  if (from === 'All') return true;
  if (from === 'Same') return routeNs === gatewayNs;
  if (from === 'Selector') return labelSelectorMatches(allowed?.namespaces?.selector, namespaceLabels(resources, routeNs));
  return false;
}

/**
 * GEP-1713 listener isolation (GatewayHTTPListenerIsolation): a request is served by the most
 * specific listener of its port whose hostname matches it, so a hostname a route serves on a
 * less specific listener is dropped there when a more specific listener of the same port
 * covers it. A route left with no hostname on a listener leaves that listener.
 */
function isolateListeners(routes: RouteState[]): void {
  for (const route of routes) {
    for (const parent of route.parents) {
      parent.listeners = parent.listeners.filter((a) => {
        const mine = a.listener.listener.hostname?.toLowerCase();
        const others = a.gateway.listeners.filter((o) => o !== a.listener && o.usable && o.listener.port === a.listener.listener.port && o.listener.hostname && transportOf(o.protocol) === transportOf(a.listener.protocol));
        a.hostnames = a.hostnames.filter((h) => !others.some((o) => moreSpecific(o.listener.hostname!.toLowerCase(), mine) && hostSubsetOf(h, o.listener.hostname!.toLowerCase())));
        return a.hostnames.length > 0;
      });
      if (parent.kind === 'Gateway' && parent.listeners.length === 0 && parent.accepted.status === 'True') {
        parent.accepted = notOk('NoMatchingListenerHostname', 'every hostname of the route is served by a more specific listener');
      }
    }
  }
}

/** Whether listener hostname `a` is more specific than `b` (absent = `*`). */
function moreSpecific(a: string, b: string | undefined): boolean {
  if (b === undefined || b === '*') return a !== '*';
  if (!isWildcardHost(b)) return false;
  return !isWildcardHost(a) ? hostSubsetOf(a, b) : a.length > b.length && hostSubsetOf(a, b);
}
