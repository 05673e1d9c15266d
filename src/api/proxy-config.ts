/**
 * The ProxyConfig contract: everything one proxy needs, as compiled by `src/compiler` and
 * pushed by `src/xds`. It is shaped like Envoy's xDS resources (listeners -> route tables ->
 * clusters -> endpoints) so that a real xDS server can be layered on later, but it is plain,
 * JSON-serialisable data: durations are milliseconds, percentages are 0..100 floats.
 *
 * The proxy knows nothing but this (DESIGN.md): no Istio resource reaches it. Everything
 * Istio-specific (lookup order, exportTo, defaults, policy merging) is resolved by the
 * compiler; fields left out here mean "off" or "unlimited", never "use an Istio default".
 */

// === node ===

export type ProxyMode = 'sidecar' | 'router';

/** Who a proxy is; sent by the proxy when it connects, echoed in its config. */
export interface ProxyNode {
  /** Unique per proxy, e.g. `sidecar~reviews-v1-0.default` or `router~istio-ingressgateway.istio-system`. */
  id: string;
  mode: ProxyMode;
  /** Workload name (Sinew Workload, or Kubernetes deployment). */
  workload: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount?: string;
  /** Canonical service and revision (labels `service.istio.io/canonical-*`, else `app`/`version`). */
  canonicalService?: string;
  canonicalRevision?: string;
}

export interface Address {
  host: string;
  port: number;
}

// === string matching ===

/**
 * Istio's StringMatch. `regex` has RE2 syntax and must match the whole value (Envoy's
 * safe_regex). At most one of exact/prefix/regex is set; `{}` never occurs here (the
 * compiler turns an empty header match into `present: true`).
 */
export type StringMatch =
  | { exact: string; ignoreCase?: boolean }
  | { prefix: string; ignoreCase?: boolean }
  | { regex: string };

// === listeners ===

export type ListenerDirection = 'inbound' | 'outbound' | 'gateway';

export interface Listener {
  /** e.g. `virtualOutbound`, `virtualInbound`, `0.0.0.0_8080`. */
  name: string;
  address: Address;
  direction: ListenerDirection;
  protocol: 'http' | 'tcp';
  http?: HttpConnectionManager;
  tcp?: TcpProxy;
  /**
   * Terminate TLS on this listener (gateway SIMPLE/MUTUAL servers, inbound mTLS): the short
   * form of one filter chain (two with `permissive`: TLS, and plaintext beside it).
   */
  tls?: DownstreamTls;
  /**
   * Several filter chains on one port, each with its own transport socket (Envoy's
   * filter_chains): a connection gets the chain whose `match` fits it best, judged by the
   * server name it asked for (SNI), then the transport protocol, then the protocols it
   * offered over ALPN, as Envoy's filter_chain_match. A connection no chain matches is closed.
   * Not together with `tls`. All chains of a listener share its `http` settings but the route
   * table, which a chain may name for itself.
   */
  filterChains?: FilterChain[];
  /**
   * Most connections open at once on this listener (Envoy's per-listener connection limit):
   * past it a new connection is closed as soon as it is accepted and counted
   * (`downstream_cx_overflow`), while the open ones keep working. Absent: no limit of the
   * listener's own (ProxyConfig.overload still bounds all listeners together).
   */
  maxConnections?: number;
  /**
   * TCP listeners only: network filters run on each new connection before it is proxied, in
   * order (Envoy's network filters before tcp_proxy). Today only `sinew.filters.network.rbac`
   * (AuthorizationPolicy on a TCP listener, src/security/policy.ts): a connection it denies is
   * closed before any byte goes upstream. An HTTP listener lists its authorization in
   * `http.filters`; `networkFilters` on one is refused. Absent: none.
   */
  networkFilters?: NamedFilterConfig[];
}

/**
 * A filter in a chain, named as its factory is registered, with the factory's own config
 * (plain JSON, checked by the factory when the proxy applies the config, so a bad one is
 * NACKed and never reaches a request).
 */
export interface NamedFilterConfig {
  name: string;
  config: Readonly<Record<string, unknown>>;
}

/** Istio's meshConfig.pathNormalization.normalization (src/security/path-normalization.ts). */
export type PathNormalizationMode = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

