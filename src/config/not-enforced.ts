/**
 * Finds, in one valid resource, every use of something Sinew accepts but does not enforce yet
 * (the table in src/api/codes/not-enforced.ts), so that validate, apply and analyze warn about
 * it at the field that asks for it. One finder per entry, keyed by its code: retiring an entry
 * deletes its finder (test/config/not-enforced.test.ts checks the two agree).
 */
import type { Diagnostic } from '../api/diagnostics.js';
import { notEnforcedEntries } from '../api/codes/not-enforced.js';
import type {
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  GatewaySpec,
  PortTrafficPolicy,
  RequestAuthenticationSpec,
  Resource,
  ServiceEntrySpec,
  SidecarSpec,
  TelemetrySpec,
  TrafficPolicy,
  VirtualServiceSpec,
  WorkloadEntrySpec,
} from '../api/resources/index.js';
import { formatPath, type FieldPath } from '../core/path.js';
import { kindKeyOf } from '../api/resources/index.js';
import { serverSpeaksHttp } from '../semantics/tls.js';
import { trafficPolicies } from './traffic-policies.js';

/** One use of something not enforced. */
export interface NotEnforcedUse {
  code: string;
  /** The field that asks for it; empty for the whole resource. */
  path: FieldPath;
  message: string;
  /**
   * What to take away to be left with what Sinew does (default: `path`, or the whole resource
   * when `path` is empty). test/config/not-enforced.test.ts compiles with and without it.
   */
  without?: FieldPath | 'resource';
}

type Finder = (r: Resource) => Omit<NotEnforcedUse, 'code'>[];

const NOT_YET = 'is not enforced yet';

// === shared walks ===

/** The top-level policies only (tunnel, proxyProtocol and retryBudget are not port-level). */
function* topLevelPolicies(spec: DestinationRuleSpec): Generator<{ policy: TrafficPolicy; path: FieldPath }> {
  if (spec.trafficPolicy) yield { policy: spec.trafficPolicy, path: ['spec', 'trafficPolicy'] };
  for (const [i, subset] of (spec.subsets ?? []).entries()) if (subset.trafficPolicy) yield { policy: subset.trafficPolicy, path: ['spec', 'subsets', i, 'trafficPolicy'] };
}

const drFinder =
  (find: (policy: TrafficPolicy | PortTrafficPolicy, path: FieldPath) => Omit<NotEnforcedUse, 'code'>[]): Finder =>
  (r) => {
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    for (const { policy, path } of trafficPolicies(r.spec as DestinationRuleSpec)) out.push(...find(policy, path));
    return out;
  };

const set = (v: unknown) => v !== undefined && v !== null;

// === the finders, one per entry ===

