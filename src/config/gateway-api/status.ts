/**
 * The status of the Gateway API resources, as the API server would hold it once Istio's
 * controller wrote it: GatewayClass `Accepted`; Gateway `Accepted` and `Programmed`, its
 * addresses, and per listener `Accepted`, `Programmed`, `ResolvedRefs` and `Conflicted` with
 * the routes attached; per route and parent `Accepted` and `ResolvedRefs`; per BackendTLSPolicy
 * and Gateway that sends to its targets (its ancestors) `Accepted` and `ResolvedRefs`. The reasons are the
 * Gateway API's, from the binding (src/semantics/gateway-api/binding.ts), which the compiler
 * uses too, so what status says is what the proxies do.
 *
 * Sinew computes status when it is read rather than storing it: `lastTransitionTime` is when
 * the resource last changed (its creation time; transitions are not tracked), and
 * `observedGeneration` the resource's generation, since it always reflects the config in force.
 */
import type { Resource } from '../../api/resources/meta.js';
import type { GatewaySpec, ParentReference } from '../../api/resources/gateway-api/types.js';
import { GATEWAY_API_GROUP } from '../../api/resources/gateway-api/types.js';
import { bindGatewayApi, type ConditionState, type GatewayApiBinding, type GatewayState, type ListenerState, type RouteState } from '../../semantics/gateway-api/binding.js';

