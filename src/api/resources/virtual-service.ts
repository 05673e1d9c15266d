/**
 * VirtualService spec (networking.istio.io), field for field from the v1 CRD schema in
 * istio/api kubernetes/customresourcedefinitions.gen.yaml. Every message is a strict object
 * so an unknown field is an error (kubectl strict field validation); enums are `z.enum` so a
 * misspelt value gets a suggestion. Durations are strings (`"1s"`, `"100ms"`); their format,
 * ranges, one-of groups and cross-field rules are Istio's webhook rules, checked in
 * src/config/semantic/virtual-service.ts.
 */
import { z } from 'zod';
import { durationSchema, percentSchema, portSelectorSchema, stringMatchSchema } from './common.js';

const labels = z.record(z.string(), z.string());
/** uint32 fields: the CRD gives them `minimum: 0`. */
const uint32 = z.number().int().min(0);
/** int32 fields: range checked semantically (Istio reports e.g. "weight -1 < 0"). */
const int32 = z.number().int();

// === destinations ===

/** Destination: a service (registry or ServiceEntry host), optional subset and port. */
export const destinationSchema = z.strictObject({
  host: z.string(),
  subset: z.string().optional(),
  port: portSelectorSchema.optional(),
});
export type Destination = z.infer<typeof destinationSchema>;

export const headerOperationsSchema = z.strictObject({
  set: labels.optional(),
  add: labels.optional(),
  remove: z.array(z.string()).optional(),
});
export type HeaderOperations = z.infer<typeof headerOperationsSchema>;

/** Istio's `Headers`: request and response manipulation. */
export const httpHeadersSchema = z.strictObject({
  request: headerOperationsSchema.optional(),
  response: headerOperationsSchema.optional(),
});
export type HTTPHeaders = z.infer<typeof httpHeadersSchema>;

export const httpRouteDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: int32.optional(),
  headers: httpHeadersSchema.optional(),
});
export type HTTPRouteDestination = z.infer<typeof httpRouteDestinationSchema>;

/** TCP and TLS route destinations (no header manipulation). */
export const routeDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: int32.optional(),
});
export type RouteDestination = z.infer<typeof routeDestinationSchema>;

// === HTTP ===

export const httpMatchRequestSchema = z.strictObject({
  name: z.string().optional(),
  uri: stringMatchSchema.optional(),
  scheme: stringMatchSchema.optional(),
  method: stringMatchSchema.optional(),
  authority: stringMatchSchema.optional(),
  headers: z.record(z.string(), stringMatchSchema).optional(),
  port: uint32.optional(),
  sourceLabels: labels.optional(),
  gateways: z.array(z.string()).optional(),
  queryParams: z.record(z.string(), stringMatchSchema).optional(),
  ignoreUriCase: z.boolean().optional(),
  withoutHeaders: z.record(z.string(), stringMatchSchema).optional(),
  sourceNamespace: z.string().optional(),
  statPrefix: z.string().optional(),
});
export type HTTPMatchRequest = z.infer<typeof httpMatchRequestSchema>;

export const httpRedirectSchema = z.strictObject({
  uri: z.string().optional(),
  authority: z.string().optional(),
  port: uint32.optional(),
  derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).optional(),
  scheme: z.string().optional(),
  redirectCode: uint32.optional(),
  prefixRewrite: z.string().optional(),
});
export type HTTPRedirect = z.infer<typeof httpRedirectSchema>;

export const httpBodySchema = z.strictObject({
  string: z.string().optional(),
  /** base64 in YAML/JSON. */
  bytes: z.string().optional(),
});

export const httpDirectResponseSchema = z.strictObject({
  status: uint32,
  body: httpBodySchema.optional(),
});
export type HTTPDirectResponse = z.infer<typeof httpDirectResponseSchema>;

export const delegateSchema = z.strictObject({
  name: z.string().optional(),
  namespace: z.string().optional(),
});
export type Delegate = z.infer<typeof delegateSchema>;

export const regexRewriteSchema = z.strictObject({
  match: z.string().optional(),
  rewrite: z.string().optional(),
});

export const httpRewriteSchema = z.strictObject({
  uri: z.string().optional(),
  authority: z.string().optional(),
  uriRegexRewrite: regexRewriteSchema.optional(),
});
export type HTTPRewrite = z.infer<typeof httpRewriteSchema>;

export const httpRetrySchema = z.strictObject({
  attempts: int32.optional(),
  perTryTimeout: durationSchema.optional(),
  retryOn: z.string().optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().optional(),
  backoff: durationSchema.optional(),
});
export type HTTPRetry = z.infer<typeof httpRetrySchema>;

