/**
 * `sinew analyze`: cross-resource checks over a whole configuration, in the spirit of
 * istioctl analyze and Kiali's validations. Validation looks at one resource at a time;
 * these analyzers look at how resources refer to each other (routes to subsets, hosts and
 * gateways that must exist, policies that must agree).
 *
 * Each analyzer is a pure function of the valid resources. `analyzeInputs` adds the I/O:
 * it reads and validates the input first (validation findings count too) and points each
 * analysis finding at the exact field, using the parsed documents it still holds.
 *
 * Like `istioctl analyze` with a cluster, it can analyse the config in force in a running
 * mesh with the files layered on top: a file's resource replaces the one in force with the
 * same `Kind namespace/name`, stamped as applying it would stamp it (it keeps the creation
 * time of the one it replaces; a new one is the youngest), so the analysis sees what the
 * mesh would hold after `sinew apply` of those files.
 */
import type { Diagnostic, SourcePosition } from '../../api/diagnostics.js';
import type { Resource } from '../../api/resources/index.js';
import type { FieldPath } from '../../core/path.js';
import { deepFreeze } from '../../core/freeze.js';
import { creationTime } from '../../semantics/creation-order.js';
import { loadInputs, parseText, defaultLoadLimits, type RawDocument } from '../load.js';
import { stampApplied } from '../object-meta.js';
import { lastApplied, validateDocuments, type ValidateOptions } from '../validate.js';
import type { Analyzer } from './common.js';
import { analyzeSubsets } from './subsets.js';
import { analyzeDestinationHosts } from './destination-hosts.js';
import { analyzeGateways } from './gateways.js';
import { analyzeGatewayCredentials } from './gateway-credentials.js';
import { analyzeDestinationRuleConflicts } from './destination-rule-conflicts.js';
import { analyzeUnreachableRoutes } from './unreachable-routes.js';
import { analyzeRouteWeights } from './route-weights.js';
import { analyzeMtlsConflicts } from './mtls-conflicts.js';
import { analyzeOrphanWorkloads } from './orphan-workloads.js';
import { analyzeVirtualServiceHosts } from './virtual-service-hosts.js';
import { analyzeUnexpandedHosts } from './unexpanded-hosts.js';
import { analyzeServiceTargetPorts } from './service-target-ports.js';
import { analyzeAuthorizationPolicies } from './authorization-policies.js';

export type { Analyzer } from './common.js';

/** Every analyzer, with the codes it reports. */
export const analyzers: readonly { name: string; codes: readonly string[]; run: Analyzer }[] = Object.freeze([
  { name: 'subsets', codes: ['SNW1001'], run: analyzeSubsets },
  { name: 'destination-hosts', codes: ['SNW1002'], run: analyzeDestinationHosts },
  { name: 'gateways', codes: ['SNW1003'], run: analyzeGateways },
  { name: 'destination-rule-conflicts', codes: ['SNW1004', 'SNW1005'], run: analyzeDestinationRuleConflicts },
  { name: 'unreachable-routes', codes: ['SNW1006'], run: analyzeUnreachableRoutes },
  { name: 'route-weights', codes: ['SNW1007'], run: analyzeRouteWeights },
  { name: 'mtls-conflicts', codes: ['SNW1008'], run: analyzeMtlsConflicts },
  { name: 'orphan-workloads', codes: ['SNW1009'], run: analyzeOrphanWorkloads },
  { name: 'virtual-service-hosts', codes: ['SNW1010'], run: analyzeVirtualServiceHosts },
  { name: 'unexpanded-hosts', codes: ['SNW1013'], run: analyzeUnexpandedHosts },
  { name: 'service-target-ports', codes: ['SNW1014'], run: analyzeServiceTargetPorts },
  { name: 'authorization-policies', codes: ['SNW1015', 'SNW1016', 'SNW1017', 'SNW1018'], run: analyzeAuthorizationPolicies },
  { name: 'gateway-credentials', codes: ['SNW1021'], run: analyzeGatewayCredentials },
]);

/** Runs every analyzer over valid resources; findings come back in input order. */
export function analyze(resources: readonly Resource[]): Diagnostic[] {
  const out = analyzers.flatMap((a) => a.run(resources));
  return out
    .map((d, i) => ({ d, i }))
    .sort((a, b) => compareSource(a.d.source, b.d.source) || a.i - b.i)
    .map(({ d }) => d);
}