/** What the runner knows of a Gateway's proxy (from the mesh's registrations and push status). */
export interface GatewayRuntime {
  /** The Gateway's namespace and name. */
  namespace: string;
  gateway: string;
  /** Every replica ready and holding its latest config. */
  synced: boolean;
  /** The addresses it listens on. */
  addresses: string[];
  /** Listener ports the runner has mapped to a local port. */
  ports: number[];
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

const ADDRESS_TYPES = new Set(['IPAddress', 'Hostname', undefined]);

function condition(type: string, state: ConditionState, r: Resource): Condition {
  return {
    type,
    status: state.status,
    reason: state.reason,
    message: state.message,
    ...(typeof r.metadata.generation === 'number' ? { observedGeneration: r.metadata.generation } : {}),
    lastTransitionTime: typeof r.metadata.creationTimestamp === 'string' ? r.metadata.creationTimestamp : new Date(0).toISOString(),
  };
}

/**
 * Status for the Gateway API resources of a config snapshot: call the returned function with
 * a resource of it to get the `status` to show (undefined for other kinds, and for Gateways
 * and routes of other controllers, which Sinew leaves alone).
 */
export function gatewayApiStatus(resources: readonly Resource[], runtime: readonly GatewayRuntime[] | undefined): (r: Resource) => Record<string, unknown> | undefined {
  const binding = bindGatewayApi(resources);
  const gatewayStatus = new Map<string, Record<string, unknown>>();
  for (const g of binding.gateways) gatewayStatus.set(g.key, statusOfGateway(g, runtime?.find((x) => `${x.namespace}/${x.gateway}` === g.key), runtime !== undefined));
  const routeStatus = new Map<string, Record<string, unknown>>();
  for (const route of binding.routes) {
    const s = statusOfRoute(route, binding);
    if (s) routeStatus.set(`${route.kind}/${route.key}`, s);
  }
  for (const policy of binding.backendTlsPolicies) routeStatus.set(`BackendTLSPolicy/${policy.key}`, statusOfBackendTlsPolicy(policy, binding));
  return (r) => {
    if (r.group !== GATEWAY_API_GROUP) return undefined;
    const key = `${r.metadata.namespace}/${r.metadata.name}`;
    if (r.kind === 'GatewayClass') {
      const cls = binding.classes.get(r.metadata.name);
      if (!cls?.ours) return undefined;
      return { conditions: [condition('Accepted', cls.accepted, r)] };
    }
    if (r.kind === 'Gateway') return gatewayStatus.get(key);
    return routeStatus.get(`${r.kind}/${key}`);
  };
}

function statusOfGateway(g: GatewayState, rt: GatewayRuntime | undefined, runtimeKnown: boolean): Record<string, unknown> {
  const r = g.resource as Resource<GatewaySpec>;
  const requested = r.spec.addresses ?? [];
  let accepted = g.accepted;
  const unsupported = requested.find((a) => !ADDRESS_TYPES.has(a.type));
  if (unsupported && accepted.status === 'True') accepted = { status: 'False', reason: 'UnsupportedAddress', message: `address type ${unsupported.type} is not supported (IPAddress is)` };
  const listening = rt?.addresses ?? [];
  const unusable = requested.find((a) => a.value && !listening.includes(a.value));
  let programmed: ConditionState;
  if (accepted.status !== 'True') programmed = { status: 'False', reason: 'Invalid', message: 'the Gateway is not accepted' };
  else if (!runtimeKnown) programmed = { status: 'Unknown', reason: 'Pending', message: 'no running mesh to ask: status without the proxies' };
  else if (unusable) programmed = { status: 'False', reason: 'AddressNotUsable', message: `address ${unusable.value} is not an address of this machine the gateway could listen on` };
  else if (!rt) programmed = { status: 'False', reason: 'Pending', message: 'the gateway\'s proxy is not running yet' };
  else if (!rt.synced) programmed = { status: 'False', reason: 'Pending', message: 'the gateway\'s proxy has not received its latest config yet' };
  else programmed = { status: 'True', reason: 'Programmed', message: `the gateway's proxy (${g.className}) serves it` };
  const byPort = new Map<number, ListenerState[]>();
  for (const l of g.listeners) if (l.usable) byPort.set(l.listener.port, [...(byPort.get(l.listener.port) ?? []), l]);
  // An address requested without a value (GatewayAddressEmpty) is one the implementation
  // assigns: the gateway's own.
  const given = requested.filter((a) => a.value).map((a) => a.value!);
  return {
    ...(programmed.status === 'True' ? { addresses: (given.length ? given : listening).map((value) => ({ type: 'IPAddress', value })) } : {}),
    conditions: [
      condition('Accepted', accepted, r),
      condition('Programmed', programmed, r),
      // GEP-91: a Gateway that lets clients in without a valid certificate says so.
      ...(g.insecureFrontendValidation ? [condition('InsecureFrontendValidationMode', { status: 'True', reason: 'ConfigurationChanged', message: 'a listener\'s client certificate validation is AllowInsecureFallback: clients without a valid certificate are let in' }, r)] : []),
    ],
    listeners: g.listeners.map((l) => ({
      name: l.listener.name,
      supportedKinds: l.supportedKinds.map((k) => ({ group: k.group ?? GATEWAY_API_GROUP, kind: k.kind })),
      attachedRoutes: l.attachedRoutes,
      conditions: [
        condition('Accepted', l.accepted, r),
        condition('Programmed', listenerProgrammed(l, byPort.get(l.listener.port) ?? [], programmed, rt), r),
        condition('ResolvedRefs', l.resolvedRefs, r),
        condition('Conflicted', l.conflicted, r),
      ],
    })),
  };
}

/** Whether a listener is served: what the proxy cannot do yet says so here (see compiler/gateway-api/gateway.ts). */
function listenerProgrammed(l: ListenerState, portListeners: ListenerState[], gateway: ConditionState, rt: GatewayRuntime | undefined): ConditionState {
  if (!l.usable) return { status: 'False', reason: 'Invalid', message: l.accepted.message };
  if (l.resolvedRefs.status !== 'True') return { status: 'False', reason: 'Invalid', message: l.resolvedRefs.message };
  // A port is served by one listener kind, its first listener's: TLS passed through or HTTPS
  // terminated (compiler/gateway-api/gateway.ts).
  const first = portListeners[0];
  if (first && (first.protocol === 'TLS') !== (l.protocol === 'TLS')) {
    return { status: 'False', reason: 'Pending', message: `port ${l.listener.port} is served as ${first.protocol} (listener ${first.listener.name}): Sinew's proxy does not pass TLS through and terminate it on one port yet` };
  }
  if (l.protocol === 'HTTPS') {
    const certs = new Set(portListeners.filter((x) => x.resolvedRefs.status === 'True' && x.certificates[0]).map((x) => `${x.certificates[0].namespace}/${x.certificates[0].name}`));
    if (certs.size > 1) return { status: 'False', reason: 'Pending', message: `the listeners of port ${l.listener.port} present ${certs.size} certificates: Sinew's proxy presents one per port yet` };
  }
  if (gateway.status !== 'True') return gateway;
  if (rt && !rt.ports.includes(l.listener.port)) return { status: 'False', reason: 'Pending', message: `port ${l.listener.port} has no local port yet` };
  return { status: 'True', reason: 'Programmed', message: 'served' };
}

function parentRefOut(ref: ParentReference, routeNs: string): Record<string, unknown> {
  return { group: ref.group ?? GATEWAY_API_GROUP, kind: ref.kind ?? 'Gateway', ...(ref.namespace ? { namespace: ref.namespace } : { namespace: routeNs }), name: ref.name, ...(ref.sectionName !== undefined ? { sectionName: ref.sectionName } : {}), ...(ref.port !== undefined ? { port: ref.port } : {}) };
}

function statusOfRoute(route: RouteState, binding: GatewayApiBinding): Record<string, unknown> | undefined {
  if (route.parents.length === 0) return undefined;
  const r = route.resource;
  return {
    parents: route.parents.map((p) => {
      const controllerName = p.kind === 'Gateway' ? (binding.classes.get(binding.gatewayByKey.get(`${p.namespace}/${p.name}`)?.className ?? '')?.controllerName ?? '') : 'sinew.dev/gateway-controller';
      return {
        parentRef: parentRefOut(p.ref, r.metadata.namespace),
        controllerName,
        conditions: [condition('Accepted', p.accepted, r), condition('ResolvedRefs', route.resolvedRefs, r)],
      };
    }),
  };
}

/**
 * A BackendTLSPolicy's status (GEP-1897, PolicyAncestorStatus): per Gateway that sends to one
 * of its targets, `Accepted` and `ResolvedRefs`, written by that Gateway's controller.
 */
function statusOfBackendTlsPolicy(policy: GatewayApiBinding['backendTlsPolicies'][number], binding: GatewayApiBinding): Record<string, unknown> {
  const r = policy.resource;
  return {
    ancestors: policy.ancestors.map((g) => ({
      ancestorRef: { group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: g.resource.metadata.namespace, name: g.resource.metadata.name },
      controllerName: binding.classes.get(g.className)?.controllerName ?? '',
      conditions: [condition('Accepted', policy.accepted, r), condition('ResolvedRefs', policy.resolvedRefs, r)],
    })),
  };
}

/** A runtime view from the mesh's status (`sinew status -o json`): the gateways Sinew runs for Gateway API Gateways. */
export function gatewayRuntimeOf(status: { gateways: readonly { namespace: string; labels: Readonly<Record<string, string>>; replicas: readonly { ready: boolean; proxy: { sync: string; admin?: string; servers?: Readonly<Record<string, string>> } }[] }[] }): GatewayRuntime[] {
  const out: GatewayRuntime[] = [];
  for (const g of status.gateways) {
    const name = g.labels['gateway.networking.k8s.io/gateway-name'];
    if (!name) continue;
    const servers = g.replicas.flatMap((r) => Object.entries(r.proxy.servers ?? {}));
    const hostOf = (a: string) => a.slice(0, a.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    // A gateway with no port mapped yet still listens somewhere: where its admin port is.
    const hosts = servers.length ? servers.map(([, a]) => hostOf(a)) : g.replicas.flatMap((r) => (r.proxy.admin ? [hostOf(r.proxy.admin)] : []));
    out.push({
      namespace: g.namespace,
      gateway: name,
      synced: g.replicas.length > 0 && g.replicas.every((r) => r.ready && r.proxy.sync === 'SYNCED'),
      addresses: [...new Set(hosts)],
      ports: [...new Set(servers.map(([p]) => Number(p)))],
    });
  }
  return out;
}
