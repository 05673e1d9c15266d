/**
 * DestinationRule spec (networking.istio.io), field for field from the v1 CRD schema in
 * istio/api kubernetes/customresourcedefinitions.gen.yaml, deprecated fields included.
 * Strict objects (an unknown field is an error) and `z.enum` for enums; Istio's webhook
 * rules (ranges, one-of groups, durations, TLS combinations) are in
 * src/config/semantic/destination-rule.ts.
 */
import { z } from 'zod';
import { distance } from 'fastest-levenshtein';
import { durationSchema, portSelectorSchema, workloadSelectorSchema } from './common.js';

const uint32 = z.number().int().min(0);
/** int32 fields whose range Istio checks in the webhook ("must be non-negative"). */
const int32 = z.number().int();

// === unknown fields one level too high ===

/**
 * A strict message whose unknown keys are also compared with the fields of its sub-messages,
 * so `connectionPool.maxConnection` suggests `tcp.maxConnections` rather than nothing (the
 * field exists, one level down). Keys that match nothing nested get the plain "did you mean"
 * among this message's own fields, as the strict objects elsewhere do.
 */
function messageWithNestedHints<T extends z.ZodRawShape>(shape: T): z.ZodObject<T, z.core.$strip> {
  const own = Object.keys(shape);
  // Loose at run time so the refinement still sees the unknown keys (a stripping object would
  // drop them before it runs); typed as a closed message, which is what it accepts.
  const loose = z.looseObject(shape).superRefine(
    (value, ctx) => {
      if (value === null || typeof value !== 'object') return;
      for (const key of Object.keys(value)) {
        if (own.includes(key)) continue;
        const hint = nearest(key, own) ?? nearest(key, nestedFieldPaths(shape));
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `unknown field "${key}"${hint ? `; did you mean "${hint}"?` : ''}`,
          params: { code: 'SNW0104' },
        });
      }
    },
    // Run even when a field inside already failed, so every unknown key is reported at once.
    { when: () => true } as never,
  );
  return loose as unknown as z.ZodObject<T, z.core.$strip>;
}

/** `tcp.maxConnections`, `connectionPool.tcp.maxConnections`, ...: fields of sub-messages, two levels down. */
function nestedFieldPaths(shape: z.ZodRawShape, prefix = '', depth = 2): string[] {
  const out: string[] = [];
  for (const [name, schema] of Object.entries(shape)) {
    let s: unknown = schema;
    for (let i = 0; i < 5; i++) {
      const def = (s as { _zod?: { def?: { type: string; innerType?: unknown; shape?: z.ZodRawShape } } })._zod?.def;
      if (!def) break;
      if (def.type === 'optional' || def.type === 'nullable') s = def.innerType;
      else {
        if (def.type === 'object' && def.shape) {
          for (const k of Object.keys(def.shape)) out.push(`${prefix}${name}.${k}`);
          if (depth > 1) out.push(...nestedFieldPaths(def.shape, `${prefix}${name}.`, depth - 1));
        }
        break;
      }
    }
  }
  return out;
}

/** Near miss on the last path segment: a typo (a third of the length) or a plural/prefix slip. */
function nearest(input: string, candidates: string[]): string | undefined {
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of candidates) {
    const leaf = candidate.slice(candidate.lastIndexOf('.') + 1).toLowerCase();
    const score = leaf === lower ? 0.5 : distance(lower, leaf);
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  if (best === undefined) return undefined;
  const leaf = best.slice(best.lastIndexOf('.') + 1).toLowerCase();
  const limit = Math.max(1, Math.floor(Math.max(lower.length, leaf.length) / 3));
  const affix = (leaf.startsWith(lower) || lower.startsWith(leaf)) && Math.abs(leaf.length - lower.length) <= 2;
  return bestScore <= limit || affix ? best : undefined;
}

// === connection pool ===

export const tcpKeepaliveSchema = z.strictObject({
  probes: uint32.optional(),
  time: durationSchema.optional(),
  interval: durationSchema.optional(),
});

export const tcpSettingsSchema = z.strictObject({
  maxConnections: int32.optional(),
  connectTimeout: durationSchema.optional(),
  tcpKeepalive: tcpKeepaliveSchema.optional(),
  maxConnectionDuration: durationSchema.optional(),
  idleTimeout: durationSchema.optional(),
});
export type TCPSettings = z.infer<typeof tcpSettingsSchema>;

export const http2KeepaliveSchema = z.strictObject({
  interval: durationSchema.optional(),
  timeout: durationSchema.optional(),
});

export const httpSettingsSchema = z.strictObject({
  http1MaxPendingRequests: int32.optional(),
  http2MaxRequests: int32.optional(),
  maxRequestsPerConnection: int32.optional(),
  maxRetries: int32.optional(),
  idleTimeout: durationSchema.optional(),
  h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
  useClientProtocol: z.boolean().optional(),
  maxConcurrentStreams: int32.optional(),
  http2KeepAlive: http2KeepaliveSchema.optional(),
});
export type HTTPSettings = z.infer<typeof httpSettingsSchema>;

/** Also used by Sidecar (inboundConnectionPool, ingress[].connectionPool). */
export const connectionPoolSettingsSchema = messageWithNestedHints({
  tcp: tcpSettingsSchema.optional(),
  http: httpSettingsSchema.optional(),
});
export type ConnectionPoolSettings = z.infer<typeof connectionPoolSettingsSchema>;

// === load balancing ===