export interface AnalysisResult {
  /** Resources that passed validation, as they would be in force: what was analyzed. */
  resources: Resource[];
  /** Reading and validation findings. */
  validation: Diagnostic[];
  /** Cross-resource findings. */
  analysis: Diagnostic[];
  /** Documents skipped on purpose (kinds Sinew does not use). */
  skipped: number;
  /** When the config in force was analysed too: its revision, its size, and how many of its resources the files replaced. */
  inForce?: { revision: number; resources: number; replaced: number };
}

/** The config in force in a running mesh, as its control plane lists it. */
export interface InForceConfig {
  revision: number;
  /** The resources as manifests (apiVersion, kind, metadata, spec). */
  manifests: readonly unknown[];
}

export interface AnalyzeOptions extends ValidateOptions {
  /** Analyse this config with the inputs layered on top; without it the inputs are analysed alone. */
  inForce?: InForceConfig;
  /** The clock that stamps the inputs' new resources (ms since the epoch; default Date.now). */
  now?: () => number;
}

/** Reads, validates and analyzes files, directories or `-` (stdin), over the config in force when given. */
export async function analyzeInputs(inputs: readonly string[], options: AnalyzeOptions = {}): Promise<AnalysisResult> {
  const loaded = await loadInputs(inputs, options.limits ?? defaultLoadLimits);
  const validated = validateDocuments(loaded.documents, options);
  const byStart = new Map<string, RawDocument>();
  for (const doc of loaded.documents) byStart.set(positionKey(doc.start), doc);
  const fromFiles = lastApplied(validated.resources);
  const layered = options.inForce ? layer(options.inForce, fromFiles, options.now ?? Date.now) : undefined;
  const resources = layered?.resources ?? fromFiles;
  const analysis = analyze(resources)
    .map((d) => {
      const doc = d.source && byStart.get(positionKey(d.source));
      const path = d.path === undefined ? undefined : parsePath(d.path);
      return doc && path ? { ...d, source: doc.positionOf(path) } : d;
    })
    .sort((a, b) => compareSource(a.source, b.source));
  return {
    resources,
    validation: [...loaded.diagnostics, ...validated.diagnostics, ...(layered?.diagnostics ?? [])],
    analysis,
    skipped: validated.skipped,
    ...(layered ? { inForce: layered.summary } : {}),
  };
}

const keyOf = (r: { kind: string; metadata: { namespace?: string; name: string } }) => `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

/**
 * The config in force with `fromFiles` applied over it. The manifests are validated again
 * (a control plane of another version may hold what this one refuses); their findings have
 * no file position, and those of a resource a file replaces are dropped with it.
 */
function layer(config: InForceConfig, fromFiles: readonly Resource[], now: () => number): { resources: Resource[]; diagnostics: Diagnostic[]; summary: NonNullable<AnalysisResult['inForce']> } {
  const text = config.manifests.map((m) => JSON.stringify(m)).join('\n---\n');
  const checked = config.manifests.length ? validateDocuments(parseText('<in force>', text).documents) : { resources: [], diagnostics: [] };
  const current = new Map<string, Resource>();
  for (const r of checked.resources) {
    const { source: _position, ...withoutSource } = r;
    current.set(keyOf(r), deepFreeze(withoutSource) as Resource);
  }
  let youngest = Number.NEGATIVE_INFINITY;
  for (const r of current.values()) youngest = Math.max(youngest, creationTime(r));
  const stamp = { creationTimestamp: new Date(Math.max(now(), youngest + 1)).toISOString(), resourceVersion: String(config.revision + 1) };
  const merged = new Map(current);
  const replaced = new Set<string>();
  for (const r of fromFiles) {
    const key = keyOf(r);
    const existing = current.get(key);
    if (existing) replaced.add(key);
    merged.set(key, stampApplied(r, existing, stamp));
  }
  const diagnostics = checked.diagnostics
    .filter((d) => !d.resource || !replaced.has(keyOf({ kind: d.resource.kind, metadata: { namespace: d.resource.namespace ?? '', name: d.resource.name } })))
    .map(({ source: _position, ...d }) => d);
  return { resources: [...merged.values()], diagnostics, summary: { revision: config.revision, resources: current.size, replaced: replaced.size } };
}

const positionKey = (p: SourcePosition) => `${p.line}:${p.column}:${p.file}`;

function compareSource(a: SourcePosition | undefined, b: SourcePosition | undefined): number {
  if (!a || !b) return a ? -1 : b ? 1 : 0;
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column;
}

/** The inverse of formatPath: `spec.http[0]["a.b"]` -> `['spec', 'http', 0, 'a.b']`. */
export function parsePath(text: string): FieldPath | undefined {
  const out: (string | number)[] = [];
  const re = /\.?([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(JSON.parse(m[3]) as string);
  }
  return re.lastIndex === text.length || out.length > 0 ? out : undefined;
}