export interface HttpConnectionManager {
  /** The route table used for every request on this listener. */
  routeConfigName?: string;
  /**
   * Outbound capture: choose the route table named after the request's destination port
   * (`"9080"`), taken from an absolute-form URI (HTTP_PROXY clients) or the Host header
   * (default 80 for http, 443 for https), as Envoy's outbound listeners do.
   * Requests on a port with no table use `fallbackRouteConfigName`.
   */
  routeConfigByPort?: boolean;
  fallbackRouteConfigName?: string;
  /** Accept absolute-form request targets (`GET http://reviews:9080/x`), as a forward proxy. */
  acceptAbsoluteUri?: boolean;
  /**
   * The request head must arrive whole within this (Envoy's request_headers_timeout; absent:
   * 60 s, node's headersTimeout). A new connection must send its first request within it too.
   */
  requestHeadersTimeoutMs?: number;
  /**
   * Envoy's stream_idle_timeout: a request whose stream sees no bytes either way (request
   * body, upstream response) for this long is answered 408 (request still arriving) or 504
   * (waiting for the upstream), flag SI, or reset once its response began; an HTTP/1.1
   * connection answered before its request was in is closed. Applies to WebSocket tunnels.
   * Absent or 0: none (the compiler sets Envoy's default, 5 minutes, which Istio keeps).
   */
  streamIdleTimeoutMs?: number;
  /**
   * Envoy's request_timeout: the whole request, body included, must arrive within this from
   * its start, else 408 (`request_overall_timeout`); once the response begins it no longer
   * applies. Absent or 0: none (Envoy's and Istio's default: it would cut long uploads).
   */
  requestTimeoutMs?: number;
  /** 431 past this size of request headers (Envoy's max_request_headers_kb; absent: 60). */
  maxRequestHeadersKb?: number;
  /**
   * 431 past this many request header fields (Envoy's common_http_protocol_options
   * max_headers_count; absent: Envoy's default, 100). Over HTTP/2, far past it the stream is
   * reset instead.
   */
  maxRequestHeadersCount?: number;
  /** Largest body buffered for retries or mirrors; larger bodies are streamed and not retried. */
  maxBufferedBodyBytes?: number;
  /** Accept HTTP/2 with prior knowledge (h2c) beside HTTP/1.1 on a plaintext listener. */
  http2?: boolean;
  /**
   * Envoy's drain_timeout: how long an HTTP/2 session that was sent or sent a GOAWAY (the
   * listener drains, the session sat idle, the peer is leaving) may finish its streams before
   * it is closed. Absent: Envoy's default, 5 s.
   */
  drainTimeoutMs?: number;
  /** Forward client-sent x-forwarded-for instead of replacing it (gateways behind an LB). */
  xffNumTrustedHops?: number;
  /**
   * The HTTP filters every request on this listener goes through, in order (Envoy's
   * http_filters): decoded in this order, the response encoded in reverse. The last must be
   * the router (`HTTP_FILTERS.router`), and only it may be the router. Each name is a filter
   * the proxy has a factory for; a name it does not know, or a config its factory refuses,
   * gets the whole config NACKed. Absent: `DEFAULT_HTTP_FILTERS`.
   */
  filters?: HttpFilterConfig[];
  /**
   * How request paths are normalised, once, before routing and the filters: the normalised
   * path is what is routed, authorized and forwarded (src/security/path-normalization.ts
   * `normalizePath`, Envoy's order). Absent: BASE, Istio's default.
   */
  pathNormalization?: PathNormalizationMode;
}

/** One HTTP filter and its listener-level config (Envoy's HttpFilter with typed_config). */
export interface HttpFilterConfig {
  /** `sinew.filters.http.<name>`: see HTTP_FILTERS. */
  name: string;
  /** The filter's own config, JSON; absent for filters that take none. */
  config?: unknown;
}

/**
 * The HTTP filters the proxy has, by name (src/proxy/http/filters/registry.ts). The security
 * filters sit after the telemetry ones and before `cors` and `fault`, in Istio's order.
 */
