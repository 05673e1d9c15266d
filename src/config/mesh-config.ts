/**
 * The mesh config file that `sinew up --mesh-config` and `sinew controlplane --mesh-config`
 * read: Istio's MeshConfig, in whichever of the forms an Istio user has it:
 *
 *   - the MeshConfig itself, as istiod reads it (`--meshConfig`, the `mesh` key of the
 *     `istio` ConfigMap): `extensionProviders: [...]`, `defaultProviders: {...}`, ...;
 *   - the ConfigMap (`kubectl -n istio-system get cm istio -o yaml`): its `data.mesh`;
 *   - an IstioOperator (`istioctl install -f`, the istio.io telemetry tasks): `spec.meshConfig`;
 *   - Helm values (`helm install istiod -f values.yaml`): the top-level `meshConfig:`.
 *
 * Every problem comes back at once with file:line:column, field and code: structure (SNW01xx),
 * providers (SNW0450), default providers that name nothing (SNW0451), and Istio fields Sinew
 * reads but does not apply (SNW0452). A file with errors is refused whole; the caller keeps
 * what it had.
 */
import { readFile } from 'node:fs/promises';
import type { Diagnostic } from '../api/diagnostics.js';
import {
  APPLIED_MESH_CONFIG_FIELDS,
  APPLIED_PROVIDER_KINDS,
  DEFAULT_EXTENSION_PROVIDERS,
  MESH_CONFIG_FIELDS,
  OTHER_PROVIDER_KINDS,
  meshConfigSchema,
  type ExtensionProvider,
  type MeshTelemetryConfig,
} from '../api/mesh-config.js';
import { checkEnvoyFormatLabels, parseEnvoyFormat } from '../core/envoy-format.js';
import type { FieldPath } from '../core/path.js';
import { formatPath } from '../core/path.js';
import { didYouMean } from '../core/suggest.js';
import { parseText, type RawDocument } from './load.js';
import { checkStructure } from './structure.js';
import { parseDurationMs } from './semantic/rules.js';

/** The mesh-wide settings a mesh config file gives the control plane. */
export interface MeshConfigSettings {
  rootNamespace?: string;
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** defaultConfig.tracing.sampling, 0..100. */
  defaultTracingSampling?: number;
  /** defaultConfig.gatewayTopology.numTrustedProxies: the gateways' trusted X-Forwarded-For hops. */
  gatewayNumTrustedProxies?: number;
  /** pathNormalization.normalization (DEFAULT is BASE, as in Istio). */
  pathNormalization?: 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
  /** dnsRefreshRate, in milliseconds. */
  dnsRefreshRateMs?: number;
  telemetry: MeshTelemetryConfig;
}

export interface MeshConfigResult {
  /** Absent when the file has errors. */
  settings?: MeshConfigSettings;
  diagnostics: Diagnostic[];
  /** Which form the file had (for messages). */
  form?: 'MeshConfig' | 'ConfigMap' | 'IstioOperator' | 'Helm values';
}

/** Reads and checks a mesh config file. Never throws for bad input. */
export async function loadMeshConfigFile(file: string): Promise<MeshConfigResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { diagnostics: [{ level: 'error', code: 'SNW0001', message: `cannot read the mesh config: ${(err as Error).message}`, source: { file, line: 1, column: 1 } }] };
  }
  return parseMeshConfig(file, text);
}

