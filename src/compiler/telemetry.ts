/**
 * Istio's Telemetry API (telemetry.istio.io) and MeshConfig's telemetry providers for one proxy,
 * as pilot/pkg/model/telemetry.go computes them:
 *
 * - Which Telemetry resources apply (applicableTelemetries): the oldest one without selector or
 *   targetRefs in the root namespace, then the oldest such in the proxy's namespace, then every
 *   one in the proxy's namespace that attaches to it by selector or targetRef
 *   (src/semantics/policy-attachment.ts), oldest first; later ones override earlier ones.
 * - Tracing: the provider is the last one named (else `defaultProviders.tracing[0]`), sampling
 *   the last randomSamplingPercentage (else `defaultConfig.tracing.sampling`, else 1 %),
 *   disableSpanReporting the last one set. An opentelemetry (with `http`) or zipkin provider
 *   becomes a collector the proxy exports to, found through the registry as Envoy's cluster
 *   is. The control plane's own collector (`MeshSettings.tracingCollectors`) is Sinew's
 *   built-in trace store and gets the spans too, unless span reporting is off. With no
 *   Telemetry tracing and no default provider, MeshConfig's legacy `enableTracing` decides.
 * - Access logs (mergeLogs): per direction (CLIENT: outbound and gateway; SERVER: inbound),
 *   the providers in scope, each envoyFileAccessLog provider one log with its path and its
 *   text format or JSON labels (the built-in `envoy` provider takes the mesh's
 *   accessLogEncoding and accessLogFormat). With no Telemetry access logging and no default
 *   provider, MeshConfig's legacy `accessLogFile` decides.
 * - Metrics (mergeMetrics, as far as Sinew's metrics go): on while a prometheus provider is in
 *   scope and no override turns ALL_METRICS off.
 *
 * A proxy holds one tracing setting for both directions, so tracing entries and metric
 * overrides whose `match.mode` names only CLIENT or only SERVER are not applied (SNW0577).
 *
 * It needs no CompileContext, so that a caller caching whole configs can recheck a proxy's
 * telemetry cheaply on every build.
 */
import type { AccessLogSettings, TelemetrySettings, TracingCollector } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { AccessLogging, TelemetrySpec, Tracing } from '../api/resources/telemetry.js';
import { DEFAULT_EXTENSION_PROVIDERS, DEFAULT_PROVIDERS, type ExtensionProvider, type MeshTelemetryConfig } from '../api/mesh-config.js';
import type { RegistrySnapshot } from '../api/registry-snapshot.js';
import { DEFAULT_MESH, type CompileInput } from './inputs.js';
import { byCreation } from '../semantics/creation-order.js';
import { policyAttaches, targetRefsOf } from '../semantics/policy-attachment.js';

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