const finders: Record<string, Finder> = {
  SNW0515: (r) => {
    const spec = r.spec as ServiceEntrySpec;
    if (!spec.subjectAltNames?.length) return [];
    return [{ path: ['spec', 'subjectAltNames'], message: 'subjectAltNames are not verified: the mesh has no mutual TLS yet' }];
  },

  SNW0580: drFinder((policy, path) => (set(policy.tls?.caCrl) ? [{ path: [...path, 'tls', 'caCrl'], message: `tls.caCrl names a file, which the proxy does not read: no revocation list is checked` }] : [])),
  SNW0581: (r) => {
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    for (const [i, server] of ((r.spec as GatewaySpec).servers ?? []).entries()) {
      if (set(server.tls?.caCrl)) out.push({ path: ['spec', 'servers', i, 'tls', 'caCrl'], message: `port ${server.port.number}: tls.caCrl names a file, which the gateway does not read: client certificates it revokes are accepted` });
    }
    return out;
  },

  SNW0525: (r) => {
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    for (const [i, server] of ((r.spec as GatewaySpec).servers ?? []).entries()) {
      if (server.bind) out.push({ path: ['spec', 'servers', i, 'bind'], message: `the gateway listens where "sinew up" puts it, not on ${server.bind}: bind is not applied` });
      if (server.defaultEndpoint) out.push({ path: ['spec', 'servers', i, 'defaultEndpoint'], message: 'defaultEndpoint is not applied: the gateway forwards to its routes\' destinations' });
    }
    return out;
  },
  SNW0528: (r) => {
    // The kind of a port is its first server's (src/compiler/gateway.ts); the others of another kind are left out.
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    const first = new Map<number, { index: number; http: boolean }>();
    for (const [i, server] of ((r.spec as GatewaySpec).servers ?? []).entries()) {
      const http = serverSpeaksHttp(server);
      const seen = first.get(server.port.number);
      if (!seen) first.set(server.port.number, { index: i, http });
      else if (seen.http !== http) {
        out.push({
          path: ['spec', 'servers', i],
          message: `port ${server.port.number} is served as ${seen.http ? 'HTTP' : 'TCP'} (servers[${seen.index}]), so this ${http ? 'HTTP' : 'TCP'} server is not served: give it a port of its own`,
        });
      }
    }
    return out;
  },

  SNW0530: (r) => retriesWith(r, 'retryRemoteLocalities', (v) => set(v), 'retries are not steered to other localities: retryRemoteLocalities is not applied'),
  SNW0531: (r) => retriesWith(r, 'retryIgnorePreviousHosts', (v) => v === false, 'retries always avoid the hosts already tried: retryIgnorePreviousHosts: false is not applied'),
  SNW0533: (r) => {
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    for (const [i, rule] of ((r.spec as VirtualServiceSpec).http ?? []).entries()) {
      for (const [j, m] of (rule.match ?? []).entries()) {
        if (m.statPrefix) out.push({ path: ['spec', 'http', i, 'match', j, 'statPrefix'], message: 'per-route statistics are not kept: statPrefix is not applied' });
      }
    }
    return out;
  },
  SNW0534: (r) => {
    const spec = r.spec as VirtualServiceSpec;
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    for (const section of ['tcp', 'tls'] as const) {
      for (const [i, rule] of (spec[section] ?? []).entries()) {
        for (const [j, m] of (rule.match ?? []).entries()) {
          for (const field of ['destinationSubnets', 'sourceSubnet'] as const) {
            const value = (m as Record<string, unknown>)[field];
            if (Array.isArray(value) ? value.length > 0 : set(value) && value !== '') {
              out.push({ path: ['spec', section, i, 'match', j, field], message: `${field} is not applied: this ${section} rule applies whatever the ${field.startsWith('source') ? 'source' : 'destination'} address` });
            }
          }
        }
      }
    }
    return out;
  },

  SNW0540: drFinder((policy, path) =>
    set(policy.connectionPool?.http?.useClientProtocol) ? [{ path: [...path, 'connectionPool', 'http', 'useClientProtocol'], message: "requests go upstream in the service port's protocol: useClientProtocol is not applied" }] : [],
  ),
  SNW0541: drFinder((policy, path) =>
    set(policy.connectionPool?.http?.maxConcurrentStreams) ? [{ path: [...path, 'connectionPool', 'http', 'maxConcurrentStreams'], message: 'maxConcurrentStreams is not applied to upstream HTTP/2 connections' }] : [],
  ),
  SNW0542: drFinder((policy, path) =>
    set(policy.connectionPool?.http?.http2KeepAlive) ? [{ path: [...path, 'connectionPool', 'http', 'http2KeepAlive'], message: 'no HTTP/2 keepalive pings are sent: http2KeepAlive is not applied' }] : [],
  ),
  SNW0543: drFinder((policy, path) => {
    const warmup = policy.loadBalancer?.warmup;
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    if (warmup?.minimumPercent !== undefined && warmup.minimumPercent !== 10) out.push({ path: [...path, 'loadBalancer', 'warmup', 'minimumPercent'], message: 'new endpoints start at 10% of their weight: minimumPercent is not applied' });
    if (warmup?.aggression !== undefined && warmup.aggression !== 1) out.push({ path: [...path, 'loadBalancer', 'warmup', 'aggression'], message: 'new endpoints warm up linearly: aggression is not applied' });
    return out;
  }),
  SNW0544: drFinder((policy, path) =>
    set(policy.loadBalancer?.zoneAwareLbSetting) ? [{ path: [...path, 'loadBalancer', 'zoneAwareLbSetting'], message: 'zone-aware routing is not done: zoneAwareLbSetting is not applied (localityLbSetting is)' }] : [],
  ),
  SNW0545: drFinder((policy, path) =>
    policy.loadBalancer?.consistentHash?.httpCookie?.attributes?.length
      ? [{ path: [...path, 'loadBalancer', 'consistentHash', 'httpCookie', 'attributes'], message: 'the hash cookie carries its path and TTL only: attributes are not applied' }]
      : [],
  ),
  SNW0546: drFinder((policy, path) =>
    policy.outlierDetection?.outlierDetectionHttpErrorCodes?.length
      ? [{ path: [...path, 'outlierDetection', 'outlierDetectionHttpErrorCodes'], message: 'outlier detection counts 5xx and gateway errors: outlierDetectionHttpErrorCodes is not applied' }]
      : [],
  ),
  SNW0547: (r) => topLevel(r, 'tunnel', 'upstream connections are not tunnelled: tunnel is not applied'),
  SNW0548: (r) => topLevel(r, 'proxyProtocol', 'no PROXY protocol header is sent upstream: proxyProtocol is not applied'),
  SNW0549: (r) => topLevel(r, 'retryBudget', 'retries are bounded by connectionPool.http.maxRetries only: retryBudget is not applied'),

  SNW0550: (r) => ((r.spec as SidecarSpec).ingress?.length ? [{ path: ['spec', 'ingress'], message: "inbound listeners come from the Workload's ports: Sidecar ingress is not applied" }] : []),
  SNW0551: (r) => {
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    for (const [i, listener] of ((r.spec as SidecarSpec).egress ?? []).entries()) {
      for (const field of ['port', 'bind', 'captureMode'] as const) {
        if (set(listener[field])) out.push({ path: ['spec', 'egress', i, field], message: `egress listeners are merged into one capture listener: ${field} is not applied (the hosts apply on every port)` });
      }
    }
    return out;
  },
  SNW0552: (r) => (set((r.spec as SidecarSpec).inboundConnectionPool) ? [{ path: ['spec', 'inboundConnectionPool'], message: 'connections to the app are not limited: inboundConnectionPool is not applied' }] : []),
  SNW0553: (r) =>
    set((r.spec as SidecarSpec).outboundTrafficPolicy?.egressProxy)
      ? [{ path: ['spec', 'outboundTrafficPolicy', 'egressProxy'], message: 'unknown hosts pass through directly: egressProxy is not applied' }]
      : [],

  SNW0560: () => [{ path: [], message: 'WorkloadGroup adds no endpoints: nothing auto-registers workloads from it yet; describe each workload as a WorkloadEntry', without: 'resource' }],
  SNW0561: (r) => {
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    const check = (entry: WorkloadEntrySpec, path: FieldPath) => {
      if (!entry.network) return;
      const consequence = entry.address ? `it is reached at ${entry.address} directly` : 'with no address it is left out';
      out.push({ path: [...path, 'network'], message: `the mesh is one network: network ${entry.network} is not applied, ${consequence}` });
    };
    if (r.kind === 'WorkloadEntry') check(r.spec as WorkloadEntrySpec, ['spec']);
    if (r.kind === 'ServiceEntry') for (const [i, e] of ((r.spec as ServiceEntrySpec).endpoints ?? []).entries()) check(e, ['spec', 'endpoints', i]);
    return out;
  },
  SNW0562: (r) => {
    const spec = r.spec as ServiceEntrySpec;
    if (spec.resolution !== 'DYNAMIC_DNS' || spec.endpoints?.length) return [];
    return [{ path: ['spec', 'resolution'], message: 'names under a wildcard host are not resolved per request yet: the service has no endpoints and its requests get 503' }];
  },
  SNW0563: (r) => {
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    if (r.kind === 'WorkloadEntry') {
      const address = (r.spec as WorkloadEntrySpec).address;
      if (address?.startsWith('unix://')) out.push({ path: ['spec', 'address'], message: `proxies connect over TCP only: ${address} cannot be reached` });
    }
    if (r.kind === 'ServiceEntry') {
      for (const [i, e] of ((r.spec as ServiceEntrySpec).endpoints ?? []).entries()) {
        if (e.address?.startsWith('unix://')) out.push({ path: ['spec', 'endpoints', i, 'address'], message: `proxies connect over TCP only: the endpoint ${e.address} is left out` });
      }
    }
    return out;
  },

  SNW0571: (r) =>
    telemetryEntries(r, 'tracing', (t, path) =>
      (['customTags', 'useRequestIdForTraceSampling', 'enableIstioTags', 'disableContextPropagation'] as const)
        .filter((f) => set(t[f]))
        .map((f) => ({ path: [...path, f], message: `${f} is not applied (of tracing, only randomSamplingPercentage and disableSpanReporting are)` })),
    ),
  SNW0573: (r) => telemetryEntries(r, 'accessLogging', (a, path) => (a.filter ? [{ path: [...path, 'filter'], message: 'every request is logged: the filter expression is not applied' }] : [])),
  SNW0575: (r) =>
    telemetryEntries(r, 'metrics', (m, path) => {
      const out: Omit<NotEnforcedUse, 'code'>[] = [];
      for (const [j, o] of (m.overrides ?? []).entries()) {
        const at = [...path, 'overrides', j];
        if (o.match?.metric !== undefined && o.match.metric !== 'ALL_METRICS') {
          out.push({ path: [...at, 'match', 'metric'], message: `single metrics cannot be turned on or off: this override of ${o.match.metric} is not applied`, without: at });
        } else if (o.match?.customMetric) {
          out.push({ path: [...at, 'match', 'customMetric'], message: `custom metrics are not supported: this override of ${o.match.customMetric} is not applied`, without: at });
        } else if (o.tagOverrides && Object.keys(o.tagOverrides).length) {
          out.push({ path: [...at, 'tagOverrides'], message: 'metric labels are not changed: tagOverrides are not applied' });
        }
      }
      return out;
    }),
  SNW0576: (r) => telemetryEntries(r, 'metrics', (m, path) => (m.reportingInterval ? [{ path: [...path, 'reportingInterval'], message: 'metrics are current at every scrape: reportingInterval is not applied' }] : [])),
  SNW0577: (r) => {
    const spec = r.spec as TelemetrySpec;
    const out: Omit<NotEnforcedUse, 'code'>[] = [];
    const check = (entry: { match?: { mode?: string } }, path: FieldPath) => {
      const mode = entry.match?.mode;
      if (mode === 'CLIENT' || mode === 'SERVER') {
        out.push({ path: [...path, 'match', 'mode'], message: `a proxy holds one telemetry setting for both directions: this ${mode}-only entry is not applied`, without: path });
      }
    };
    for (const [i, t] of (spec.tracing ?? []).entries()) check(t, ['spec', 'tracing', i]);
    for (const [i, m] of (spec.metrics ?? []).entries()) for (const [j, o] of (m.overrides ?? []).entries()) check(o, ['spec', 'metrics', i, 'overrides', j]);
    return out;
  },
};