/** Checks mesh config text (`file` names it in diagnostics). */
export function parseMeshConfig(file: string, text: string): MeshConfigResult {
  const loaded = parseText(file, text);
  if (loaded.diagnostics.some((d) => d.level === 'error')) return { diagnostics: loaded.diagnostics };
  const docs = loaded.documents.filter((d) => d.value !== null && d.value !== undefined);
  if (docs.length !== 1) {
    return { diagnostics: [...loaded.diagnostics, { level: 'error', code: 'SNW0008', message: `a mesh config file holds one document; this one has ${docs.length}`, source: { file, line: 1, column: 1 } }] };
  }
  const doc = docs[0];
  const root = doc.value as Record<string, unknown>;
  if (typeof root !== 'object' || Array.isArray(root)) return { diagnostics: [notAMap(doc, [])] };

  // Find the MeshConfig inside whatever wraps it.
  if (root.kind === 'ConfigMap') {
    const mesh = (root.data as Record<string, unknown> | undefined)?.mesh;
    if (typeof mesh !== 'string') return { diagnostics: [{ level: 'error', code: 'SNW0102', message: 'a ConfigMap mesh config keeps the MeshConfig as a YAML string under data.mesh, as the istio ConfigMap does', source: doc.positionOf(['data']), path: 'data.mesh' }] };
    // The embedded text is parsed on its own: its positions are lines of data.mesh.
    const inner = parseMeshConfig(`${file} (data.mesh)`, mesh);
    return { ...inner, form: 'ConfigMap' };
  }
  let base: FieldPath = [];
  let form: MeshConfigResult['form'] = 'MeshConfig';
  if (root.kind === 'IstioOperator') {
    base = ['spec', 'meshConfig'];
    form = 'IstioOperator';
  } else if ('meshConfig' in root) {
    base = ['meshConfig'];
    form = 'Helm values';
  }
  let mesh: unknown = root;
  for (const part of base) mesh = (mesh as Record<string, unknown> | undefined)?.[part as string];
  if (mesh === undefined || mesh === null) mesh = {};
  if (typeof mesh !== 'object' || Array.isArray(mesh)) return { diagnostics: [notAMap(doc, base)], form };
  const diagnostics = [...loaded.diagnostics, ...checkMeshConfig(mesh as Record<string, unknown>, doc, base)];
  if (diagnostics.some((d) => d.level === 'error')) return { diagnostics, form };
  return { settings: settingsOf(mesh as Record<string, unknown>), diagnostics, form };
}

function notAMap(doc: RawDocument, path: FieldPath): Diagnostic {
  return { level: 'error', code: 'SNW0008', message: 'the mesh config must be a mapping of MeshConfig fields', source: doc.positionOf(path), ...(path.length ? { path: formatPath(path) } : {}) };
}