/** One proxy's telemetry settings. */
export function compileTelemetry(input: Pick<CompileInput, 'config' | 'node' | 'mesh'> & { registry?: RegistrySnapshot }): TelemetrySettings {
  const mesh = { ...DEFAULT_MESH, ...(input.mesh ?? {}) };
  const meshTelemetry: MeshTelemetryConfig = mesh.meshTelemetry ?? {};
  const providers = meshTelemetry.extensionProviders ?? DEFAULT_EXTENSION_PROVIDERS;
  const defaults = meshTelemetry.defaultProviders ?? DEFAULT_PROVIDERS;
  const fetch = (name: string | undefined) => (name === undefined ? undefined : providers.find((p) => p.name.toLowerCase() === name.toLowerCase()));
  const base = mesh.telemetry ?? {};
  const own = [...(base.tracingCollectors ?? []), ...(mesh.tracingCollectors ?? [])];
  const applicable = applicableTelemetries(telemetryResources(input.config.resources), input.node, mesh.rootNamespace);

  const settings: TelemetrySettings = { ...base };
  delete settings.tracingCollectors;

  // --- tracing ---
  const tracing = applicable.flatMap((t) => t.spec.tracing ?? []).filter(bothDirections);
  if (tracing.length === 0 && !defaults.tracing?.length) {
    const on = meshTelemetry.enableTracing !== false;
    settings.tracingSamplingPercentage = on ? (mesh.defaultTracingSampling ?? ISTIO_DEFAULT_SAMPLING) : 0;
    if (on && own.length) settings.tracingCollectors = own;
  } else {
    const spec = mergeTracing(tracing, defaults.tracing?.[0]);
    settings.tracingSamplingPercentage = clampPercent(spec.sampling ?? mesh.defaultTracingSampling ?? ISTIO_DEFAULT_SAMPLING);
    if (!spec.disabled) {
      const provider = fetch(spec.provider);
      const theirs = provider ? collectorFor(provider, input.registry) : undefined;
      const collectors = [...(theirs ? [theirs] : []), ...own];
      if (collectors.length) settings.tracingCollectors = collectors;
    }
  }

  // --- access logs ---
  const logging = applicable.filter((t) => t.spec.accessLogging?.length).map((t) => t.spec.accessLogging!);
  let logs: AccessLogSettings[];
  if (logging.length === 0 && !defaults.accessLogging?.length) {
    logs = meshTelemetry.accessLogFile ? [meshAccessLog(meshTelemetry, meshTelemetry.accessLogFile)] : [];
  } else {
    const client = accessLogsFor(mergeLogs(logging, defaults.accessLogging ?? [], 'CLIENT'), fetch, meshTelemetry);
    const server = accessLogsFor(mergeLogs(logging, defaults.accessLogging ?? [], 'SERVER'), fetch, meshTelemetry);
    logs = combineDirections(client, server);
  }
  if (logs.length) settings.accessLogs = logs;
  else delete settings.accessLogs;
  if (settings.accessLog && logging.length) delete settings.accessLog;

  // --- metrics ---
  const metricsOn = metricsEnabled(applicable, defaults.metrics ?? [], fetch);
  if (!metricsOn) settings.metrics = { enabled: false };
  else if (applicable.some((t) => t.spec.metrics?.length)) settings.metrics = { enabled: true };
  return settings;
}

/** The Telemetry resources that apply to a proxy, in override order (least specific first). */
function applicableTelemetries(all: readonly TelemetryResource[], node: CompileInput['node'], root: string): TelemetryResource[] {
  const namespaceWide = (r: TelemetryResource) => !r.spec.selector?.matchLabels && targetRefsOf(r.spec).length === 0;
  const out: TelemetryResource[] = [];
  // Istio uses the oldest when a level holds several namespace-wide ones.
  const rootLevel = all.find((r) => r.metadata.namespace === root && namespaceWide(r));
  if (rootLevel) out.push(rootLevel);
  if (node.namespace !== root) {
    const nsLevel = all.find((r) => r.metadata.namespace === node.namespace && namespaceWide(r));
    if (nsLevel) out.push(nsLevel);
  }
  for (const r of all) {
    if (r.metadata.namespace !== node.namespace || namespaceWide(r)) continue;
    if (policyAttaches(r.spec, r.metadata.namespace, node.namespace, node.labels)) out.push(r);
  }
  return out;
}

const bothDirections = (m: { match?: { mode?: string } }) => !m.match?.mode || m.match.mode === 'CLIENT_AND_SERVER';

const clampPercent = (v: number) => Math.min(100, Math.max(0, v));

/** Istio's Tracing(): the last provider, sampling and disableSpanReporting set win. */
function mergeTracing(entries: readonly Tracing[], defaultProvider: string | undefined): { provider?: string; sampling?: number; disabled: boolean } {
  const out: { provider?: string; sampling?: number; disabled: boolean } = { provider: defaultProvider, disabled: false };
  for (const t of entries) {
    // Istio supports one provider per mode and takes the first named.
    if (t.providers?.length) out.provider = t.providers[0].name;
    if (typeof t.disableSpanReporting === 'boolean') out.disabled = t.disableSpanReporting;
    if (typeof t.randomSamplingPercentage === 'number') out.sampling = t.randomSamplingPercentage;
  }
  return out;
}

