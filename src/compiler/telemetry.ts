/**
 * Istio's Telemetry API (telemetry.istio.io) for one proxy: the Telemetry resources of the root
 * namespace, then of the proxy's namespace, then those whose selector matches the workload,
 * each more specific level overriding the fields it sets (pilot/pkg/model/telemetry.go
 * computes the same hierarchy). Read here: `tracing[].randomSamplingPercentage`,
 * `accessLogging[].disabled` (and enabling through a provider), and `metrics[].overrides`
 * disabling ALL_METRICS. A proxy holds one setting for both of its directions, so entries
 * whose `match.mode` names only CLIENT or only SERVER are not applied.
 *
 * It needs no CompileContext, so that a caller caching whole configs can recheck a proxy's
 * telemetry cheaply on every build.
 */
import type { TelemetrySettings } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { TelemetrySpec } from '../api/resources/telemetry.js';
import { DEFAULT_MESH, type CompileInput } from './inputs.js';
import { selectorMatches } from '../semantics/labels.js';
import { byCreation } from '../semantics/creation-order.js';

type TelemetryResource = Resource<TelemetrySpec>;

/** Istio's default trace sampling (meshConfig defaultConfig.tracing.sampling) is 1 %. */
const ISTIO_DEFAULT_SAMPLING = 1;

/** The Telemetry resources of a frozen snapshot, oldest first, found once per snapshot (a memo, not state). */
const telemetryOf = new WeakMap<readonly Resource[], TelemetryResource[]>();

function telemetryResources(resources: readonly Resource[]): TelemetryResource[] {
  let list = telemetryOf.get(resources);
  if (!list) {
    list = resources.filter((r): r is TelemetryResource => r.kind === 'Telemetry').sort(byCreation);
    if (Object.isFrozen(resources)) telemetryOf.set(resources, list);
  }
  return list;
}

/**
 * One proxy's telemetry settings: the mesh defaults (sampling, collectors, access log), then
 * the Telemetry resources that apply to it.
 */
export function compileTelemetry(input: Pick<CompileInput, 'config' | 'node' | 'mesh'>): TelemetrySettings {
  const mesh = { ...DEFAULT_MESH, ...(input.mesh ?? {}) };
  const base = mesh.telemetry ?? {};
  const settings: TelemetrySettings = { ...base, tracingSamplingPercentage: mesh.defaultTracingSampling ?? ISTIO_DEFAULT_SAMPLING };
  const collectors = [...(base.tracingCollectors ?? []), ...(mesh.tracingCollectors ?? [])];
  if (collectors.length) settings.tracingCollectors = collectors;
  const all = telemetryResources(input.config.resources);
  if (all.length === 0) return settings;
  return applyTelemetryResources(all, input.node, mesh.rootNamespace, settings);
}

function applyTelemetryResources(all: readonly TelemetryResource[], node: CompileInput['node'], root: string, base: TelemetrySettings): TelemetrySettings {
  const unselected = (r: TelemetryResource) => !r.spec.selector?.matchLabels && !r.spec.targetRef && !r.spec.targetRefs?.length;
  // Istio uses the oldest when a level holds several; later ones at that level are ignored.
  const levels = [
    all.find((r) => r.metadata.namespace === root && unselected(r)),
    node.namespace !== root ? all.find((r) => r.metadata.namespace === node.namespace && unselected(r)) : undefined,
    all.find((r) => r.metadata.namespace === node.namespace && r.spec.selector?.matchLabels && selectorMatches(r.spec.selector.matchLabels, node.labels)),
  ];
  const out: TelemetrySettings = { ...base };
  for (const level of levels) {
    if (level) overlay(out, level.spec);
  }
  return out;
}

const bothDirections = (m: { match?: { mode?: string } }) => !m.match?.mode || m.match.mode === 'CLIENT_AND_SERVER';

function overlay(out: TelemetrySettings, spec: TelemetrySpec): void {
  for (const t of spec.tracing ?? []) {
    if (!bothDirections(t)) continue;
    if (typeof t.randomSamplingPercentage === 'number') out.tracingSamplingPercentage = Math.min(100, Math.max(0, t.randomSamplingPercentage));
    // disableSpanReporting keeps propagation but sends nothing: no collectors.
    if (t.disableSpanReporting === true) delete out.tracingCollectors;
  }
  for (const a of spec.accessLogging ?? []) {
    if (!bothDirections(a)) continue;
    if (a.disabled === true) out.accessLog = { ...(out.accessLog ?? { format: 'text' }), enabled: false };
    // Naming a provider turns logging on (Istio's built-in `envoy` provider writes text to stdout).
    else if (a.disabled === false || a.providers?.length) out.accessLog = { format: 'text', ...(out.accessLog ?? {}), enabled: true };
  }
  for (const m of spec.metrics ?? []) {
    for (const o of m.overrides ?? []) {
      if (!bothDirections(o) || (o.match?.metric !== undefined && o.match.metric !== 'ALL_METRICS') || o.match?.customMetric) continue;
      if (typeof o.disabled === 'boolean') out.metrics = { enabled: !o.disabled };
    }
  }
}
