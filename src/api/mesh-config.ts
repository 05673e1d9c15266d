/**
 * Istio's MeshConfig (istio/api mesh/v1alpha1/config.proto), the part Sinew reads: what istiod
 * reads from the `mesh` key of the `istio` ConfigMap, or from `meshConfig:` in an
 * IstioOperator or the Helm values. Structural schema here (the compiler and the loader share
 * the types); reading a file and Istio's cross-field rules live in src/config/mesh-config.ts.
 *
 * The schema is strict where Sinew applies a field and lets Istio's other fields through: the
 * loader reports those as read but not applied (SNW0452), and names it does not know at all as
 * unknown fields, as istiod's strict proto decoding refuses them.
 */
import { z } from 'zod';
import { durationSchema } from './resources/common.js';

/** MeshConfig.ExtensionProvider.HttpHeader: a literal value or one read from the environment. */
export const providerHeaderSchema = z.strictObject({
  name: z.string(),
  value: z.string().optional(),
  envName: z.string().optional(),
});

const httpServiceSchema = z.strictObject({
  path: z.string().optional(),
  timeout: durationSchema.optional(),
  headers: z.array(providerHeaderSchema).optional(),
});

/** OpenTelemetryTracingProvider: OTLP over HTTP when `http` is set, over gRPC otherwise. */
export const openTelemetryProviderSchema = z.strictObject({
  service: z.string(),
  port: z.number().int(),
  maxTagLength: z.number().int().optional(),
  http: httpServiceSchema.optional(),
  grpc: z.strictObject({ timeout: durationSchema.optional(), initialMetadata: z.array(providerHeaderSchema).optional() }).optional(),
  resourceDetectors: z.looseObject({}).optional(),
  serviceAttributeEnrichment: z.string().optional(),
  dynatraceSampler: z.looseObject({}).optional(),
});

/** ZipkinTracingProvider: Zipkin v2 JSON spans, POSTed to `path` (default /api/v2/spans). */
export const zipkinProviderSchema = z.strictObject({
  service: z.string(),
  port: z.number().int(),
  maxTagLength: z.number().int().optional(),
  enable64bitTraceId: z.boolean().optional(),
  path: z.string().optional(),
  traceContextOption: z.enum(['USE_B3', 'USE_B3_WITH_W3C_PROPAGATION']).optional(),
  timeout: durationSchema.optional(),
  headers: z.array(providerHeaderSchema).optional(),
});