/**
 * The collector of a tracing provider, or undefined for a provider that does not trace (or an
 * opentelemetry one over gRPC, which Sinew's proxies do not speak; the loader warns).
 */
function collectorFor(provider: ExtensionProvider, registry: RegistrySnapshot | undefined): TracingCollector | undefined {
  const spec = provider.opentelemetry ?? provider.zipkin;
  if (!spec) return undefined;
  if (provider.opentelemetry && !provider.opentelemetry.http) return undefined;
  const target = resolveProviderService(spec.service, spec.port, registry);
  if (!target) return undefined;
  const kind = provider.opentelemetry ? 'otlp-http' : 'zipkin';
  const path = provider.opentelemetry ? (provider.opentelemetry.http?.path ?? '/v1/traces') : (provider.zipkin?.path ?? '/api/v2/spans');
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const collector: TracingCollector = { kind, url: `http://${host}:${target.port}${path.startsWith('/') ? path : `/${path}`}`, provider: provider.name };
  const headerList = provider.opentelemetry ? provider.opentelemetry.http?.headers : provider.zipkin?.headers;
  const headers = Object.fromEntries((headerList ?? []).filter((h) => h.value !== undefined).map((h) => [h.name, h.value!]));
  if (Object.keys(headers).length) collector.headers = headers;
  const timeout = durationMs(provider.opentelemetry ? provider.opentelemetry.http?.timeout : provider.zipkin?.timeout);
  if (timeout !== undefined) collector.timeoutMs = timeout;
  return collector;
}

/**
 * Where a provider's `service` and `port` are (Istio's LookupCluster): `namespace/host` or a
 * host that one namespace's Service or ServiceEntry has, sent to a healthy endpoint of that
 * port as Envoy's `outbound|<port>||<host>` cluster would be; a host the registry does not
 * know is connected to as it is (a collector on localhost needs no ServiceEntry, unlike in
 * Istio). A host several namespaces have is ambiguous, as in Istio: no collector.
 */
function resolveProviderService(service: string, port: number, registry: RegistrySnapshot | undefined): { host: string; port: number } | undefined {
  const slash = service.indexOf('/');
  const [namespace, host] = slash >= 0 ? [service.slice(0, slash), service.slice(slash + 1)] : [undefined, service];
  const matches = (registry?.services ?? []).filter((s) => s.hostname === host.toLowerCase() && (namespace === undefined || s.namespace === namespace));
  if (matches.length === 0) return { host, port };
  if (matches.length > 1) return undefined;
  const svc = matches[0];
  const endpoints = svc.endpoints[String(port)] ?? [];
  const ep = endpoints.find((e) => e.health === 'HEALTHY') ?? endpoints.find((e) => e.health !== 'UNHEALTHY');
  if (ep) return { host: ep.address, port: ep.port };
  // A ServiceEntry without endpoints (resolution NONE or DNS of its own host): the host itself.
  if (svc.source === 'ServiceEntry' && svc.ports.some((p) => p.port === port) && !host.startsWith('*')) return { host, port };
  return undefined;
}

/** `5s`, `100ms`, `1.5s`, `1m` -> milliseconds. */
function durationMs(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return Math.round(n * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 3_600_000));
}

// === access logs ===

type Mode = 'CLIENT' | 'SERVER';

/** Istio's mergeLogs: the providers in scope for one direction, and which of them are disabled. */
function mergeLogs(levels: readonly (readonly AccessLogging[])[], defaults: readonly string[], mode: Mode): Map<string, { disabled: boolean }> {
  const matches = (a: AccessLogging) => !a.match?.mode || a.match.mode === 'CLIENT_AND_SERVER' || a.match.mode === mode;
  let providerNames: readonly string[] = defaults;
  for (const level of levels) {
    const names = new Set<string>();
    for (const a of level) if (matches(a)) for (const p of a.providers ?? []) names.add(p.name);
    if (names.size) providerNames = [...names];
  }
  const inScope = new Set(providerNames);
  const out = new Map<string, { disabled: boolean }>();
  let parent: readonly string[] = defaults;
  for (const level of levels) {
    for (const a of level) {
      let names = (a.providers ?? []).map((p) => p.name);
      if (names.length === 0) names = [...parent];
      parent = names;
      for (const name of names) {
        if (!inScope.has(name) || !matches(a)) continue;
        out.set(name, { disabled: a.disabled === true });
      }
    }
  }
  return out;
}

