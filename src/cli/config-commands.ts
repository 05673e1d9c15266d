/**
 * `sinew apply`, `sinew delete` and `sinew get`: kubectl-like commands against the running
 * mesh's control plane. apply validates locally first, so errors name the file and line,
 * then sends the whole set as one all-or-nothing change.
 */
import { stringify } from 'yaml';
import type { Diagnostic } from '../api/diagnostics.js';
import { findKind, kindDefinitions, manifestOf, type Resource } from '../api/resources/index.js';
import { lastApplied, validateInputs } from '../config/validate.js';
import { loadInputs } from '../config/load.js';
import { callControlPlane, connectControlPlane, type ConnectOptions } from './client.js';
import { countLevels, plural, printDiagnostics, table, type Io } from './output.js';

export type { ConnectOptions } from './client.js';

const manifest = (r: Resource) => manifestOf(r);

/** `virtualservice.networking.istio.io/reviews`, as kubectl prints it (in `group` when given: two groups share `Gateway`). */
function qualified(kind: string, name: string, group?: string): string {
  const def = group !== undefined ? findKind(kind, group) : kindDefinitions.find((d) => d.kind === kind);
  return `${kind.toLowerCase()}${def?.group ? '.' + def.group : ''}/${name}`;
}

export async function runApply(options: ConnectOptions & { files: string[]; namespace?: string; output: string }, io: Io): Promise<number> {
  const result = await validateInputs(options.files, { defaultNamespace: options.namespace });
  const { errors } = countLevels(result.diagnostics);
  printDiagnostics(io, result.diagnostics);
  if (errors > 0) {
    io.err(`✘ nothing applied: ${plural(errors, 'error')}. Fix them (each names file:line and field) and apply again.\n`);
    return 1;
  }
  if (result.resources.length === 0) {
    io.err('nothing to apply: the input holds no mesh resources\n');
    return 1;
  }
  // `apply -f a.yaml -f b.yaml` applies the files in order, as kubectl does: where both
  // define a resource, b's wins. (A repeat inside one file was refused above, against that file.)
  const resources = lastApplied(result.resources);
  const cp = await connectControlPlane(options);
  const body = resources.map((r) => JSON.stringify(manifest(r))).join('\n---\n');
  const res = await callControlPlane(cp, '/api/v1/apply', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body });
  if (res.status !== 200) {
    const refused = res.body as { error?: string; diagnostics?: Diagnostic[] };
    if (refused.diagnostics) printDiagnostics(io, refused.diagnostics.map((d) => pointAtInput(d, resources)));
    io.err(`✘ the control plane refused the change: ${refused.error ?? res.status}\n`);
    return 1;
  }
  const applied = res.body as { revision: number; resources: { kind: string; name: string; result: string }[]; diagnostics?: Diagnostic[] };
  // What only the control plane can tell (a certificate file its machine cannot read, SNW1020);
  // the validation findings were printed above.
  const seen = new Set(result.diagnostics.map((d) => `${d.code} ${d.resource?.kind}/${d.resource?.name} ${d.path}`));
  printDiagnostics(io, (applied.diagnostics ?? []).filter((d) => !seen.has(`${d.code} ${d.resource?.kind}/${d.resource?.name} ${d.path}`)).map((d) => pointAtInput(d, resources)));
  if (options.output === 'json') io.out(JSON.stringify(applied, null, 2) + '\n');
  // The API answers in the order the resources were sent.
  else applied.resources.forEach((r, i) => io.out(`${qualified(r.kind, r.name, resources[i]?.kind === r.kind ? resources[i].group : undefined)} ${r.result}\n`));
  return 0;
}

/**
 * The control plane reports positions in the request this command built, which the user never
 * saw: point a finding about one of the resources at the document it was read from instead.
 */
export function pointAtInput(d: Diagnostic, sent: readonly Resource[]): Diagnostic {
  const about = d.resource;
  if (!about) return d;
  const r = sent.find((x) => x.kind === about.kind && x.metadata.name === about.name && (x.metadata.namespace || undefined) === (about.namespace || undefined));
  return r?.source ? { ...d, source: r.source } : d;
}

