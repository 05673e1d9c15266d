/**
 * The Kubernetes Gateway API kinds (gateway.networking.k8s.io), as TypeScript types: the fields
 * Sinew reads, named as in the Go API (sigs.k8s.io/gateway-api/apis/v1). The structural
 * schemas are the upstream CRDs' (./crd-schemas.ts); resources reach the compiler validated,
 * with the CRDs' defaults applied (./openapi.ts applyDefaults), so fields the CRD defaults are
 * present here (a parentRef's group and kind, a path match's type, a backendRef's weight, ...).
 */

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

// === references ===

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface BackendObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

export interface BackendRef extends BackendObjectReference {
  weight?: number;
}

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface LocalObjectReference {
  group: string;
  kind: string;
  name: string;
}

// === GatewayClass ===

export interface GatewayClassSpec {
  controllerName: string;
  parametersRef?: { group: string; kind: string; name: string; namespace?: string };
  description?: string;
}

// === Gateway ===

export type ProtocolType = 'HTTP' | 'HTTPS' | 'TLS' | 'TCP' | 'UDP' | string;

export interface RouteGroupKind {
  group?: string;
  kind: string;
}

export interface AllowedRoutes {
  namespaces?: {
    from?: 'All' | 'Same' | 'Selector' | 'None';
    selector?: LabelSelector;
  };
  kinds?: RouteGroupKind[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface GatewayTLSConfig {
  mode?: 'Terminate' | 'Passthrough';
  certificateRefs?: SecretObjectReference[];
  options?: Record<string, string>;
}

export interface Listener {
  name: string;
  hostname?: string;
  port: number;
  protocol: ProtocolType;
  tls?: GatewayTLSConfig;
  allowedRoutes?: AllowedRoutes;
}

export interface GatewayAddress {
  type?: string;
  value?: string;
}

/** GEP-91: how an HTTPS listener verifies client certificates. */
export interface FrontendTLSValidation {
  caCertificateRefs: { group: string; kind: string; name: string; namespace?: string }[];
  mode?: 'AllowValidOnly' | 'AllowInsecureFallback';
}

export interface GatewayTLSSpec {
  frontend?: {
    default: { validation?: FrontendTLSValidation };
    perPort?: { port: number; tls: { validation?: FrontendTLSValidation } }[];
  };
  backend?: { clientCertificateRef?: SecretObjectReference };
}

export interface GatewaySpec {
  gatewayClassName: string;
  listeners: Listener[];
  tls?: GatewayTLSSpec;
  addresses?: GatewayAddress[];
  infrastructure?: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    parametersRef?: { group: string; kind: string; name: string };
  };
}

// === HTTPRoute ===

export interface HTTPPathMatch {
  type?: 'Exact' | 'PathPrefix' | 'RegularExpression';
  value?: string;
}

export interface HTTPHeaderMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

export interface HTTPQueryParamMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

export interface HTTPRouteMatch {
  path?: HTTPPathMatch;
  headers?: HTTPHeaderMatch[];
  queryParams?: HTTPQueryParamMatch[];
  method?: string;
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPHeaderFilter {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

export interface HTTPPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRequestRedirectFilter {
  scheme?: 'http' | 'https';
  hostname?: string;
  path?: HTTPPathModifier;
  port?: number;
  statusCode?: number;
}

export interface HTTPURLRewriteFilter {
  hostname?: string;
  path?: HTTPPathModifier;
}

export interface HTTPRequestMirrorFilter {
  backendRef: BackendObjectReference;
  percent?: number;
  fraction?: { numerator: number; denominator?: number };
}

export interface HTTPCORSFilter {
  allowOrigins?: string[];
  allowCredentials?: boolean;
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: number;
}

export interface HTTPRouteFilter {
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestMirror' | 'RequestRedirect' | 'URLRewrite' | 'CORS' | 'ExtensionRef' | 'ExternalAuth';
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestMirror?: HTTPRequestMirrorFilter;
  requestRedirect?: HTTPRequestRedirectFilter;
  urlRewrite?: HTTPURLRewriteFilter;
  cors?: HTTPCORSFilter;
  extensionRef?: LocalObjectReference;
  externalAuth?: unknown;
}

export interface HTTPBackendRef extends BackendRef {
  filters?: HTTPRouteFilter[];
}

export interface HTTPRouteTimeouts {
  request?: string;
  backendRequest?: string;
}

export interface HTTPRouteRetry {
  codes?: number[];
  attempts?: number;
  backoff?: string;
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  timeouts?: HTTPRouteTimeouts;
  retry?: HTTPRouteRetry;
  sessionPersistence?: unknown;
}

export interface HTTPRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HTTPRouteRule[];
}

// === GRPCRoute ===

export interface GRPCMethodMatch {
  type?: 'Exact' | 'RegularExpression';
  service?: string;
  method?: string;
}

export interface GRPCRouteMatch {
  method?: GRPCMethodMatch;
  headers?: HTTPHeaderMatch[];
}

export interface GRPCRouteFilter {
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestMirror' | 'ExtensionRef';
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestMirror?: HTTPRequestMirrorFilter;
  extensionRef?: LocalObjectReference;
}

export interface GRPCBackendRef extends BackendRef {
  filters?: GRPCRouteFilter[];
}

export interface GRPCRouteRule {
  name?: string;
  matches?: GRPCRouteMatch[];
  filters?: GRPCRouteFilter[];
  backendRefs?: GRPCBackendRef[];
  sessionPersistence?: unknown;
}

export interface GRPCRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: GRPCRouteRule[];
}

// === TLSRoute and TCPRoute ===

export interface StreamRouteRule {
  name?: string;
  backendRefs?: BackendRef[];
}

export interface TLSRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules: StreamRouteRule[];
}

export interface TCPRouteSpec {
  parentRefs?: ParentReference[];
  rules: StreamRouteRule[];
}

// === ReferenceGrant ===

export interface ReferenceGrantSpec {
  from: { group: string; kind: string; namespace: string }[];
  to: { group: string; kind: string; name?: string }[];
}

/** The route kinds Sinew attaches, by kind name. */
export type RouteKind = 'HTTPRoute' | 'GRPCRoute' | 'TLSRoute' | 'TCPRoute';
export const ROUTE_KINDS: readonly RouteKind[] = ['HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute'];

export type RouteSpec = HTTPRouteSpec | GRPCRouteSpec | TLSRouteSpec | TCPRouteSpec;

// === BackendTLSPolicy ===

/** A policy's target: a Service, and optionally one of its ports by name (sectionName). */
export interface LocalPolicyTargetReferenceWithSectionName {
  group: string;
  kind: string;
  name: string;
  sectionName?: string;
}

/** A name the backend's certificate must carry (GEP-3155): a DNS name or a URI (a SPIFFE ID). */
export interface SubjectAltName {
  type: 'Hostname' | 'URI';
  hostname?: string;
  uri?: string;
}

export interface BackendTLSPolicyValidation {
  caCertificateRefs?: LocalObjectReference[];
  wellKnownCACertificates?: 'System' | string;
  hostname: string;
  subjectAltNames?: SubjectAltName[];
}

export interface BackendTLSPolicySpec {
  targetRefs: LocalPolicyTargetReferenceWithSectionName[];
  validation: BackendTLSPolicyValidation;
  options?: Record<string, string>;
}
