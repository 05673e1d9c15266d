/**
 * What the analyzers share: typed views of the resources they read, and one way to build a
 * finding. Host names, wildcards and label selectors follow Istio's rules in src/semantics.
 */
import { diagnosticCodes, type Diagnostic, type DiagnosticLevel } from '../../api/diagnostics.js';
import type {
  Destination,
  DestinationRuleSpec,
  GatewaySpec,
  PeerAuthenticationSpec,
  Resource,
  ServiceEntrySpec,
  ServiceSpec,
  VirtualServiceSpec,
  WorkloadSpec,
} from '../../api/resources/index.js';
import { formatPath, type FieldPath } from '../../core/path.js';
import { kindKeyOf } from '../../api/resources/index.js';

/** One cross-resource check: pure, it sees every valid resource and returns its findings. */
export type Analyzer = (resources: readonly Resource[]) => Diagnostic[];

/** Istio's default root namespace: mesh-wide PeerAuthentication and DestinationRules live there. */
export const ROOT_NAMESPACE = 'istio-system';

// === typed views ===

export type VirtualService = Resource<VirtualServiceSpec>;
export type DestinationRule = Resource<DestinationRuleSpec>;
export type Gateway = Resource<GatewaySpec>;
export type Service = Resource<ServiceSpec>;
export type ServiceEntry = Resource<ServiceEntrySpec>;
export type PeerAuthentication = Resource<PeerAuthenticationSpec>;
export type Workload = Resource<WorkloadSpec>;

/** The resources of one kind (by its key: `Gateway` is Istio's), typed by the caller (validation guarantees the shape). */
export function ofKind<T extends Resource>(resources: readonly Resource[], kind: string): T[] {
  return resources.filter((r) => kindKeyOf(r) === kind) as T[];
}

/** Every destination a VirtualService sends traffic to (routes and mirrors), with its path. */
export function* destinationsOf(vs: VirtualService): Generator<{ destination: Destination; path: FieldPath }> {
  const spec = vs.spec ?? {};
  for (const [i, http] of (spec.http ?? []).entries()) {
    for (const [j, rd] of (http.route ?? []).entries()) yield { destination: rd.destination, path: ['spec', 'http', i, 'route', j, 'destination'] };
    if (http.mirror) yield { destination: http.mirror, path: ['spec', 'http', i, 'mirror'] };
    for (const [j, m] of (http.mirrors ?? []).entries()) yield { destination: m.destination, path: ['spec', 'http', i, 'mirrors', j, 'destination'] };
  }
  for (const section of ['tls', 'tcp'] as const) {
    for (const [i, rule] of (spec[section] ?? []).entries()) {
      for (const [j, rd] of (rule.route ?? []).entries()) yield { destination: rd.destination, path: ['spec', section, i, 'route', j, 'destination'] };
    }
  }
}

// === findings ===

/** The `resource` of a finding about `r`. */
export const refOf = (r: Resource) => ({ kind: r.kind, namespace: r.metadata.namespace || undefined, name: r.metadata.name });

/** `Kind namespace/name`, as findings name the other resources involved. */
export const nameOf = (r: Resource) => `${r.kind} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`;

/**
 * A finding about `resource` at `path`. The source is where the resource starts; the CLI
 * narrows it to the field when it still has the parsed document (see `analyzeInputs`).
 */
export function finding(resource: Resource, code: string, path: FieldPath, message: string, level?: DiagnosticLevel): Diagnostic {
  const d: Diagnostic = {
    level: level ?? diagnosticCodes[code]?.level ?? 'error',
    code,
    message,
    resource: refOf(resource),
    path: path.length ? formatPath(path) : undefined,
  };
  if (resource.source) d.source = resource.source;
  return d;
}