function retriesWith(r: Resource, field: 'retryRemoteLocalities' | 'retryIgnorePreviousHosts', applies: (v: unknown) => boolean, message: string): Omit<NotEnforcedUse, 'code'>[] {
  const out: Omit<NotEnforcedUse, 'code'>[] = [];
  for (const [i, rule] of ((r.spec as VirtualServiceSpec).http ?? []).entries()) {
    if (rule.retries && applies(rule.retries[field])) out.push({ path: ['spec', 'http', i, 'retries', field], message });
  }
  return out;
}

function topLevel(r: Resource, field: 'tunnel' | 'proxyProtocol' | 'retryBudget', message: string): Omit<NotEnforcedUse, 'code'>[] {
  const out: Omit<NotEnforcedUse, 'code'>[] = [];
  for (const { policy, path } of topLevelPolicies(r.spec as DestinationRuleSpec)) if (set(policy[field])) out.push({ path: [...path, field], message });
  return out;
}

type TelemetrySection = 'tracing' | 'accessLogging' | 'metrics';

function telemetryEntries<S extends TelemetrySection>(r: Resource, section: S, find: (entry: NonNullable<TelemetrySpec[S]>[number], path: FieldPath) => Omit<NotEnforcedUse, 'code'>[]): Omit<NotEnforcedUse, 'code'>[] {
  const entries = ((r.spec as TelemetrySpec)[section] ?? []) as NonNullable<TelemetrySpec[S]>[number][];
  return entries.flatMap((entry, i) => find(entry, ['spec', section, i]));
}