export const corsPolicySchema = z.strictObject({
  /** Deprecated in favour of allowOrigins; still accepted. */
  allowOrigin: z.array(z.string()).optional(),
  allowOrigins: z.array(stringMatchSchema).optional(),
  allowMethods: z.array(z.string()).optional(),
  allowHeaders: z.array(z.string()).optional(),
  exposeHeaders: z.array(z.string()).optional(),
  maxAge: durationSchema.optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).optional(),
});
export type CorsPolicy = z.infer<typeof corsPolicySchema>;

export const faultDelaySchema = z.strictObject({
  fixedDelay: durationSchema.optional(),
  exponentialDelay: durationSchema.optional(),
  percentage: percentSchema.optional(),
  /** Deprecated integer percentage; use `percentage`. */
  percent: int32.optional(),
});

export const faultAbortSchema = z.strictObject({
  httpStatus: int32.optional(),
  grpcStatus: z.string().optional(),
  http2Error: z.string().optional(),
  percentage: percentSchema.optional(),
});

export const httpFaultInjectionSchema = z.strictObject({
  delay: faultDelaySchema.optional(),
  abort: faultAbortSchema.optional(),
});
export type HTTPFaultInjection = z.infer<typeof httpFaultInjectionSchema>;

export const httpMirrorPolicySchema = z.strictObject({
  destination: destinationSchema,
  percentage: percentSchema.optional(),
});
export type HTTPMirrorPolicy = z.infer<typeof httpMirrorPolicySchema>;

export const httpRouteSchema = z.strictObject({
  name: z.string().optional(),
  match: z.array(httpMatchRequestSchema).optional(),
  route: z.array(httpRouteDestinationSchema).optional(),
  redirect: httpRedirectSchema.optional(),
  directResponse: httpDirectResponseSchema.optional(),
  delegate: delegateSchema.optional(),
  rewrite: httpRewriteSchema.optional(),
  timeout: durationSchema.optional(),
  retries: httpRetrySchema.optional(),
  fault: httpFaultInjectionSchema.optional(),
  mirror: destinationSchema.optional(),
  mirrors: z.array(httpMirrorPolicySchema).optional(),
  /** Deprecated (both spellings appear in the CRD); use mirrorPercentage. */
  mirrorPercent: uint32.optional(),
  mirror_percent: uint32.optional(),
  mirrorPercentage: percentSchema.optional(),
  corsPolicy: corsPolicySchema.optional(),
  headers: httpHeadersSchema.optional(),
});
export type HTTPRoute = z.infer<typeof httpRouteSchema>;

// === TLS and TCP ===

export const tlsMatchAttributesSchema = z.strictObject({
  sniHosts: z.array(z.string()),
  destinationSubnets: z.array(z.string()).optional(),
  port: uint32.optional(),
  sourceLabels: labels.optional(),
  gateways: z.array(z.string()).optional(),
  sourceNamespace: z.string().optional(),
});
export type TLSMatchAttributes = z.infer<typeof tlsMatchAttributesSchema>;

export const l4MatchAttributesSchema = z.strictObject({
  destinationSubnets: z.array(z.string()).optional(),
  port: uint32.optional(),
  sourceSubnet: z.string().optional(),
  sourceLabels: labels.optional(),
  gateways: z.array(z.string()).optional(),
  sourceNamespace: z.string().optional(),
});
export type L4MatchAttributes = z.infer<typeof l4MatchAttributesSchema>;

export const tlsRouteSchema = z.strictObject({
  match: z.array(tlsMatchAttributesSchema),
  route: z.array(routeDestinationSchema).optional(),
});
export type TLSRoute = z.infer<typeof tlsRouteSchema>;

export const tcpRouteSchema = z.strictObject({
  match: z.array(l4MatchAttributesSchema).optional(),
  route: z.array(routeDestinationSchema).optional(),
});
export type TCPRoute = z.infer<typeof tcpRouteSchema>;

// === the spec ===

/** VirtualService spec (networking.istio.io). */
export const virtualServiceSpecSchema = z.strictObject({
  hosts: z.array(z.string()).optional(),
  gateways: z.array(z.string()).optional(),
  http: z.array(httpRouteSchema).optional(),
  tls: z.array(tlsRouteSchema).optional(),
  tcp: z.array(tcpRouteSchema).optional(),
  exportTo: z.array(z.string()).optional(),
});
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpecSchema>;