export const HTTP_FILTERS = {
  /** Istio's metadata exchange (peer_metadata), proven with the mesh key. */
  peerMetadata: 'sinew.filters.http.peer_metadata',
  /** The server span of an inbound sidecar or a gateway (Envoy's HCM tracing). */
  serverSpan: 'sinew.filters.http.server_span',
  /** RequestAuthentication: a JwtAuthnConfig (src/security/jwt-config.ts). */
  jwtAuthn: 'sinew.filters.http.jwt_authn',
  /** CUSTOM AuthorizationPolicy: an ExtAuthzConfig (src/security/ext-authz-config.ts). */
  extAuthz: 'sinew.filters.http.ext_authz',
  /** ALLOW, DENY and AUDIT AuthorizationPolicy: an AuthorizationConfig (src/security/policy.ts). */
  rbac: 'sinew.filters.http.rbac',
  /** Per-route config: CorsPolicy. */
  cors: 'sinew.filters.http.cors',
  /** Per-route config: FaultInjection. */
  fault: 'sinew.filters.http.fault',
  /** The terminal filter: sends the request upstream (or answers it), always last. */
  router: 'sinew.filters.http.router',
} as const;

/** The chain a listener without `filters` gets: Istio's sidecar and gateway order. */
export const DEFAULT_HTTP_FILTERS: readonly HttpFilterConfig[] = Object.freeze([
  { name: HTTP_FILTERS.peerMetadata },
  { name: HTTP_FILTERS.serverSpan },
  { name: HTTP_FILTERS.cors },
  { name: HTTP_FILTERS.fault },
  { name: HTTP_FILTERS.router },
]);

/** Plain TCP proxying (VirtualService `tcp` routes, or a port with no HTTP). */
export interface TcpProxy {
  /** Evaluated in order; the first whose match holds wins. */
  routes: TcpRoute[];
  idleTimeoutMs?: number;
}

export interface TcpRoute {
  /** Destination port of the connection; absent = any. */
  port?: number;
  destinations: WeightedCluster[];
}

/** One of a listener's filter chains: when it applies, and its transport socket. */
export interface FilterChain {
  /** Unique within the listener, for stats and errors (Istio names them after the server or the match). */
  name: string;
  match?: FilterChainMatch;
  /** Terminate TLS with these settings; absent: plaintext. */
  tls?: DownstreamTls;
  /**
   * http listeners: the route table for requests on this chain's connections, in place of the
   * listener's `http.routeConfigName` (Istio gives each gateway HTTPS server a table of its own,
   * so a client that asked for one server's name cannot reach another server's routes by
   * sending that server's Host).
   */
  routeConfigName?: string;
  /**
   * tcp listeners: this chain's TCP routes, in place of the listener's `tcp` (Envoy: each filter
   * chain has its own tcp_proxy). With `match.serverNames` and no `tls`, connections are routed
   * by the name they asked for without being decrypted (Istio's TLS PASSTHROUGH, TLSRoute).
   */
  tcp?: TcpProxy;
}

/**
 * Envoy's filter_chain_match, for the criteria Sinew reads. Each narrows in turn, the most
 * specific winning: an exact server name beats the longest matching `*.suffix`, which beats a
 * chain without server names; then a chain naming the transport protocol beats one that does
 * not; then one naming an offered ALPN protocol beats one that does not.
 */
export interface FilterChainMatch {
  /** SNI names (lower case): `example.com` or `*.example.com`. */
  serverNames?: string[];
  /** `tls` (the connection starts with a ClientHello) or `raw_buffer` (anything else). */
  transportProtocol?: 'tls' | 'raw_buffer';
  /** ALPN ids the client offered, any of them (`istio-peer-exchange`, `istio`, `h2`...). */
  applicationProtocols?: string[];
}

