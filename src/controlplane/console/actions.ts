/**
 * The console's actions (Kiali's service wizards, seed 000: "Create Weighted Routing, Create
 * Matching Routing, Suspend Traffic ... Istio will automatically create manifests
 * (virtualservices and destinationrules)"): each turns a form into the VirtualService and
 * DestinationRule it will write, validated like `sinew validate` and `sinew analyze` would,
 * for the caller to apply through the config API (`POST /api/v1/apply`, `sinew apply`'s path).
 *
 * What an action writes is labelled `sinew.dev/console-action: <action>` and annotated with
 * the action's id; when it replaces a resource that existed, the resource as it was goes in
 * the `sinew.dev/console-previous` annotation, so undoing restores it (and undoing an action
 * that created a resource deletes it). Actions edit the resource already in force for the
 * service (by name, the oldest first, as Istio picks it) rather than adding a second
 * VirtualService or DestinationRule for the same host, which Istio would ignore or merge.
 *
 * Subsets are the service's versions: the `version` label of the workloads behind it.
 */
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import {
  ACTION_ID_ANNOTATION,
  ACTION_LABEL,
  ACTION_PREVIOUS_ANNOTATION,
  type ActionPreview,
  type ActionRecord,
  type ActionRequest,
  type CircuitBreakerParams,
  type FaultInjectionParams,
  type MatchingRoutingParams,
  type TimeoutParams,
  type UndoPlan,
  type WeightedRoutingParams,
} from '../../api/console.js';
import type { Resource } from '../../api/resources/meta.js';
import type { RegistryService } from '../../api/registry-snapshot.js';
import { SinewError } from '../../core/errors.js';
import { ConfigIndex } from './config-index.js';
import { validateForConsole } from './validation.js';

const NETWORKING = 'networking.istio.io/v1';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

interface HttpRoute {
  match?: unknown[];
  route?: { destination: { host: string; subset?: string; port?: unknown }; weight?: number }[];
  fault?: unknown;
  timeout?: string;
  retries?: unknown;
  [key: string]: unknown;
}

export class ActionError extends SinewError {
  constructor(message: string) {
    super('SNW_ERR_CONSOLE_ACTION', message);
  }
}

export interface ActionContext {
  resources: readonly Resource[];
  services: readonly RegistryService[];
  /** Action ids come from here (time-ordered, so undo lists read in order). */
  now: number;
}