/** Every finding for one MeshConfig value, positioned in `doc` under `base`. */
function checkMeshConfig(mesh: Record<string, unknown>, doc: RawDocument, base: FieldPath): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (level: Diagnostic['level'], code: string, path: FieldPath, message: string, atKey = false) => {
    const full = [...base, ...path];
    out.push({ level, code, message, source: atKey ? doc.keyPositionOf(full) : doc.positionOf(full), path: formatPath(full) });
  };
  for (const issue of checkStructure(meshConfigSchema, mesh, [])) report('error', issue.code, issue.path, issue.message, issue.atKey);
  for (const key of Object.keys(mesh)) {
    if (!MESH_CONFIG_FIELDS.includes(key)) report('error', 'SNW0104', [key], `unknown field "${key}": not a MeshConfig field${didYouMean(key, MESH_CONFIG_FIELDS)}`, true);
    else if (!APPLIED_MESH_CONFIG_FIELDS.has(key)) report('warning', 'SNW0452', [key], `${key} is a MeshConfig field Sinew does not apply; it has no effect`, true);
  }
  const defaultConfig = mesh.defaultConfig as Record<string, unknown> | undefined;
  if (defaultConfig && typeof defaultConfig === 'object') {
    for (const key of Object.keys(defaultConfig)) if (key !== 'tracing' && key !== 'gatewayTopology') report('warning', 'SNW0452', ['defaultConfig', key], `defaultConfig.${key} is not applied: of the proxy defaults Sinew applies tracing.sampling and gatewayTopology.numTrustedProxies`, true);
    const topology = defaultConfig.gatewayTopology as Record<string, unknown> | undefined;
    if (topology && typeof topology === 'object') {
      for (const key of Object.keys(topology)) if (key !== 'numTrustedProxies') report('warning', 'SNW0452', ['defaultConfig', 'gatewayTopology', key], `defaultConfig.gatewayTopology.${key} is not applied: of the gateway topology Sinew applies numTrustedProxies`, true);
    }
    const tracing = defaultConfig.tracing as Record<string, unknown> | undefined;
    if (tracing && typeof tracing === 'object') {
      for (const key of Object.keys(tracing)) if (key !== 'sampling') report('warning', 'SNW0452', ['defaultConfig', 'tracing', key], `defaultConfig.tracing.${key} is not applied: spans go to the extension providers and the control plane`, true);
      const sampling = tracing.sampling;
      if (typeof sampling === 'number' && (sampling < 0 || sampling > 100)) report('error', 'SNW0105', ['defaultConfig', 'tracing', 'sampling'], 'sampling must be in range [0.0, 100.0]');
    }
  }

  const providers = Array.isArray(mesh.extensionProviders) ? (mesh.extensionProviders as Record<string, unknown>[]) : [];
  const names = new Map<string, number>();
  providers.forEach((p, i) => {
    if (!p || typeof p !== 'object') return;
    const at: FieldPath = ['extensionProviders', i];
    const name = typeof p.name === 'string' ? p.name : '';
    if (name === '') report('error', 'SNW0450', [...at, 'name'], 'an extension provider needs a name');
    else if (names.has(name.toLowerCase())) report('error', 'SNW0450', [...at, 'name'], `the name ${name} is taken by extensionProviders[${names.get(name.toLowerCase())}]`);
    else names.set(name.toLowerCase(), i);
    const kinds = [...APPLIED_PROVIDER_KINDS, ...OTHER_PROVIDER_KINDS].filter((k) => p[k] !== undefined);
    if (kinds.length !== 1) {
      report('error', 'SNW0450', at, `extension provider ${name || i} must set exactly one provider kind (opentelemetry, zipkin, envoyFileAccessLog, prometheus, ...); it sets ${kinds.length ? kinds.join(', ') : 'none'}`);
      return;
    }
    const kind = kinds[0];
    const body = p[kind] as Record<string, unknown>;
    if (kind === 'envoyExtAuthzHttp') {
      // Called by the proxies for the CUSTOM AuthorizationPolicies that name it.
      if (typeof body.service !== 'string' || body.service.trim() === '') report('error', 'SNW0450', [...at, kind, 'service'], 'service names the authorizer: a host in the registry, or `namespace/host`');
      if (typeof body.port !== 'number' || body.port < 1 || body.port > 65535) report('error', 'SNW0450', [...at, kind, 'port'], 'port is the authorizer service\'s port (1-65535)');
      return;
    }
    if (kind === 'envoyExtAuthzGrpc') {
      report('warning', 'SNW0452', [...at, kind], `gRPC external authorizers are not supported: a CUSTOM AuthorizationPolicy that names ${name} denies every request it covers. Serve the authorizer over HTTP (envoyExtAuthzHttp)`, true);
      return;
    }
    if ((OTHER_PROVIDER_KINDS as readonly string[]).includes(kind)) {
      report('warning', 'SNW0452', [...at, kind], `${kind} providers are not supported: Telemetry that names ${name} sends it nothing`, true);
      return;
    }
    if (kind === 'opentelemetry' || kind === 'zipkin') {
      const port = body.port;
      if (typeof port === 'number' && (port < 1 || port > 65535)) report('error', 'SNW0450', [...at, kind, 'port'], `port ${port} is not a port number (1-65535)`);
      if (typeof body.service === 'string' && body.service.trim() === '') report('error', 'SNW0450', [...at, kind, 'service'], 'service names the collector: a host in the registry, `namespace/host`, or a host name to connect to');
      if (kind === 'opentelemetry' && body.http === undefined) {
        report('warning', 'SNW0452', [...at, kind], `${name} exports OTLP over gRPC (no http block), which Sinew's proxies do not speak: spans go only to the control plane. Add "http: {path: /v1/traces}" for OTLP over HTTP`, true);
      }
      if (body.maxTagLength !== undefined) report('warning', 'SNW0452', [...at, kind, 'maxTagLength'], 'maxTagLength is not applied: tags are sent whole', true);
    }
    if (kind === 'envoyFileAccessLog') {
      const format = body.logFormat as Record<string, unknown> | undefined;
      if (format && typeof format === 'object') {
        if (format.text !== undefined && format.labels !== undefined) report('error', 'SNW0107', [...at, kind, 'logFormat'], 'set one of text and labels');
        if (typeof format.text === 'string') checkFormat(() => parseEnvoyFormat(format.text as string), [...at, kind, 'logFormat', 'text']);
        if (format.labels && typeof format.labels === 'object') checkFormat(() => checkEnvoyFormatLabels(format.labels as Record<string, unknown>), [...at, kind, 'logFormat', 'labels']);
      }
    }
  });
  if (typeof mesh.accessLogFormat === 'string' && mesh.accessLogFormat !== '') {
    const text = mesh.accessLogFormat;
    if (mesh.accessLogEncoding === 'JSON') {
      checkFormat(() => {
        const labels = JSON.parse(text) as unknown;
        if (!labels || typeof labels !== 'object' || Array.isArray(labels)) throw new Error('with accessLogEncoding JSON, accessLogFormat is a JSON object of labels');
        checkEnvoyFormatLabels(labels as Record<string, unknown>);
      }, ['accessLogFormat']);
    } else checkFormat(() => parseEnvoyFormat(text), ['accessLogFormat']);
  }

  if (mesh.dnsRefreshRate !== undefined) {
    // Istio's ValidateMeshConfig (ValidateDuration): at least 1ms, in whole milliseconds.
    const ms = parseDurationMs(mesh.dnsRefreshRate);
    if (ms === undefined || ms < 1 || !Number.isInteger(ms)) report('error', 'SNW0436', ['dnsRefreshRate'], `${JSON.stringify(mesh.dnsRefreshRate)} is not a duration of at least 1ms in whole milliseconds (write it like 60s or 500ms)`);
  }

  const known = new Set([...names.keys(), ...DEFAULT_EXTENSION_PROVIDERS.map((p) => p.name)]);
  const defaults = mesh.defaultProviders as Record<string, unknown> | undefined;
  for (const kind of ['tracing', 'metrics', 'accessLogging'] as const) {
    const list = defaults?.[kind];
    if (!Array.isArray(list)) continue;
    list.forEach((n, i) => {
      if (typeof n === 'string' && !known.has(n.toLowerCase())) {
        report('warning', 'SNW0451', ['defaultProviders', kind, i], `no extension provider is named ${n}${didYouMean(n, [...known])}: Istio skips it`);
      }
    });
  }
  return out;

  function checkFormat(check: () => void, path: FieldPath): void {
    try {
      check();
    } catch (err) {
      report('error', 'SNW0450', path, `not an access log format Envoy reads: ${(err as Error).message}`);
    }
  }
}