/** A TLS protocol version, as OpenSSL and node name it. */
export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** TLS terminated by a listener's filter chain (the listener's `tls`, or a FilterChain's), HTTP or TCP. */
export interface DownstreamTls {
  /** MUTUAL and ISTIO_MUTUAL require a client certificate signed by `validationContext`. */
  mode: 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  /** Name of a secret in `ProxyConfig.secrets` with `certificateChainPem` and `privateKeyPem`. */
  certificate: string;
  /** CA bundle secret (`trustedCaPem`, `revocations`) for verifying clients (MUTUAL, ISTIO_MUTUAL). */
  validationContext?: string;
  /** MUTUAL, ISTIO_MUTUAL: the client certificate must carry one of these SANs (Istio's subjectAltNames). */
  subjectAltNames?: string[];
  /** Permissive mTLS: accept plaintext beside TLS on the same port. */
  permissive?: boolean;
  /**
   * MUTUAL: ask for a client certificate but let clients without one in (Istio's
   * OPTIONAL_MUTUAL); a certificate that is presented must still pass.
   */
  clientCertificateOptional?: boolean;
  /** Oldest and newest TLS versions accepted (`TLSv1.2`, ...); absent: TLS 1.2 to 1.3, Istio's gateway default. */
  minProtocolVersion?: TlsVersion;
  maxProtocolVersion?: TlsVersion;
  /**
   * OpenSSL names of the cipher suites offered for TLS 1.2 and below (Envoy's cipher_suites);
   * TLS 1.3 suites (`TLS_AES_...`) listed here replace the defaults for TLS 1.3 too. Absent:
   * node's defaults.
   */
  cipherSuites?: string[];
  /**
   * Protocols offered over ALPN, `h2` only with `http.http2`. Absent: `h2, http/1.1` when the
   * listener serves HTTP/2, else `http/1.1` (then Istio's `istio-peer-exchange, istio` for
   * ISTIO_MUTUAL). A connection that negotiates `h2` speaks HTTP/2, any other (or none) HTTP/1.1.
   */
  alpn?: string[];
}

// === routes ===

export interface RouteConfiguration {
  name: string;
  /** Selected by the request's authority; see `selectVirtualHost` rules in the proxy. */
  virtualHosts: VirtualHost[];
}

/**
 * A set of domains and their ordered routes. Domains match the request's authority
 * (lower-cased, port included when the request had one): exact names first, then suffix
 * wildcards `*.example.com` (longest first), then prefix wildcards `example.*`, then `*`.
 */
export interface VirtualHost {
  name: string;
  domains: string[];
  /** Evaluated in order; the first route whose match holds wins (DESIGN.md behaviour 1). */
  routes: Route[];
  /** Gateway `tls.httpsRedirect`: every plaintext request gets a 301 to https. */
  requireTls?: boolean;
}

export interface Route {
  /** Where it came from, for telemetry and `explain`: `<namespace>/<virtualservice>/<rule index>[.<match index>]`. */
  name: string;
  match: RouteMatch;
  action: RouteAction | RedirectAction | DirectResponseAction;
  /** Route-level header changes (VirtualService `headers`). */
  requestHeaders?: HeaderOperations;
  responseHeaders?: HeaderOperations;
  /**
   * Envoy's typed_per_filter_config: route-level config by filter name
   * (`HTTP_FILTERS.cors`: a CorsPolicy, `HTTP_FILTERS.fault`: a FaultInjection, ...), checked
   * by the filter's factory when the config is applied. A filter the listener's chain does
   * not have ignores it, as in Envoy, where route tables are shared between listeners.
   */
  perFilterConfig?: Readonly<Record<string, unknown>>;
}

/**
 * One Istio HTTPMatchRequest block. All conditions present must hold (AND). The compiler
 * expands a rule's several match blocks into several routes with the same action (OR).
 */
export interface RouteMatch {
  /** Path without the query string. */
  path?: StringMatch;
  /** Istio's ignoreUriCase: compare the path case-insensitively. */
  ignorePathCase?: boolean;
  method?: StringMatch;
  scheme?: StringMatch;
  authority?: StringMatch;
  headers?: HeaderMatcher[];
  queryParams?: QueryParamMatcher[];
  /** The port the request arrived on (listener port or destination port for outbound). */
  port?: number;
  /**
   * Conditions on the claims of the request's verified JWT (Istio's `@request.auth.claims.*`
   * header keys, Envoy's dynamic-metadata matchers on jwt_authn's payload). They hold only for
   * a token the jwt_authn filter verified, never for anything the client sent as a header.
   */
  claims?: ClaimMatcher[];
}

/**
 * One claim condition (Istio's MetadataMatcherForJWTClaims): the claim at `path` is a string
 * that matches, or a list with an element that matches. Other values match nothing.
 */