/** What the action would write, validated; nothing is applied. */
export function previewAction(request: ActionRequest, ctx: ActionContext): ActionPreview {
  const service = ctx.services.find((s) => s.source === 'Service' && s.namespace === request.namespace && s.name === request.service);
  if (!service) throw new ActionError(`no service ${request.namespace}/${request.service}; the console's actions apply to the mesh's Services`);
  if (request.action === 'resume') return resumePreview(request, ctx);
  // Time first (listActions reads it back), then randomness: two actions in one millisecond differ.
  const id = `${request.action}-${ctx.now.toString(36)}.${randomBytes(3).toString('hex')}`;
  const index = new ConfigIndex(ctx.resources);
  const existing = index.forHost(service.hostname);
  const vs = existing.find((r) => r.kind === 'VirtualService' && !(r.spec as { gateways?: string[] }).gateways?.some((g) => g !== 'mesh'));
  const dr = existing.find((r) => r.kind === 'DestinationRule');
  const versions = versionsOf(service);
  const short = service.name;
  const written: Manifest[] = [];
  let summary: string;

  const vsBase = (): Manifest => (vs ? copy(vs) : { apiVersion: NETWORKING, kind: 'VirtualService', metadata: { name: short, namespace: service.namespace }, spec: { hosts: [short] } });
  const drWithSubsets = (needed: string[]): Manifest | undefined => {
    const base = dr ? copy(dr) : { apiVersion: NETWORKING, kind: 'DestinationRule', metadata: { name: short, namespace: service.namespace }, spec: { host: short } };
    const subsets = ((base.spec.subsets as { name: string }[] | undefined) ?? []).slice();
    const missing = needed.filter((v) => !subsets.some((s) => s.name === v));
    if (dr && missing.length === 0) return undefined;
    for (const v of missing) subsets.push({ name: v, labels: { version: v } } as { name: string });
    base.spec.subsets = subsets;
    return base;
  };
  const defaultRoute = (): HttpRoute => ({ route: [{ destination: { host: short } }] });
  const currentRoutes = (): HttpRoute[] => {
    const http = (vs?.spec as { http?: HttpRoute[] } | undefined)?.http;
    return http?.length ? (JSON.parse(JSON.stringify(http)) as HttpRoute[]) : [defaultRoute()];
  };

  switch (request.action) {
    case 'weighted-routing': {
      const p = request.params as WeightedRoutingParams;
      const entries = Object.entries(p?.weights ?? {}).filter(([, w]) => w > 0);
      const total = entries.reduce((a, [, w]) => a + w, 0);
      if (entries.length === 0 || total !== 100) throw new ActionError(`weights must add up to 100 (they add up to ${total})`);
      unknownVersions(entries.map(([v]) => v), versions, service);
      const route = entries.map(([v, w]) => ({ destination: { host: short, subset: v }, weight: w }));
      const m = vsBase();
      if (p.tcp) {
        delete m.spec.http;
        m.spec.tcp = [{ route }];
      } else {
        delete m.spec.tcp;
        m.spec.http = [{ route }];
      }
      written.push(m);
      const d = drWithSubsets(versions);
      if (d) written.push(d);
      summary = `${short}${p.tcp ? ' (TCP)' : ''}: ${entries.map(([v, w]) => `${v} ${w}%`).join(', ')}`;
      break;
    }
    case 'matching-routing': {
      const p = request.params as MatchingRoutingParams;
      if (!p?.rules?.length) throw new ActionError('matching routing needs at least one rule');
      if (!p.defaultSubset) throw new ActionError('matching routing needs a subset for the requests no rule matches');
      unknownVersions([...p.rules.map((r) => r.subset), p.defaultSubset], versions, service);
      const m = vsBase();
      delete m.spec.tcp;
      m.spec.http = [
        ...p.rules.map((r) => ({ match: [clean(r.match)], route: [{ destination: { host: short, subset: r.subset } }] })),
        { route: [{ destination: { host: short, subset: p.defaultSubset } }] },
      ];
      written.push(m);
      const d = drWithSubsets(versions);
      if (d) written.push(d);
      summary = `${short}: ${p.rules.length} matching rule(s), otherwise ${p.defaultSubset}`;
      break;
    }
    case 'suspend': {
      // Kiali's "Suspend Traffic": every request gets 503 from the caller's proxy (fault FI).
      const m = vsBase();
      delete m.spec.tcp;
      m.spec.http = [{ fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } }, route: [{ destination: { host: short } }] }];
      written.push(m);
      summary = `${short}: every request answered 503 until resumed`;
      break;
    }
    case 'fault-injection': {
      const p = request.params as FaultInjectionParams;
      if (!p?.delay && !p?.abort) throw new ActionError('fault injection needs a delay, an abort or both');
      const fault: Record<string, unknown> = {};
      if (p.delay) fault.delay = { percentage: { value: p.delay.percent }, fixedDelay: p.delay.fixedDelay };
      if (p.abort) fault.abort = { percentage: { value: p.abort.percent }, httpStatus: p.abort.httpStatus };
      const m = vsBase();
      m.spec.http = currentRoutes().map((r) => ({ ...r, fault }));
      written.push(m);
      summary = `${short}: ${[p.delay && `delay ${p.delay.fixedDelay} for ${p.delay.percent}%`, p.abort && `abort ${p.abort.httpStatus} for ${p.abort.percent}%`].filter(Boolean).join(', ')}`;
      break;
    }
    case 'timeouts': {
      const p = request.params as TimeoutParams;
      if (!p?.timeout && !p?.retries) throw new ActionError('set a timeout, retries or both');
      const m = vsBase();
      m.spec.http = currentRoutes().map((r) => {
        const out: HttpRoute = { ...r };
        if (p.timeout) out.timeout = p.timeout;
        if (p.retries) out.retries = clean({ attempts: p.retries.attempts, perTryTimeout: p.retries.perTryTimeout, retryOn: p.retries.retryOn });
        return out;
      });
      written.push(m);
      summary = `${short}: ${[p.timeout && `timeout ${p.timeout}`, p.retries && `${p.retries.attempts} retries`].filter(Boolean).join(', ')}`;
      break;
    }
    case 'circuit-breaker': {
      const p = (request.params ?? {}) as CircuitBreakerParams;
      const base: Manifest = dr ? copy(dr) : { apiVersion: NETWORKING, kind: 'DestinationRule', metadata: { name: short, namespace: service.namespace }, spec: { host: short } };
      const policy = { ...((base.spec.trafficPolicy as Record<string, unknown>) ?? {}) };
      const tcp = clean({ maxConnections: p.maxConnections });
      const http = clean({ http1MaxPendingRequests: p.http1MaxPendingRequests, maxRequestsPerConnection: p.maxRequestsPerConnection });
      const pool = clean({ tcp: Object.keys(tcp).length ? tcp : undefined, http: Object.keys(http).length ? http : undefined });
      const outlier = clean({ consecutive5xxErrors: p.consecutive5xxErrors, interval: p.interval, baseEjectionTime: p.baseEjectionTime, maxEjectionPercent: p.maxEjectionPercent });
      if (!Object.keys(pool).length && !Object.keys(outlier).length) throw new ActionError('a circuit breaker needs a connection pool limit or outlier detection');
      if (Object.keys(pool).length) policy.connectionPool = pool;
      if (Object.keys(outlier).length) policy.outlierDetection = outlier;
      base.spec.trafficPolicy = policy;
      written.push(base);
      summary = `${short}: ${[Object.keys(pool).length && 'connection pool limits', Object.keys(outlier).length && 'outlier detection'].filter(Boolean).join(' and ')}`;
      break;
    }
    default:
      throw new ActionError(`unknown action "${String(request.action)}"; one of weighted-routing, matching-routing, suspend, resume, fault-injection, timeouts, circuit-breaker`);
  }

  const previousOf = (m: Manifest) => ctx.resources.find((r) => r.kind === m.kind && r.metadata.namespace === m.metadata.namespace && r.metadata.name === m.metadata.name);
  for (const m of written) {
    const previous = previousOf(m);
    m.metadata.labels = { ...(m.metadata.labels ?? {}), [ACTION_LABEL]: request.action };
    const annotations = { ...(m.metadata.annotations ?? {}) };
    delete annotations[ACTION_PREVIOUS_ANNOTATION];
    annotations[ACTION_ID_ANNOTATION] = id;
    if (previous) annotations[ACTION_PREVIOUS_ANNOTATION] = JSON.stringify(copy(previous));
    m.metadata.annotations = annotations;
  }
  const yaml = toYaml(written);
  return { action: request.action, yaml, validation: validateForConsole(yaml, ctx.resources, request.namespace), summary };
}