/** The settings of a checked MeshConfig; extension providers merged over Istio's built-in ones by name (ApplyMeshConfig). */
function settingsOf(mesh: Record<string, unknown>): MeshConfigSettings {
  const m = mesh as {
    rootNamespace?: string;
    outboundTrafficPolicy?: { mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
    enableTracing?: boolean;
    accessLogFile?: string;
    accessLogEncoding?: 'TEXT' | 'JSON';
    accessLogFormat?: string;
    defaultConfig?: { tracing?: { sampling?: number }; gatewayTopology?: { numTrustedProxies?: number } };
    defaultProviders?: MeshTelemetryConfig['defaultProviders'];
    extensionProviders?: ExtensionProvider[];
    pathNormalization?: { normalization?: 'DEFAULT' | NonNullable<MeshConfigSettings['pathNormalization']> };
  };
  const providers: ExtensionProvider[] = DEFAULT_EXTENSION_PROVIDERS.map((p) => ({ ...p }));
  for (const p of m.extensionProviders ?? []) {
    const i = providers.findIndex((d) => d.name === p.name);
    if (i >= 0) providers[i] = p;
    else providers.push(p);
  }
  const telemetry: MeshTelemetryConfig = { extensionProviders: providers };
  if (m.enableTracing !== undefined) telemetry.enableTracing = m.enableTracing;
  if (m.accessLogFile !== undefined) telemetry.accessLogFile = m.accessLogFile;
  if (m.accessLogEncoding !== undefined) telemetry.accessLogEncoding = m.accessLogEncoding;
  if (m.accessLogFormat !== undefined) telemetry.accessLogFormat = m.accessLogFormat;
  if (m.defaultProviders !== undefined) telemetry.defaultProviders = m.defaultProviders;
  const out: MeshConfigSettings = { telemetry };
  if (m.rootNamespace) out.rootNamespace = m.rootNamespace;
  if (m.outboundTrafficPolicy?.mode) out.outboundTrafficPolicy = m.outboundTrafficPolicy.mode;
  if (typeof m.defaultConfig?.tracing?.sampling === 'number') out.defaultTracingSampling = m.defaultConfig.tracing.sampling;
  if (typeof m.defaultConfig?.gatewayTopology?.numTrustedProxies === 'number') out.gatewayNumTrustedProxies = m.defaultConfig.gatewayTopology.numTrustedProxies;
  const normalization = m.pathNormalization?.normalization;
  if (normalization !== undefined) out.pathNormalization = normalization === 'DEFAULT' ? 'BASE' : normalization;
  const dnsRefreshRateMs = parseDurationMs(mesh.dnsRefreshRate);
  if (dnsRefreshRateMs !== undefined) out.dnsRefreshRateMs = dnsRefreshRateMs;
  return out;
}