export async function runDelete(options: ConnectOptions & { files: string[]; namespace?: string; output: string }, io: Io): Promise<number> {
  const loaded = await loadInputs(options.files);
  const bad = loaded.diagnostics.filter((d) => d.level === 'error');
  if (bad.length) {
    printDiagnostics(io, bad);
    return 1;
  }
  const cp = await connectControlPlane(options);
  const body = loaded.documents.map((d) => JSON.stringify(d.value)).join('\n---\n');
  const res = await callControlPlane(cp, `/api/v1/delete?namespace=${encodeURIComponent(options.namespace ?? 'default')}`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body });
  if (res.status !== 200) {
    io.err(`✘ delete failed: ${(res.body as { error?: string }).error ?? res.status}\n`);
    return 1;
  }
  const deleted = res.body as { resources: { kind: string; name: string; result: string }[] };
  if (options.output === 'json') io.out(JSON.stringify(deleted, null, 2) + '\n');
  else for (const r of deleted.resources) io.out(`${qualified(r.kind, r.name)} ${r.result}\n`);
  return deleted.resources.some((r) => r.result !== 'deleted') ? 1 : 0;
}

/**
 * Accepts kubectl's forms: `VirtualService`, `virtualservice`, `virtualservices`, short names,
 * and names qualified by their group (`gateways.gateway.networking.k8s.io`). Returns the
 * kind's key: `gateway` is Istio's Gateway, as `gw` is, and the Gateway API's is `gtw` or
 * `gateways.gateway.networking.k8s.io`, as kubectl resolves them with Istio installed.
 */
export function resolveKindName(input: string): string | undefined {
  const short: Record<string, string> = {
    vs: 'VirtualService', dr: 'DestinationRule', gw: 'Gateway', se: 'ServiceEntry', we: 'WorkloadEntry', wg: 'WorkloadGroup', pa: 'PeerAuthentication', ap: 'AuthorizationPolicy', ra: 'RequestAuthentication', svc: 'Service', ns: 'Namespace',
    gtw: 'Gateway.gateway.networking.k8s.io', gc: 'GatewayClass', refgrant: 'ReferenceGrant',
  };
  const lower = input.toLowerCase();
  if (short[lower]) return short[lower];
  const dot = lower.indexOf('.');
  const name = dot < 0 ? lower : lower.slice(0, dot);
  const group = dot < 0 ? undefined : lower.slice(dot + 1);
  for (const def of kindDefinitions) {
    if (group !== undefined && def.group !== group) continue;
    const k = def.kind.toLowerCase();
    if (name === k || name === `${k}s` || name === `${k}es` || name === k.replace(/y$/, 'ies')) return def.key ?? def.kind;
  }
  return undefined;
}

export async function runGet(options: ConnectOptions & { kind: string; name?: string; namespace?: string; allNamespaces?: boolean; output: string }, io: Io): Promise<number> {
  const kind = resolveKindName(options.kind);
  if (!kind) {
    io.err(`unknown kind "${options.kind}"; try one of: ${kindDefinitions.map((d) => d.kind).join(', ')}\n`);
    return 2;
  }
  const cp = await connectControlPlane(options);
  const namespace = options.namespace ?? 'default';
  let items: Resource[];
  if (options.name) {
    const res = await callControlPlane(cp, `/api/v1/resources/${kind}/${encodeURIComponent(findKind(kind)?.namespaced ? namespace : '')}/${encodeURIComponent(options.name)}`);
    if (res.status === 404) {
      io.err(`${kind} ${namespace}/${options.name} not found\n`);
      return 1;
    }
    items = [res.body as Resource];
  } else {
    // Cluster-scoped kinds (Namespace, GatewayClass) are listed whole.
    const query = options.allNamespaces || findKind(kind)?.namespaced === false ? `?kind=${kind}` : `?kind=${kind}&namespace=${encodeURIComponent(namespace)}`;
    const res = await callControlPlane(cp, `/api/v1/resources${query}`);
    items = (res.body as { items: Resource[] }).items;
  }
  if (options.output === 'json') io.out(JSON.stringify(options.name ? items[0] : { items }, null, 2) + '\n');
  else if (options.output === 'yaml') io.out(items.map((i) => stringify(i)).join('---\n'));
  else if (items.length === 0) io.err(`No ${kind} resources found${options.allNamespaces ? '' : ` in ${namespace} namespace`}.\n`);
  else {
    const now = Date.now();
    const ageOf = (i: Resource) => {
      const created = Date.parse(String(i.metadata.creationTimestamp ?? ''));
      return Number.isNaN(created) ? '-' : age(now - created);
    };
    const { headers, row } = columnsOf(kind);
    io.out(table(['NAMESPACE', 'NAME', ...headers, 'AGE'], items.map((i) => [i.metadata.namespace || '-', i.metadata.name, ...row(i), ageOf(i)])));
  }
  return 0;
}