/** Resume: undo the suspension in force for the service. */
function resumePreview(request: ActionRequest, ctx: ActionContext): ActionPreview {
  const suspended = ctx.resources.find((r) => r.metadata.labels?.[ACTION_LABEL] === 'suspend' && r.metadata.namespace === request.namespace && r.kind === 'VirtualService' && r.metadata.annotations?.[ACTION_ID_ANNOTATION] && hostsOf(r).includes(request.service));
  if (!suspended) throw new ActionError(`traffic to ${request.namespace}/${request.service} is not suspended by the console`);
  const plan = undoPlan(suspended.metadata.annotations![ACTION_ID_ANNOTATION], ctx.resources);
  return {
    action: 'resume',
    yaml: plan.yaml ?? '',
    deleteYaml: plan.deleteYaml,
    validation: plan.yaml ? validateForConsole(plan.yaml, ctx.resources, request.namespace) : { diagnostics: [], analysis: [], lines: [], valid: true },
    summary: `${request.service}: traffic resumed (${plan.summary})`,
  };
}

const hostsOf = (r: Resource) => ((r.spec as { hosts?: string[] }).hosts ?? []).map((h) => h.split('.')[0]);

/** Every action whose resources are in force, newest first. */
export function listActions(resources: readonly Resource[]): ActionRecord[] {
  const byId = new Map<string, ActionRecord>();
  for (const r of resources) {
    const id = r.metadata.annotations?.[ACTION_ID_ANNOTATION];
    const action = r.metadata.labels?.[ACTION_LABEL];
    if (!id || !action) continue;
    let rec = byId.get(id);
    if (!rec) {
      const at = Number.parseInt(id.slice(id.lastIndexOf('-') + 1).split('.')[0], 36);
      const service = r.kind === 'VirtualService' ? hostsOf(r)[0] ?? r.metadata.name : ((r.spec as { host?: string }).host ?? r.metadata.name).split('.')[0];
      byId.set(id, (rec = { id, action: action as ActionRecord['action'], namespace: r.metadata.namespace ?? '', service, at: Number.isFinite(at) ? new Date(at).toISOString() : '', resources: [] }));
    }
    rec.resources.push({ kind: r.kind, namespace: r.metadata.namespace ?? '', name: r.metadata.name });
  }
  return [...byId.values()].sort((a, b) => (a.at < b.at ? 1 : -1));
}