export interface ClaimMatcher {
  /** The path into the token's payload: `["group", "id"]` for `@request.auth.claims.group.id`. */
  path: string[];
  /** Absent means "the claim is present". */
  match?: StringMatch;
  /** withoutHeaders: the condition holds when the claim does not match, or there is no verified token. */
  invert?: boolean;
}

export interface HeaderMatcher {
  /** Lower-case header name. Pseudo-headers `:method`, `:path`, `:authority`, `:scheme` are allowed. */
  name: string;
  /** Absent means "header present" (Istio's empty match). */
  match?: StringMatch;
  /** withoutHeaders: the condition holds when the header does NOT match (or is absent). */
  invert?: boolean;
  /**
   * Envoy's treat_missing_header_as_empty: an absent header is matched as the empty string
   * (so an inverted `regex: ".*"` does not hold for it). Without it an absent header never
   * satisfies `match`. Set by the compiler on withoutHeaders string matches.
   */
  treatMissingAsEmpty?: boolean;
}

export interface QueryParamMatcher {
  name: string;
  /** Absent means "parameter present". */
  match?: StringMatch;
}

export interface WeightedCluster {
  cluster: string;
  /** Relative weight; 0 gets nothing (DESIGN.md behaviour 2). */
  weight: number;
  requestHeaders?: HeaderOperations;
  responseHeaders?: HeaderOperations;
}

export interface RouteAction {
  kind: 'route';
  destinations: WeightedCluster[];
  /** Whole-request timeout; absent or 0 = none (Istio's default). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  rewrite?: RewriteAction;
  mirrors?: MirrorPolicy[];
  /** How LEAST_REQUEST/ring-hash clusters hash this request (from the DestinationRule). */
  hashPolicy?: HashPolicy;
  /**
   * Sticky canary (Sinew, beyond Istio; istio/istio#9764): choose the weighted destination
   * with the request hash instead of at random, in proportion to the weights, so a user stays
   * on one side of the split. Needs `hashPolicy`.
   */
  stickyWeightedHash?: boolean;
}

export interface RewriteAction {
  /** Replaces the part of the path the route's prefix (or exact) match matched. */
  pathPrefix?: string;
  /** RE2 regex rewrite of the path (Istio uriRegexRewrite). */
  pathRegex?: { pattern: string; substitution: string };
  /** Host/authority to send upstream. */
  authority?: string;
}

export interface RedirectAction {
  kind: 'redirect';
  scheme?: string;
  host?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  /** Replace the whole path. */
  path?: string;
  /** Replace the matched prefix of the path. */
  prefixRewrite?: string;
  /** 301 unless set. */
  responseCode: number;
}

export interface DirectResponseAction {
  kind: 'direct';
  status: number;
  body?: string;
}

export interface HeaderOperations {
  set?: Readonly<Record<string, string>>;
  add?: Readonly<Record<string, string>>;
  remove?: readonly string[];
}

export interface RetryPolicy {
  /** Retries after the first try (Istio's `attempts`). */
  attempts: number;
  perTryTimeoutMs?: number;
  /**
   * Envoy retry_on conditions: 5xx, gateway-error, reset, connect-failure, refused-stream,
   * retriable-4xx, retriable-status-codes, cancelled, deadline-exceeded, internal,
   * resource-exhausted, unavailable.
   */
  retryOn: string[];
  retriableStatusCodes?: number[];
  /** Base interval of the jittered exponential backoff (Envoy: 25 ms). */
  backoffBaseMs: number;
  backoffMaxMs?: number;
  /** Avoid hosts already tried (Istio sets this). */
  avoidPreviousHosts: boolean;
}

export interface MirrorPolicy {
  cluster: string;
  /** 0..100. */
  percentage: number;
}

export interface FaultInjection {
  delay?: { fixedDelayMs: number; percentage: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percentage: number };
}

