/**
 * `sinew analyze`: cross-resource checks over a whole configuration, in the spirit of
 * istioctl analyze and Kiali's validations. Validation looks at one resource at a time;
 * these analyzers look at how resources refer to each other (routes to subsets, hosts and
 * gateways that must exist, policies that must agree).
 *
 * Each analyzer is a pure function of the valid resources. `analyzeInputs` adds the I/O:
 * it reads and validates the input first (validation findings count too) and points each
 * analysis finding at the exact field, using the parsed documents it still holds.
 */
import type { Diagnostic, SourcePosition } from '../../api/diagnostics.js';
import type { Resource } from '../../api/resources/index.js';
import type { FieldPath } from '../../core/path.js';
import { loadInputs, defaultLoadLimits, type RawDocument } from '../load.js';
import { validateDocuments, type ValidateOptions } from '../validate.js';
import type { Analyzer } from './common.js';
import { analyzeSubsets } from './subsets.js';
import { analyzeDestinationHosts } from './destination-hosts.js';
import { analyzeGateways } from './gateways.js';
import { analyzeDestinationRuleConflicts } from './destination-rule-conflicts.js';
import { analyzeUnreachableRoutes } from './unreachable-routes.js';
import { analyzeRouteWeights } from './route-weights.js';
import { analyzeMtlsConflicts } from './mtls-conflicts.js';
import { analyzeOrphanWorkloads } from './orphan-workloads.js';
import { analyzeVirtualServiceHosts } from './virtual-service-hosts.js';
import { analyzeGatewayTls } from './gateway-tls.js';
import { analyzeUpstreamTls } from './upstream-tls.js';
import { analyzeUnexpandedHosts } from './unexpanded-hosts.js';

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
  { name: 'gateway-tls', codes: ['SNW1011'], run: analyzeGatewayTls },
  { name: 'upstream-tls', codes: ['SNW1012'], run: analyzeUpstreamTls },
  { name: 'unexpanded-hosts', codes: ['SNW1013'], run: analyzeUnexpandedHosts },
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
  /** Resources that passed validation and are in force (see `inForce`): what was analyzed. */
  resources: Resource[];
  /** Reading and validation findings. */
  validation: Diagnostic[];
  /** Cross-resource findings. */
  analysis: Diagnostic[];
  /** Documents skipped on purpose (kinds Sinew does not use). */
  skipped: number;
}

/** Reads, validates and analyzes files, directories or `-` (stdin). */
export async function analyzeInputs(inputs: readonly string[], options: ValidateOptions = {}): Promise<AnalysisResult> {
  const loaded = await loadInputs(inputs, options.limits ?? defaultLoadLimits);
  const validated = validateDocuments(loaded.documents, options);
  const byStart = new Map<string, RawDocument>();
  for (const doc of loaded.documents) byStart.set(positionKey(doc.start), doc);
  const resources = inForce(validated.resources);
  const analysis = analyze(resources)
    .map((d) => {
      const doc = d.source && byStart.get(positionKey(d.source));
      const path = d.path === undefined ? undefined : parsePath(d.path);
      return doc && path ? { ...d, source: doc.positionOf(path) } : d;
    })
    .sort((a, b) => compareSource(a.source, b.source));
  return { resources, validation: [...loaded.diagnostics, ...validated.diagnostics], analysis, skipped: validated.skipped };
}

/**
 * The resources in force once every input is applied in order, as `kubectl apply -f a -f b`
 * would leave them: a later file's `Kind namespace/name` replaces an earlier one (validation
 * only rejects a repeat inside one file). Without this, Istio's sample folders, which hold
 * alternative versions of the same VirtualService, would "conflict" with themselves.
 */
export function inForce(resources: readonly Resource[]): Resource[] {
  const last = new Map<string, Resource>();
  for (const r of resources) {
    const key = `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
    last.delete(key); // re-inserted below, so the map keeps the order of application
    last.set(key, r);
  }
  return [...last.values()];
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
