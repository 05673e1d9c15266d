/**
 * `sinew apply`, `sinew delete` and `sinew get`: kubectl-like commands against the running
 * mesh's control plane. apply validates locally first, so errors name the file and line,
 * then sends the whole set as one all-or-nothing change.
 */
import { stringify } from 'yaml';
import type { Diagnostic } from '../api/diagnostics.js';
import { kindDefinitions, type Resource } from '../api/resources/index.js';
import { lastApplied, validateInputs } from '../config/validate.js';
import { loadInputs } from '../config/load.js';
import { callControlPlane, connectControlPlane, type ConnectOptions } from './client.js';
import { countLevels, plural, printDiagnostics, table, type Io } from './output.js';

export type { ConnectOptions } from './client.js';

const manifest = (r: Resource) => ({ apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec });

/** `virtualservice.networking.istio.io/reviews`, as kubectl prints it. */
function qualified(kind: string, name: string): string {
  const def = kindDefinitions.find((d) => d.kind === kind);
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
  const applied = res.body as { revision: number; resources: { kind: string; name: string; result: string }[] };
  if (options.output === 'json') io.out(JSON.stringify(applied, null, 2) + '\n');
  else for (const r of applied.resources) io.out(`${qualified(r.kind, r.name)} ${r.result}\n`);
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

/** Accepts kubectl's forms: `VirtualService`, `virtualservice`, `virtualservices`, short names. */
export function resolveKindName(input: string): string | undefined {
  const short: Record<string, string> = { vs: 'VirtualService', dr: 'DestinationRule', gw: 'Gateway', se: 'ServiceEntry', we: 'WorkloadEntry', wg: 'WorkloadGroup', pa: 'PeerAuthentication', ap: 'AuthorizationPolicy', ra: 'RequestAuthentication', svc: 'Service', ns: 'Namespace' };
  const lower = input.toLowerCase();
  if (short[lower]) return short[lower];
  for (const def of kindDefinitions) {
    const k = def.kind.toLowerCase();
    if (lower === k || lower === `${k}s` || lower === `${k}es` || lower === k.replace(/y$/, 'ies')) return def.kind;
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
    const res = await callControlPlane(cp, `/api/v1/resources/${kind}/${encodeURIComponent(kindDefinitions.find((d) => d.kind === kind)?.namespaced ? namespace : '')}/${encodeURIComponent(options.name)}`);
    if (res.status === 404) {
      io.err(`${kind} ${namespace}/${options.name} not found\n`);
      return 1;
    }
    items = [res.body as Resource];
  } else {
    const query = options.allNamespaces ? `?kind=${kind}` : `?kind=${kind}&namespace=${encodeURIComponent(namespace)}`;
    const res = await callControlPlane(cp, `/api/v1/resources${query}`);
    items = (res.body as { items: Resource[] }).items;
  }
  if (options.output === 'json') io.out(JSON.stringify(options.name ? items[0] : { items }, null, 2) + '\n');
  else if (options.output === 'yaml') io.out(items.map((i) => stringify(i)).join('---\n'));
  else if (items.length === 0) io.err(`No ${kind} resources found${options.allNamespaces ? '' : ` in ${namespace} namespace`}.\n`);
  else {
    const now = Date.now();
    io.out(
      table(
        ['NAMESPACE', 'NAME', 'HOSTS', 'AGE'],
        items.map((i) => {
          const spec = i.spec as { hosts?: string[]; host?: string };
          const created = Date.parse(String(i.metadata.creationTimestamp ?? ''));
          return [i.metadata.namespace || '-', i.metadata.name, (spec.hosts ?? (spec.host ? [spec.host] : [])).join(',') || '-', Number.isNaN(created) ? '-' : age(now - created)];
        }),
      ),
    );
  }
  return 0;
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