/** The finders of the entries in force (not retired), by kind. */
const byKind = new Map<string, { code: string; find: Finder }[]>();
for (const entry of notEnforcedEntries) {
  if (entry.retired) continue;
  const find = finders[entry.code];
  if (!find) continue; // test/config/not-enforced.test.ts fails on a missing finder
  const kinds = entry.code === 'SNW0561' || entry.code === 'SNW0563' ? [entry.kind, 'ServiceEntry'] : [entry.kind];
  for (const kind of kinds) {
    const list = byKind.get(kind) ?? [];
    list.push({ code: entry.code, find });
    byKind.set(kind, list);
  }
}

/** The codes that have a finder (for the table's consistency test). */
export const notEnforcedFinderCodes: readonly string[] = Object.keys(finders);

/** Every use in `r` of something accepted but not enforced yet. */
export function findNotEnforced(r: Resource): NotEnforcedUse[] {
  return (byKind.get(kindKeyOf(r)) ?? []).flatMap(({ code, find }) => find(r).map((use) => ({ code, ...use })));
}

/** The uses as warnings; `positionOf` places each at its field. */
export function notEnforcedWarnings(r: Resource, positionOf: (path: FieldPath) => Diagnostic['source']): Diagnostic[] {
  return findNotEnforced(r).map((use) => ({
    level: 'warning',
    code: use.code,
    message: use.message,
    resource: { kind: r.kind, namespace: r.metadata.namespace || undefined, name: r.metadata.name },
    source: positionOf(use.path),
    path: use.path.length ? formatPath(use.path) : undefined,
  }));
}