function accessLogsFor(merged: Map<string, { disabled: boolean }>, fetch: (name: string) => ExtensionProvider | undefined, mesh: MeshTelemetryConfig): AccessLogSettings[] {
  const out: AccessLogSettings[] = [];
  for (const [name, { disabled }] of [...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (disabled) continue;
    const provider = fetch(name)?.envoyFileAccessLog;
    if (!provider) continue;
    const path = provider.path || '/dev/stdout';
    // The built-in provider without a format of its own writes in the mesh's format (Istio's FileAccessLogFromMeshConfig).
    if (name === 'envoy' && !provider.logFormat && !provider.omitEmptyValues) {
      out.push(meshAccessLog(mesh, path));
      continue;
    }
    const log: AccessLogSettings = { enabled: true, format: 'text', path };
    if (provider.logFormat?.labels && Object.keys(provider.logFormat.labels).length) {
      log.format = 'json';
      log.labels = provider.logFormat.labels;
    } else if (provider.logFormat?.labels) log.format = 'json';
    else if (provider.logFormat?.text) log.text = withNewline(provider.logFormat.text);
    if (provider.omitEmptyValues) log.omitEmptyValues = true;
    out.push(log);
  }
  return out;
}

/** The legacy mesh access log (accessLogFile, accessLogEncoding, accessLogFormat). */
function meshAccessLog(mesh: MeshTelemetryConfig, path: string): AccessLogSettings {
  const log: AccessLogSettings = { enabled: true, format: mesh.accessLogEncoding === 'JSON' ? 'json' : 'text', path };
  if (mesh.accessLogFormat) {
    if (log.format === 'json') {
      try {
        log.labels = JSON.parse(mesh.accessLogFormat) as Record<string, unknown>;
      } catch {
        // Istio logs the error and keeps its default labels; the loader refuses such a file first.
      }
    } else log.text = withNewline(mesh.accessLogFormat);
  }
  return log;
}

/** Istio: "Istio will insert a newline ('\n') on all formats (if missing)". */
const withNewline = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);

/** One list from the two directions' logs: a log both have is written for every request. */
function combineDirections(client: AccessLogSettings[], server: AccessLogSettings[]): AccessLogSettings[] {
  const key = (l: AccessLogSettings) => JSON.stringify(l);
  const serverKeys = new Set(server.map(key));
  const clientKeys = new Set(client.map(key));
  const out: AccessLogSettings[] = [];
  for (const l of client) out.push(serverKeys.has(key(l)) ? l : { ...l, directions: ['outbound', 'gateway'] });
  for (const l of server) if (!clientKeys.has(key(l))) out.push({ ...l, directions: ['inbound'] });
  return out;
}

// === metrics ===

/** Whether Istio's standard metrics are recorded: a prometheus provider in scope, ALL_METRICS not turned off. */
function metricsEnabled(applicable: readonly TelemetryResource[], defaults: readonly string[], fetch: (name: string) => ExtensionProvider | undefined): boolean {
  const entries = applicable.flatMap((t) => t.spec.metrics ?? []);
  let providerNames: readonly string[] = defaults;
  for (const m of entries) if (m.providers?.length) providerNames = m.providers.map((p) => p.name);
  const prometheus = providerNames.filter((n) => fetch(n)?.prometheus !== undefined);
  if (prometheus.length === 0) return false;
  let enabled = true;
  for (const m of entries) {
    for (const o of m.overrides ?? []) {
      if (!bothDirections(o) || (o.match?.metric !== undefined && o.match.metric !== 'ALL_METRICS') || o.match?.customMetric) continue;
      if (typeof o.disabled === 'boolean') enabled = !o.disabled;
    }
  }
  return enabled;
}