export const httpCookieSchema = z.strictObject({
  name: z.string(),
  path: z.string().optional(),
  ttl: durationSchema.optional(),
  attributes: z.array(z.strictObject({ name: z.string(), value: z.string().optional() })).optional(),
});

export const consistentHashLBSchema = z.strictObject({
  httpHeaderName: z.string().optional(),
  httpCookie: httpCookieSchema.optional(),
  useSourceIp: z.boolean().optional(),
  httpQueryParameterName: z.string().optional(),
  ringHash: z.strictObject({ minimumRingSize: uint32.optional() }).optional(),
  maglev: z.strictObject({ tableSize: uint32.optional() }).optional(),
  /** Deprecated: use ringHash.minimumRingSize (Istio warns). */
  minimumRingSize: uint32.optional(),
});
export type ConsistentHashLB = z.infer<typeof consistentHashLBSchema>;

const failoverSchema = z.strictObject({ from: z.string().optional(), to: z.string().optional() });

export const localityLoadBalancerSettingSchema = z.strictObject({
  distribute: z
    .array(z.strictObject({ from: z.string().optional(), to: z.record(z.string(), uint32).optional() }))
    .optional(),
  failover: z.array(failoverSchema).optional(),
  failoverPriority: z.array(z.string()).optional(),
  enabled: z.boolean().optional(),
});
export type LocalityLoadBalancerSetting = z.infer<typeof localityLoadBalancerSettingSchema>;

export const warmupSchema = z.strictObject({
  duration: durationSchema,
  minimumPercent: z.number().min(0).max(100).optional(),
  aggression: z.number().min(0).optional(),
});

export const loadBalancerSettingsSchema = z.strictObject({
  simple: z.enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']).optional(),
  consistentHash: consistentHashLBSchema.optional(),
  localityLbSetting: localityLoadBalancerSettingSchema.optional(),
  /** Deprecated: use warmup.duration. */
  warmupDurationSecs: durationSchema.optional(),
  warmup: warmupSchema.optional(),
  zoneAwareLbSetting: z
    .strictObject({
      enabled: z.boolean().optional(),
      failover: z.array(failoverSchema).optional(),
      failoverPriority: z.array(z.string()).optional(),
      minClusterSize: z.number().int().min(1).optional(),
    })
    .optional(),
});
export type LoadBalancerSettings = z.infer<typeof loadBalancerSettingsSchema>;

// === outlier detection, TLS ===

export const outlierDetectionSchema = z.strictObject({
  /** Deprecated: use consecutiveGatewayErrors or consecutive5xxErrors (Istio warns). */
  consecutiveErrors: int32.optional(),
  splitExternalLocalOriginErrors: z.boolean().optional(),
  consecutiveLocalOriginFailures: uint32.optional(),
  consecutiveGatewayErrors: uint32.optional(),
  consecutive5xxErrors: uint32.optional(),
  interval: durationSchema.optional(),
  baseEjectionTime: durationSchema.optional(),
  maxEjectionPercent: int32.optional(),
  minHealthPercent: int32.optional(),
  outlierDetectionHttpErrorCodes: z.array(z.number().int().min(100).max(599)).optional(),
});
export type OutlierDetection = z.infer<typeof outlierDetectionSchema>;

export const clientTLSSettingsSchema = z.strictObject({
  mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
  clientCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  credentialName: z.string().optional(),
  subjectAltNames: z.array(z.string()).optional(),
  sni: z.string().optional(),
  insecureSkipVerify: z.boolean().optional(),
  caCrl: z.string().optional(),
});
export type ClientTLSSettings = z.infer<typeof clientTLSSettingsSchema>;

// === traffic policy ===

export const portTrafficPolicySchema = messageWithNestedHints({
  port: portSelectorSchema.optional(),
  loadBalancer: loadBalancerSettingsSchema.optional(),
  connectionPool: connectionPoolSettingsSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  tls: clientTLSSettingsSchema.optional(),
});
export type PortTrafficPolicy = z.infer<typeof portTrafficPolicySchema>;

export const tunnelSettingsSchema = z.strictObject({
  protocol: z.string().optional(),
  targetHost: z.string(),
  targetPort: uint32,
});

export const retryBudgetSchema = z.strictObject({
  percent: z.number().min(0).max(100).optional(),
  minRetryConcurrency: uint32.optional(),
  budgetInterval: durationSchema.optional(),
});

export const trafficPolicySchema = messageWithNestedHints({
  loadBalancer: loadBalancerSettingsSchema.optional(),
  connectionPool: connectionPoolSettingsSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  tls: clientTLSSettingsSchema.optional(),
  portLevelSettings: z.array(portTrafficPolicySchema).max(4096).optional(),
  tunnel: tunnelSettingsSchema.optional(),
  proxyProtocol: z.strictObject({ version: z.enum(['V1', 'V2']).optional() }).optional(),
  retryBudget: retryBudgetSchema.optional(),
});
export type TrafficPolicy = z.infer<typeof trafficPolicySchema>;

export const subsetSchema = z.strictObject({
  name: z.string(),
  labels: z.record(z.string(), z.string()).optional(),
  trafficPolicy: trafficPolicySchema.optional(),
});
export type Subset = z.infer<typeof subsetSchema>;

/** DestinationRule spec (networking.istio.io). */
export const destinationRuleSpecSchema = z.strictObject({
  host: z.string(),
  trafficPolicy: trafficPolicySchema.optional(),
  subsets: z.array(subsetSchema).optional(),
  exportTo: z.array(z.string()).optional(),
  workloadSelector: workloadSelectorSchema.optional(),
});
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpecSchema>;