export interface CorsPolicy {
  allowOrigins: StringMatch[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
  allowCredentials?: boolean;
  /** Preflights whose origin does not match: forward them upstream (Istio's default) or ignore. */
  unmatchedPreflights?: 'FORWARD' | 'IGNORE';
}

export interface HashPolicy {
  header?: string;
  cookie?: { name: string; path?: string; ttlMs?: number };
  sourceIp?: boolean;
  queryParameter?: string;
}

// === clusters ===

/**
 * `eds`: endpoints come from `ProxyConfig.endpoints`; `originalDst`: forward to the address
 * the client asked for (PassthroughCluster, PASSTHROUGH load balancing); `dns`: resolve the
 * endpoint hostnames (ServiceEntry DNS resolution); `blackhole`: every request gets 502.
 */
export type ClusterKind = 'eds' | 'originalDst' | 'dns' | 'blackhole';

export interface Cluster {
  /** `outbound|<port>|<subset>|<fqdn>`, `inbound|<port>||`, `PassthroughCluster`, `BlackHoleCluster`. */
  name: string;
  kind: ClusterKind;
  /** The service this cluster serves, for telemetry (`destination_service`). */
  service?: { host: string; namespace?: string; name?: string; port?: number };
  subset?: string;
  /** How to talk upstream: HTTP/1.1, HTTP/2 (h2c or ALPN), or raw TCP bytes. */
  protocol: 'http1' | 'http2' | 'tcp';
  connectTimeoutMs: number;
  lb: LoadBalancer;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
  tls?: UpstreamTls;
  /**
   * `dns` clusters: how the proxy resolves the endpoints' hostnames (src/proxy/upstream/dns.ts).
   * `strict` (ServiceEntry DNS, Envoy's STRICT_DNS): every address of every name is a host;
   * `logical` (DNS_ROUND_ROBIN, Envoy's LOGICAL_DNS): new connections go to the first address
   * of the first name. Resolved again every `refreshMs` (absent: 60 s, Istio's dnsRefreshRate).
   */
  dns?: { mode: 'strict' | 'logical'; refreshMs?: number };
  /**
   * Istio's automatic mutual TLS (Envoy's transport_socket_matches on the endpoint's
   * `tlsMode`): endpoints whose `tlsMode` is `istio` (a sidecar is in front of them) are
   * reached with this transport, the others with `tls` (absent: plaintext). Only without
   * a DestinationRule `tls`, which decides for every endpoint.
   */
  autoMtls?: UpstreamTls;
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' | 'RING_HASH' | 'MAGLEV';

export interface LoadBalancer {
  policy: LbPolicy;
  /** LEAST_REQUEST: power of `choiceCount` choices (2). */
  choiceCount?: number;
  /** RING_HASH. */
  minimumRingSize?: number;
  /** MAGLEV: a prime. */
  tableSize?: number;
  locality?: LocalityLb;
  /** Ramp new endpoints up over this long (Istio warmupDurationSecs). */
  warmupMs?: number;
}

export interface LocalityLb {
  /** The proxy's own locality, `region/zone/subzone`. */
  self?: string;
  distribute?: { from: string; to: Record<string, number> }[];
  failover?: { from: string; to: string }[];
  failoverPriority?: string[];
  enabled: boolean;
}

export interface ConnectionPool {
  maxConnections?: number;
  tcpKeepalive?: { probes?: number; timeMs?: number; intervalMs?: number };
  /** Close idle upstream connections after this long. */
  idleTimeoutMs?: number;
  maxConnectionDurationMs?: number;
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  /** UPGRADE: speak HTTP/2 upstream even when the downstream spoke HTTP/1.1. */
  h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  consecutiveLocalOriginFailures?: number;
  splitExternalLocalOriginErrors?: boolean;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent?: number;
}

/**
 * The transport socket of a cluster's connections (src/proxy/transport). ISTIO_MUTUAL offers
 * ALPN `istio-peer-exchange`, Istio's id of the protocol (`istio-http/1.1`, `istio-h2`),
 * `istio` and the HTTP protocol; the upstream's certificate must
 * chain to `validationContext`'s roots, not be revoked there, and carry one of
 * `subjectAltNames` when given (SIMPLE without them: the SNI host name).
 */
export interface UpstreamTls {
  mode: 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  sni?: string;
  /** Secret names in `ProxyConfig.secrets`. */
  certificate?: string;
  validationContext?: string;
  subjectAltNames?: string[];
  insecureSkipVerify?: boolean;
  alpn?: string[];
}

// === endpoints ===

export type EndpointHealth = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN';

export interface Endpoint {
  address: Address;
  labels: Readonly<Record<string, string>>;
  /** Relative LB weight (1 unless set). */
  weight?: number;
  health: EndpointHealth;
  /** `region/zone/subzone`. */
  locality?: string;
  /** SPIFFE identity of the workload behind it, when in the mesh. */
  identity?: string;
  /**
   * `istio`: a sidecar that accepts Istio mutual TLS is in front of it (Istio's endpoint label
   * `security.istio.io/tlsMode`), so a cluster's `autoMtls` applies.
   */
  tlsMode?: 'istio';
  workload?: { name: string; namespace: string };
  /** Active health check the proxy runs itself (Workloads with a readinessProbe). */
  healthCheck?: { httpPath?: string; port?: number; intervalMs: number; timeoutMs: number; unhealthyThreshold: number; healthyThreshold: number };
}

export interface ClusterLoadAssignment {
  clusterName: string;
  endpoints: Endpoint[];
}

// === secrets and telemetry ===

/** Istio's SDS names for a proxy's own certificate and for the mesh's trust bundle. */
export const WORKLOAD_CERTIFICATE_SECRET = 'default';
export const ROOT_CA_SECRET = 'ROOTCA';

export interface Secret {
  name: string;
  /** The certificate the proxy presents, leaf first, then the chain up to (or short of) the root. */
  certificateChainPem?: string;
  privateKeyPem?: string;
  /**
   * The roots this proxy trusts, as concatenated PEM certificates. During a root rotation the
   * mesh's bundle holds both the old and the new root, so that certificates chaining to either
   * are accepted until every certificate of the old root has expired.
   */
  trustedCaPem?: string;
  /**
   * `mesh-ca`: the proxy's own workload certificate (Istio's SDS secret `default`). The proxy
   * makes the key pair itself and obtains the certificate from the mesh CA with a CSR, so the
   * key never leaves the proxy: `certificateChainPem` and `privateKeyPem` are absent here.
   */
  provider?: 'mesh-ca';
  /**
   * With `trustedCaPem`: certificates of the mesh CA that were revoked (`sinew ca revoke`)
   * before they expired. A peer certificate that chains to the trusted roots is still
   * refused when the list names it (Envoy's validation context `crl`, in a smaller shape).
   */
  revocations?: RevocationList;
  /** Opaque key material, base64 (Envoy's generic_secret): the mesh key of `peerMetadataKey`. */
  genericSecret?: string;
  /**
   * Material the proxy reads from its own file system instead of carrying it here (Istio's
   * certificates named by path: a Gateway server's `serverCertificate` / `privateKey` /
   * `caCertificates`, a DestinationRule's `clientCertificate` / `privateKey` /
   * `caCertificates`; Istio's agent serves them over SDS as `file-cert:<chain>~<key>` and
   * `file-root:<ca>`, the names used here too). The proxy reads the files when the config
   * arrives and again whenever they change, so a key never travels in a push; until they can
   * be read, what names the secret is not served (a listener's chain is left out, a cluster
   * warms).
   */
  files?: SecretFiles;
}

/** Paths on the proxy's machine; `certificateChain` and `privateKey` together, or `trustedCa`. */
export interface SecretFiles {
  certificateChain?: string;
  privateKey?: string;
  trustedCa?: string;
}

/** Istio's SDS name of a certificate and key read from files (its `file-cert:` FileCredentialNameSpecifier). */
export function fileCertificateSecretName(certificateChain: string, privateKey: string): string {
  return `file-cert:${certificateChain}~${privateKey}`;
}

/** Istio's SDS name of roots read from a file (its `file-root:` FileRootCredentialNameSpecifier). */
export function fileRootSecretName(trustedCa: string): string {
  return `file-root:${trustedCa}`;
}

/**
 * What the mesh CA has revoked. A certificate is refused when its serial is listed, or when
 * its URI SAN names a listed identity and it was issued before that identity was revoked.
 * Entries leave the list once every certificate they cover has expired (an expired
 * certificate is refused anyway), so the list stays as short as the certificates' lifetime.
 */
export interface RevocationList {
  /** Grows with every change; a proxy keeps the list with the highest version it has seen. */
  version: number;
  serials: RevokedSerial[];
  identities: RevokedIdentity[];
}

export interface RevokedSerial {
  /** Lower-case hex without colons or leading zeros (openssl's `0A:1B` is `a1b`). */
  serial: string;
  /** The certificate's notAfter (ms since the epoch): after it the entry is dropped. */
  expiresAt: number;
}

export interface RevokedIdentity {
  /** A SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/reviews`. */
  identity: string;
  /** Certificates for the identity whose notBefore is earlier than this (ms since the epoch) are refused. */
  issuedBefore: number;
  /** When the last certificate it covers expires (ms since the epoch): after it the entry is dropped. */
  expiresAt: number;
}

export interface TelemetrySettings {
  /** 0..100; absent = no sampling decision of our own (keep an incoming one). */
  tracingSamplingPercentage?: number;
  tracingCollectors?: TracingCollector[];
  /** One access log (the legacy form; `accessLogs` holds those of the Telemetry API's providers). */
  accessLog?: AccessLogSettings;
  /** Every access log the proxy writes: one per envoyFileAccessLog provider in force. */
  accessLogs?: AccessLogSettings[];
  metrics?: { enabled: boolean };
}

/** Where spans go: an OTLP/HTTP (JSON) or Zipkin v2 endpoint. */
export interface TracingCollector {
  kind: 'otlp-http' | 'zipkin';
  url: string;
  /** Extra request headers (the provider's `headers`, e.g. an API key). */
  headers?: Record<string, string>;
  /** Per export, from the provider's `timeout`. */
  timeoutMs?: number;
  /** The extension provider it came from, for status and errors. */
  provider?: string;
  /**
   * Marks the control plane's own collector: the proxy sends it its push credential as a
   * bearer token, and sends it to no other collector.
   */
  presentCredential?: boolean;
}

/** One access log: Envoy's file access log as Istio configures it. */
export interface AccessLogSettings {
  enabled: boolean;
  /** `text`: Istio's default text format unless `text` gives one; `json`: Istio's default labels unless `labels` gives them. */
  format: 'text' | 'json';
  /** A file, or absent / `/dev/stdout` for the proxy's standard output. */
  path?: string;
  /** An Envoy format string (command operators), newline-terminated. */
  text?: string;
  /** A JSON format dictionary: key -> format string (or a nested dictionary). */
  labels?: Record<string, unknown>;
  /** Leave out fields without a value (Envoy's omit_empty_values). */
  omitEmptyValues?: boolean;
  /** Only requests in these directions (Telemetry `match.mode`: SERVER is inbound, CLIENT outbound and gateway); absent = all. */
  directions?: ('inbound' | 'outbound' | 'gateway')[];
}

// === overload ===

/** Envoy's overload manager: bounds on the proxy's resources as a whole. */
export interface OverloadSettings {
  /**
   * Most downstream connections open at once over all listeners (Envoy's
   * global_downstream_max_connections): past it a new connection is closed as soon as it is
   * accepted and counted (`downstream_global_cx_overflow`), so the open ones keep working.
   * Absent: half of the proxy's file-descriptor limit, less a small reserve, since every
   * downstream connection may hold an upstream one; no limit where the proxy cannot read its
   * descriptor limit.
   */
  maxDownstreamConnections?: number;
}

// === the whole ===

export interface ProxyConfig {
  /** Opaque; changes whenever any part changes. */
  version: string;
  node: ProxyNode;
  listeners: Listener[];
  routeConfigs: RouteConfiguration[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
  secrets?: Secret[];
  telemetry?: TelemetrySettings;
  overload?: OverloadSettings;
  /**
   * The secret (`genericSecret`, at least 16 bytes) holding the mesh key: until mutual TLS
   * carries workload identity, the proof that Istio's metadata-exchange headers
   * (`x-envoy-peer-metadata`, `-id`) come from a mesh proxy. A proxy signs the ones it sends
   * with it (HMAC-SHA256, `x-sinew-peer-signature`) and trusts only those it can verify;
   * others are stripped and ignored, the request served as from an unknown peer. Absent: no
   * peer's metadata is trusted.
   */
  peerMetadataKey?: string;
}

/** Cluster names Istio uses for unknown destinations. */
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';

/** Builds `outbound|<port>|<subset>|<fqdn>`. */
export function outboundClusterName(port: number, subset: string | undefined, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

/** Builds `inbound|<port>||`. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}