/** EnvoyFileAccessLogProvider: a path (default /dev/stdout) and Envoy's text format or JSON `labels`. */
export const fileAccessLogProviderSchema = z.strictObject({
  path: z.string().optional(),
  logFormat: z
    .strictObject({
      text: z.string().optional(),
      labels: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  omitEmptyValues: z.boolean().optional(),
});

/** The provider kinds Sinew sends telemetry to. */
export const APPLIED_PROVIDER_KINDS = ['opentelemetry', 'zipkin', 'envoyFileAccessLog', 'prometheus'] as const;
/**
 * Istio's other provider kinds: read and checked for shape. envoyExtAuthzHttp is applied by the
 * CUSTOM AuthorizationPolicies that name it (src/compiler/authz.ts); the rest are not (SNW0452).
 */
export const OTHER_PROVIDER_KINDS = [
  'envoyExtAuthzHttp',
  'envoyExtAuthzGrpc',
  'lightstep',
  'datadog',
  'stackdriver',
  'opencensus',
  'skywalking',
  'envoyHttpAls',
  'envoyTcpAls',
  'envoyOtelAls',
  'sds',
] as const;

export const extensionProviderSchema = z.strictObject({
  name: z.string(),
  opentelemetry: openTelemetryProviderSchema.optional(),
  zipkin: zipkinProviderSchema.optional(),
  envoyFileAccessLog: fileAccessLogProviderSchema.optional(),
  prometheus: z.strictObject({}).optional(),
  ...Object.fromEntries(OTHER_PROVIDER_KINDS.map((k) => [k, z.looseObject({}).optional()])),
});
export interface ExtensionProvider extends Partial<Record<(typeof OTHER_PROVIDER_KINDS)[number], Record<string, unknown>>> {
  name: string;
  opentelemetry?: z.infer<typeof openTelemetryProviderSchema>;
  zipkin?: z.infer<typeof zipkinProviderSchema>;
  envoyFileAccessLog?: z.infer<typeof fileAccessLogProviderSchema>;
  prometheus?: Record<string, never>;
}

export const defaultProvidersSchema = z.strictObject({
  tracing: z.array(z.string()).optional(),
  metrics: z.array(z.string()).optional(),
  accessLogging: z.array(z.string()).optional(),
});
export type DefaultProviders = z.infer<typeof defaultProvidersSchema>;

/** The MeshConfig fields Sinew applies, strict; every other Istio field passes (see the loader). */
export const meshConfigSchema = z.looseObject({
  rootNamespace: z.string().optional(),
  outboundTrafficPolicy: z.strictObject({ mode: z.enum(['ALLOW_ANY', 'REGISTRY_ONLY']).optional() }).optional(),
  enableTracing: z.boolean().optional(),
  accessLogFile: z.string().optional(),
  accessLogEncoding: z.enum(['TEXT', 'JSON']).optional(),
  accessLogFormat: z.string().optional(),
  defaultConfig: z
    .looseObject({
      tracing: z.looseObject({ sampling: z.number().optional() }).optional(),
      /** Istio's ProxyConfig.gatewayTopology: how many proxies in front of a gateway add X-Forwarded-For entries. */
      gatewayTopology: z.looseObject({ numTrustedProxies: z.number().int().min(0).optional() }).optional(),
    })
    .optional(),
  defaultProviders: defaultProvidersSchema.optional(),
  extensionProviders: z.array(extensionProviderSchema).optional(),
  /** Istio's ProxyPathNormalization: how inbound and gateway listeners normalise request paths. */
  pathNormalization: z.strictObject({ normalization: z.enum(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']).optional() }).optional(),
  /** How often proxies resolve the names of DNS ServiceEntries again when the answer has no TTL (Istio's default 60s). */
  dnsRefreshRate: durationSchema.optional(),
});

/** Every top-level field of Istio's MeshConfig (config.proto), as protojson writes them. */
export const MESH_CONFIG_FIELDS: readonly string[] = Object.freeze([
  'proxyListenPort', 'proxyInboundListenPort', 'proxyHttpPort', 'connectTimeout', 'hboneIdleTimeout', 'protocolDetectionTimeout',
  'tcpKeepalive', 'ingressClass', 'ingressService', 'ingressControllerMode', 'ingressSelector', 'enableTracing', 'accessLogFile',
  'accessLogFormat', 'accessLogEncoding', 'enableEnvoyAccessLogService', 'disableEnvoyListenerLog', 'defaultConfig',
  'outboundTrafficPolicy', 'inboundTrafficPolicy', 'configSources', 'enableAutoMtls', 'trustDomain', 'trustDomainAliases',
  'caCertificates', 'defaultServiceExportTo', 'defaultVirtualServiceExportTo', 'defaultDestinationRuleExportTo', 'rootNamespace',
  'localityLbSetting', 'zoneAwareLbSetting', 'dnsRefreshRate', 'h2UpgradePolicy', 'inboundClusterStatName', 'outboundClusterStatName',
  'certificates', 'serviceSettings', 'serviceScopeConfigs', 'enablePrometheusMerge', 'verifyCertificateAtClient', 'ca',
  'extensionProviders', 'defaultProviders', 'discoverySelectors', 'pathNormalization', 'defaultHttpRetryPolicy', 'meshMTLS',
  'tlsDefaults', 'defaultTrafficPolicy', 'serviceEntryVisibility',
]);

/** The top-level fields Sinew applies; the others are read and reported as not applied. */
export const APPLIED_MESH_CONFIG_FIELDS: ReadonlySet<string> = new Set([
  'rootNamespace', 'outboundTrafficPolicy', 'enableTracing', 'accessLogFile', 'accessLogEncoding', 'accessLogFormat',
  'defaultConfig', 'defaultProviders', 'extensionProviders', 'pathNormalization', 'dnsRefreshRate',
]);

/** The telemetry part of a mesh config, as the compiler reads it. */
export interface MeshTelemetryConfig {
  /** Istio's default is true: without Telemetry tracing, the legacy settings trace. */
  enableTracing?: boolean;
  /** Legacy access log: a path turns it on ('' = off, Istio's default). */
  accessLogFile?: string;
  accessLogEncoding?: 'TEXT' | 'JSON';
  /** A text format string (TEXT) or a JSON object of labels (JSON); empty = Istio's default. */
  accessLogFormat?: string;
  defaultProviders?: DefaultProviders;
  extensionProviders?: readonly ExtensionProvider[];
}

/**
 * The extension providers of every Istio install (pkg/config/mesh DefaultMeshConfig): a
 * user's providers replace these by name and add to them, as istiod's ApplyMeshConfig merges.
 */
export const DEFAULT_EXTENSION_PROVIDERS: readonly ExtensionProvider[] = Object.freeze([
  { name: 'prometheus', prometheus: {} },
  { name: 'stackdriver', stackdriver: {} },
  { name: 'envoy', envoyFileAccessLog: { path: '/dev/stdout' } },
]);

/** What Istio's charts install: Prometheus metrics by default, no default tracing or access log. */
export const DEFAULT_PROVIDERS: DefaultProviders = Object.freeze({ metrics: ['prometheus'] });