type Listed = Resource & { status?: { conditions?: { type: string; status: string; reason: string }[]; addresses?: { value: string }[]; parents?: { conditions?: { type: string; status: string; reason: string }[] }[] } };

/** `True`, or `False (Reason)` for a condition of a status; `-` when there is none. */
function conditionCell(conditions: { type: string; status: string; reason: string }[] | undefined, type: string): string {
  const c = conditions?.find((x) => x.type === type);
  if (!c) return '-';
  return c.status === 'True' ? 'True' : `${c.status} (${c.reason})`;
}

/** The columns `sinew get` prints for a kind besides namespace, name and age (kubectl's printer columns where the CRD has them). */
function columnsOf(kind: string): { headers: string[]; row: (i: Listed) => string[] } {
  switch (kind) {
    case 'GatewayClass':
      return { headers: ['CONTROLLER', 'ACCEPTED'], row: (i) => [String((i.spec as { controllerName?: string }).controllerName ?? '-'), conditionCell(i.status?.conditions, 'Accepted')] };
    case 'Gateway.gateway.networking.k8s.io':
      return {
        headers: ['CLASS', 'ADDRESS', 'PROGRAMMED'],
        row: (i) => [String((i.spec as { gatewayClassName?: string }).gatewayClassName ?? '-'), i.status?.addresses?.map((a) => a.value).join(',') || '-', conditionCell(i.status?.conditions, 'Programmed')],
      };
    case 'HTTPRoute':
    case 'GRPCRoute':
    case 'TLSRoute':
    case 'TCPRoute': {
      // Accepted by every parent, or the first refusal: why a route is not attached.
      const accepted = (i: Listed) => {
        const parents = i.status?.parents ?? [];
        if (parents.length === 0) return '- (no parent of Sinew\'s)';
        return parents.map((p) => conditionCell(p.conditions, 'Accepted')).find((c) => c !== 'True') ?? 'True';
      };
      const refs = (i: Listed) => (i.status?.parents ?? []).map((p) => conditionCell(p.conditions, 'ResolvedRefs')).find((c) => c !== 'True') ?? ((i.status?.parents ?? []).length ? 'True' : '-');
      if (kind === 'TCPRoute') return { headers: ['ACCEPTED', 'RESOLVED'], row: (i) => [accepted(i), refs(i)] };
      return { headers: ['HOSTNAMES', 'ACCEPTED', 'RESOLVED'], row: (i) => [((i.spec as { hostnames?: string[] }).hostnames ?? []).join(',') || '*', accepted(i), refs(i)] };
    }
    case 'ReferenceGrant':
      return { headers: [], row: () => [] };
    case 'BackendTLSPolicy': {
      // Per Gateway that sends to its targets (its ancestors): the first condition not True.
      const ancestors = (i: Listed) => ((i.status as { ancestors?: { conditions?: { type: string; status: string; reason: string }[] }[] } | undefined)?.ancestors ?? []);
      const cell = (i: Listed, type: string) => (ancestors(i).length ? (ancestors(i).map((a) => conditionCell(a.conditions, type)).find((c) => c !== 'True') ?? 'True') : '- (no Gateway routes to its targets)');
      const spec = (i: Listed) => i.spec as { targetRefs?: { name: string; sectionName?: string }[]; validation?: { hostname?: string } };
      return {
        headers: ['TARGETS', 'HOSTNAME', 'ACCEPTED', 'RESOLVED'],
        row: (i) => [(spec(i).targetRefs ?? []).map((t) => (t.sectionName ? `${t.name}:${t.sectionName}` : t.name)).join(',') || '-', spec(i).validation?.hostname ?? '-', cell(i, 'Accepted'), cell(i, 'ResolvedRefs')],
      };
    }
    case 'ConfigMap':
      return { headers: ['DATA'], row: (i) => [String(Object.keys((i as unknown as { data?: object }).data ?? {}).length)] };
    case 'Secret':
      return { headers: ['TYPE', 'DATA'], row: (i) => [String((i as unknown as { type?: string }).type ?? 'Opaque'), String(Object.keys((i as unknown as { data?: object }).data ?? {}).length)] };
    default:
      return {
        headers: ['HOSTS'],
        row: (i) => {
          const spec = i.spec as { hosts?: string[]; host?: string };
          return [(spec.hosts ?? (spec.host ? [spec.host] : [])).join(',') || '-'];
        },
      };
  }
}

/** kubectl's AGE (apimachinery duration.HumanDuration): `45s`, `3m20s`, `42m`, `5h30m`, `30h`, `2d3h`, `40d`. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 192) return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
  return `${d}d`;
}