/** What undoing action `id` writes: the resources as they were before it, and deletions of those it created. */
export function undoPlan(id: string, resources: readonly Resource[]): UndoPlan {
  const mine = resources.filter((r) => r.metadata.annotations?.[ACTION_ID_ANNOTATION] === id);
  if (mine.length === 0) throw new ActionError(`no action ${id} is in force (a later action or an edit replaced what it wrote)`);
  const restore: Manifest[] = [];
  const remove: Manifest[] = [];
  for (const r of mine) {
    const previous = r.metadata.annotations?.[ACTION_PREVIOUS_ANNOTATION];
    if (previous) restore.push(JSON.parse(previous) as Manifest);
    else remove.push(copy(r));
  }
  const parts = [restore.length && `restores ${restore.map((m) => `${m.kind} ${m.metadata.name}`).join(', ')}`, remove.length && `deletes ${remove.map((m) => `${m.kind} ${m.metadata.name}`).join(', ')}`].filter(Boolean);
  return { id, yaml: restore.length ? toYaml(restore) : undefined, deleteYaml: remove.length ? toYaml(remove) : undefined, summary: parts.join('; ') };
}

function versionsOf(service: RegistryService): string[] {
  const out = new Set<string>();
  for (const eps of Object.values(service.endpoints)) for (const e of eps) if (e.labels.version) out.add(e.labels.version);
  return [...out].sort();
}

function unknownVersions(wanted: string[], versions: string[], service: RegistryService): void {
  const unknown = wanted.filter((v) => !versions.includes(v));
  if (unknown.length) throw new ActionError(`${service.name} has no version ${unknown.join(', ')}; its versions: ${versions.join(', ') || 'none (no workload behind it has a version label)'}`);
}

/** A resource as a manifest to write back: apiVersion, kind, name, namespace, labels, annotations, spec. */
function copy(r: Resource | Manifest): Manifest {
  const meta = r.metadata as Manifest['metadata'];
  const m: Manifest = {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { name: meta.name, namespace: meta.namespace ?? 'default' },
    spec: JSON.parse(JSON.stringify(r.spec ?? {})) as Record<string, unknown>,
  };
  if (meta.labels && Object.keys(meta.labels).length) m.metadata.labels = { ...meta.labels };
  if (meta.annotations && Object.keys(meta.annotations).length) m.metadata.annotations = { ...meta.annotations };
  return m;
}

/** Drops undefined and empty-string fields (forms leave them). */
function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '' && !(typeof v === 'number' && Number.isNaN(v)))) as T;
}

function toYaml(manifests: readonly Manifest[]): string {
  return manifests.map((m) => stringify(m)).join('---\n');
}
