import type { CodeTable } from './types.js';

/**
 * Everything Sinew reads and accepts but does not enforce yet: one entry per kind or field,
 * each with a permanent code, reported as a warning by `sinew validate`, `apply` and `analyze`
 * wherever a resource uses it (src/config/not-enforced.ts finds the uses). Security config in
 * particular must never be accepted and silently ignored.
 *
 * When enforcement lands for an entry, retire it: set `retired` to what enforces it now and
 * delete its finder. The code stays here, documented as retired, and is never reused
 * (STYLE.md 11). test/config/not-enforced.test.ts checks that every entry marked `ignored`
 * really is (the compiled config is the same without it), so enforcing something without
 * retiring its entry fails that test.
 *
 * Codes are SNW05xx, except SNW1011 and SNW1012 (both retired now), which `sinew analyze`
 * reported before this table existed and keep their codes.
 */
export interface NotEnforcedEntry {
  code: string;
  /** A short CamelCase name, like the other codes. */
  name: string;
  kind: string;
  /** The field, as a path under the resource with the values that matter; absent for the whole kind. */
  field?: string;
  /**
   * `ignored`: proxies get the same config as without it. `degraded`: what it asks for is
   * left out or fails (a port not served, a cluster waiting for a certificate, no endpoints).
   */
  effect: 'ignored' | 'degraded';
  /** What is not done, what happens instead, and what to do meanwhile. */
  description: string;
  /** Once enforced: what enforces it (the entry is then documented as retired and never reported). */
  retired?: string;
}

export const notEnforcedEntries: readonly NotEnforcedEntry[] = Object.freeze([
  // === security: authorization, peer and request authentication ===
  {
    code: 'SNW0500',
    name: 'AuthorizationPolicyNotEnforced',
    kind: 'AuthorizationPolicy',
    field: 'spec.action: ALLOW | DENY (the default is ALLOW)',
    effect: 'ignored',
    description:
      'Authorization is not enforced yet: every request passes whatever an ALLOW or DENY policy says (an ALLOW policy with no rules, `spec: {}`, does not deny everything, a DENY policy denies nothing). Do not rely on it to block traffic until authorization lands.',
    retired:
      'the proxies enforce ALLOW and DENY policies: the compiler puts them in the `sinew.filters.http.rbac` filter of every inbound and gateway HTTP listener\'s chain (403 `RBAC: access denied`) and the `sinew.filters.network.rbac` filter of TCP listeners (the connection is closed)',
  },
  {
    code: 'SNW0501',
    name: 'CustomAuthorizationNotCalled',
    kind: 'AuthorizationPolicy',
    field: 'spec.action: CUSTOM',
    effect: 'ignored',
    description: 'A CUSTOM policy delegates to an external authorization provider, which is never called yet: every request it covers passes.',
    retired:
      'CUSTOM policies call their envoyExtAuthzHttp provider from the `sinew.filters.http.ext_authz` filter; a provider that is missing, of another kind, or not in the registry makes the policy deny what it covers',
  },
  {
    code: 'SNW0502',
    name: 'AuditPolicyNotRecorded',
    kind: 'AuthorizationPolicy',
    field: 'spec.action: AUDIT',
    effect: 'ignored',
    description: 'An AUDIT policy marks requests for an audit log; nothing is recorded yet.',
    retired:
      'AUDIT policies mark the requests they match in the access log: %DYNAMIC_METADATA(envoy.filters.http.rbac:access_log_hint)% is `true` for them',
  },
  {
    code: 'SNW0505',
    name: 'StrictMtlsNotEnforced',
    kind: 'PeerAuthentication',
    field: 'spec.mtls.mode: STRICT, spec.portLevelMtls.<port>.mode: STRICT',
    effect: 'ignored',
    description:
      'STRICT mutual TLS is not enforced yet: the mesh has no workload certificates, sidecars talk plaintext and accept plaintext from anyone. (PERMISSIVE and DISABLE already behave as written.)',
    retired:
      "PeerAuthentication is enforced (src/semantics/peer-authentication.ts, compiler/inbound.ts): a STRICT sidecar port terminates Istio mutual TLS only and closes plaintext connections; TCP ports, which sidecars do not terminate TLS on yet, admit no connection under STRICT",
  },
  {
    code: 'SNW0510',
    name: 'RequestAuthenticationNotEnforced',
    kind: 'RequestAuthentication',
    field: 'spec.jwtRules',
    effect: 'ignored',
    description:
      'JWTs are not validated yet: a request with an invalid or expired token passes (Istio answers 401), no identity is extracted for request.auth conditions, and outputClaimToHeaders / forwardOriginalToken do nothing.',
    retired:
      'RequestAuthentication is enforced by the `sinew.filters.http.jwt_authn` filter: an invalid token gets 401, a valid one gives the request its request.auth identity and claims',
  },
  {
    code: 'SNW0515',
    name: 'SubjectAltNamesNotVerified',
    kind: 'ServiceEntry',
    field: 'spec.subjectAltNames',
    effect: 'ignored',
    description: 'The names a ServiceEntry\'s workloads must present are verified under mutual TLS, which the mesh does not have yet: nothing is verified.',
  },

  // === TLS ===
  {
    code: 'SNW0520',
    name: 'TlsFilesNotRead',
    kind: 'DestinationRule',
    field: 'trafficPolicy.tls.clientCertificate | privateKey | caCertificates | caCrl (at any level)',
    effect: 'ignored',
    description:
      'Certificates named by file path are not read: the proxy presents no client certificate, verifies the server against the system\'s CAs and checks no CRL. Put them in a Secret and name it with credentialName.',
    retired:
      'clientCertificate, privateKey and caCertificates are read by the proxy that originates TLS, from its own machine (src/proxy/secrets/file-secrets.ts; Istio\'s `file-cert:` and `file-root:` SDS names carry the paths, never the key), and read again when they change; a file that cannot be read leaves the cluster warming (503 UH). caCrl is reported by SNW0580',
  },
  {
    code: 'SNW1011',
    name: 'GatewayTlsNotServed',
    kind: 'Gateway',
    field: 'spec.servers[].tls with protocol HTTPS, mode SIMPLE | MUTUAL | OPTIONAL_MUTUAL and no credentialName',
    effect: 'degraded',
    description:
      'A Gateway server terminates TLS with a certificate named by file (serverCertificate, privateKey, caCertificates), which the gateway does not read, so that server is not served (like a filter chain Envoy keeps warming while its secret is missing); the other servers are. Put the certificate in a Secret (`sinew create secret tls`) and name it with credentialName.',
    retired:
      'the gateway proxy reads serverCertificate, privateKey and caCertificates from its own machine (src/proxy/secrets/file-secrets.ts), serves SIMPLE, MUTUAL and OPTIONAL_MUTUAL with them and takes rewritten files for new connections; a server whose files cannot be read is not served and the gateway logs the path and why (`sinew apply` warns with SNW1020 when the control plane runs on the machine that holds the paths and cannot read them). caCrl is reported by SNW0581',
  },
  {
    code: 'SNW0580',
    name: 'UpstreamCrlNotChecked',
    kind: 'DestinationRule',
    field: 'trafficPolicy.tls.caCrl (at any level)',
    effect: 'ignored',
    description:
      'A certificate revocation list named by file is not read: a server certificate it revokes is accepted (the chain is still verified against caCertificates or the credential\'s CA).',
  },
  {
    code: 'SNW0581',
    name: 'GatewayCrlNotChecked',
    kind: 'Gateway',
    field: 'spec.servers[].tls.caCrl',
    effect: 'ignored',
    description:
      'A certificate revocation list named by file is not read: a client certificate it revokes is accepted by a MUTUAL or OPTIONAL_MUTUAL server (the chain is still verified against caCertificates). Take the revoked clients\' CA out of caCertificates, or shorten their certificates\' lifetime, meanwhile.',
  },
  {
    code: 'SNW1012',
    name: 'UpstreamTlsNotAvailable',
    kind: 'DestinationRule',
    field: 'tls.credentialName (at any level)',
    effect: 'degraded',
    description:
      'A DestinationRule asks for TLS with a credentialName, but the mesh has no credentials yet: the clusters it shapes stay warming and their requests get 503 UH, while everything else is served. Remove the tls settings (or use DISABLE) until credentials are supported. (ISTIO_MUTUAL uses the workload certificates every sidecar holds, and is no longer reported.)',
    retired:
      'SIMPLE and MUTUAL originate TLS with the Secret credentialName names in the proxy\'s namespace (its ca.crt or the `<name>-cacert` Secret verifies the server; MUTUAL presents its tls.crt), pushed to the proxies for which such a rule is in force (src/compiler/client-credentials.ts); a cluster whose Secret is missing waits for it (503 UH)',
  },

  // === gateways ===
  {
    code: 'SNW0525',
    name: 'GatewayServerAddressIgnored',
    kind: 'Gateway',
    field: 'spec.servers[].bind, spec.servers[].defaultEndpoint',
    effect: 'ignored',
    description: 'The gateway listens where `sinew up` puts it (--gateway-port, --host), whatever a server\'s bind says, and forwards to its routes\' destinations, not to a defaultEndpoint.',
  },
  {
    code: 'SNW0526',
    name: 'AutoPassthroughNotRouted',
    kind: 'Gateway',
    field: 'spec.servers[].tls.mode: AUTO_PASSTHROUGH',
    effect: 'degraded',
    description:
      'AUTO_PASSTHROUGH routes each connection by its SNI to the service it names (Istio\'s multi-network gateways); Sinew serves the port like PASSTHROUGH, with the tcp routes of the VirtualServices bound to it, which such gateways do not have.',

    retired:
      'an AUTO_PASSTHROUGH server routes each connection by the SNI `outbound_.<port>_.<subset>_.<host>` a sidecar\'s mutual TLS carries (with Istio\'s mTLS ALPN ids) to that service port and subset, for every mesh service its hosts cover, without decrypting it (src/compiler/gateway.ts, as Istio\'s builtAutoPassthroughFilterChains)',
  },
  {
    code: 'SNW0528',
    name: 'GatewayPortMixesHttpAndTcpServers',
    kind: 'Gateway',
    field: 'spec.servers[] sharing a port: HTTP inside (HTTP, or HTTPS terminated) beside TCP (PASSTHROUGH, AUTO_PASSTHROUGH, protocol TLS or TCP)',
    effect: 'degraded',
    description:
      'Istio serves HTTPS servers that terminate TLS and servers that pass TLS through on one port, each chosen by SNI. Sinew serves a gateway port as the kind of its first server, HTTP or TCP, so the servers of the other kind on that port are not served. Give them a port of their own meanwhile.',
  },
  {
    code: 'SNW0527',
    name: 'GatewayTlsRoutesNotServed',
    kind: 'VirtualService',
    field: 'spec.tls (bound to a gateway)',
    effect: 'ignored',
    description:
      'TLS routes (by SNI) are served for sidecars only; at a gateway a PASSTHROUGH port uses the tcp routes of the VirtualServices bound to it. Route with a tcp rule on that port until SNI routing at gateways lands.',

    retired:
      'a PASSTHROUGH server routes each connection by its SNI through the `tls` rules of the VirtualServices bound to it: a filter chain per match, its sniHosts as server names, to the rule\'s weighted destinations, without decrypting it; a name no rule matches is closed (src/compiler/gateway.ts, as Istio\'s buildGatewayNetworkFiltersFromTLSRoutes). As in Istio, a PASSTHROUGH server uses tls rules only, not tcp rules',
  },

  // === VirtualService ===
  {
    code: 'SNW0530',
    name: 'RetryRemoteLocalitiesIgnored',
    kind: 'VirtualService',
    field: 'spec.http[].retries.retryRemoteLocalities',
    effect: 'ignored',
    description: 'Retries pick any endpoint the load balancer offers; they are not steered to other localities.',
  },
  {
    code: 'SNW0531',
    name: 'RetryPreviousHostsAlwaysAvoided',
    kind: 'VirtualService',
    field: 'spec.http[].retries.retryIgnorePreviousHosts: false',
    effect: 'ignored',
    description: 'Retries always avoid the hosts already tried (Istio\'s default); asking them not to is ignored.',
  },
  {
    code: 'SNW0532',
    name: 'RetryBackoffIgnored',
    kind: 'VirtualService',
    field: 'spec.http[].retries.backoff',
    effect: 'ignored',
    description: 'Retries back off from Envoy\'s default 25 ms base interval; a configured backoff is ignored.',
    retired: 'the route\'s retry policy backs off from the configured interval (Envoy\'s retry_back_off base_interval), as the Gateway API\'s retry.backoff needs it too',
  },
  {
    code: 'SNW0533',
    name: 'StatPrefixIgnored',
    kind: 'VirtualService',
    field: 'spec.http[].match[].statPrefix',
    effect: 'ignored',
    description: 'Per-route statistics are not kept, so a stat prefix names nothing.',
  },
  {
    code: 'SNW0534',
    name: 'SubnetMatchIgnored',
    kind: 'VirtualService',
    field: 'spec.tcp[].match[].destinationSubnets | sourceSubnet, spec.tls[].match[].destinationSubnets',
    effect: 'ignored',
    description: 'A tcp or tls rule is not narrowed by destination or source subnet: it applies to every address its other match conditions allow.',
  },

  // === DestinationRule ===
  {
    code: 'SNW0540',
    name: 'UseClientProtocolIgnored',
    kind: 'DestinationRule',
    field: 'connectionPool.http.useClientProtocol (at any level)',
    effect: 'ignored',
    description: 'Requests go upstream in the protocol of the service port (HTTP/1.1, or HTTP/2 for http2 and grpc ports, or with h2UpgradePolicy UPGRADE), not in the client\'s.',
  },
  {
    code: 'SNW0541',
    name: 'MaxConcurrentStreamsIgnored',
    kind: 'DestinationRule',
    field: 'connectionPool.http.maxConcurrentStreams (at any level)',
    effect: 'ignored',
    description: 'The number of concurrent streams per upstream HTTP/2 connection is not limited by this setting.',
  },
  {
    code: 'SNW0542',
    name: 'Http2KeepaliveIgnored',
    kind: 'DestinationRule',
    field: 'connectionPool.http.http2KeepAlive (at any level)',
    effect: 'ignored',
    description: 'No HTTP/2 PING keepalives are sent on upstream connections.',
  },
  {
    code: 'SNW0543',
    name: 'WarmupShapeIgnored',
    kind: 'DestinationRule',
    field: 'loadBalancer.warmup.minimumPercent (other than 10) | aggression (other than 1) (at any level)',
    effect: 'ignored',
    description: 'New endpoints warm up linearly from 10% of their weight (Envoy\'s slow-start defaults); only the warmup duration is applied.',
  },
  {
    code: 'SNW0544',
    name: 'ZoneAwareLbIgnored',
    kind: 'DestinationRule',
    field: 'loadBalancer.zoneAwareLbSetting (at any level)',
    effect: 'ignored',
    description: 'Zone-aware routing is not done; localityLbSetting is.',
  },
  {
    code: 'SNW0545',
    name: 'CookieAttributesIgnored',
    kind: 'DestinationRule',
    field: 'loadBalancer.consistentHash.httpCookie.attributes (at any level)',
    effect: 'ignored',
    description: 'A generated hash cookie carries its path and TTL, not these extra attributes.',
  },
  {
    code: 'SNW0546',
    name: 'OutlierHttpErrorCodesIgnored',
    kind: 'DestinationRule',
    field: 'outlierDetection.outlierDetectionHttpErrorCodes (at any level)',
    effect: 'ignored',
    description: 'Outlier detection counts 5xx and gateway errors as configured; a custom list of status codes is ignored.',
  },
  {
    code: 'SNW0547',
    name: 'TunnelIgnored',
    kind: 'DestinationRule',
    field: 'trafficPolicy.tunnel (at any level)',
    effect: 'ignored',
    description: 'Upstream connections are made directly, not tunnelled through an HTTP CONNECT or POST proxy.',
  },
  {
    code: 'SNW0548',
    name: 'ProxyProtocolIgnored',
    kind: 'DestinationRule',
    field: 'trafficPolicy.proxyProtocol (at any level)',
    effect: 'ignored',
    description: 'No PROXY protocol header is sent upstream.',
  },
  {
    code: 'SNW0549',
    name: 'RetryBudgetIgnored',
    kind: 'DestinationRule',
    field: 'trafficPolicy.retryBudget (at any level)',
    effect: 'ignored',
    description: 'Retries are bounded by connectionPool.http.maxRetries, not by a retry budget.',
  },

  // === Sidecar ===
  {
    code: 'SNW0550',
    name: 'SidecarIngressIgnored',
    kind: 'Sidecar',
    field: 'spec.ingress',
    effect: 'ignored',
    description: 'A sidecar\'s inbound listeners come from its Workload\'s ports; Sidecar ingress listeners (port, bind, defaultEndpoint, tls, connectionPool) are not applied.',
  },
  {
    code: 'SNW0551',
    name: 'EgressListenerSettingsIgnored',
    kind: 'Sidecar',
    field: 'spec.egress[].port | bind | captureMode',
    effect: 'ignored',
    description: 'Egress listeners are merged into the one capture listener: their hosts apply on every port, and port, bind and captureMode are not applied.',
  },
  {
    code: 'SNW0552',
    name: 'InboundConnectionPoolIgnored',
    kind: 'Sidecar',
    field: 'spec.inboundConnectionPool',
    effect: 'ignored',
    description: 'Connections from a sidecar to its own app are not limited by this pool.',
  },
  {
    code: 'SNW0553',
    name: 'EgressProxyIgnored',
    kind: 'Sidecar',
    field: 'spec.outboundTrafficPolicy.egressProxy',
    effect: 'ignored',
    description: 'Unknown hosts pass through directly under ALLOW_ANY; they are not sent to an egress proxy.',
  },

  // === service registry ===
  {
    code: 'SNW0560',
    name: 'WorkloadGroupNotRegistered',
    kind: 'WorkloadGroup',
    effect: 'ignored',
    description: 'Nothing auto-registers workloads from a WorkloadGroup yet, so it adds no endpoints. Describe each workload as a WorkloadEntry (or a Sinew Workload).',
  },
  {
    code: 'SNW0561',
    name: 'NetworkIgnored',
    kind: 'WorkloadEntry',
    field: 'spec.network (also in ServiceEntry spec.endpoints[])',
    effect: 'ignored',
    description: 'The mesh is one network: an endpoint is reached at its address directly, and one with a network but no address (reached through that network\'s gateway in Istio) is left out.',
  },
  {
    code: 'SNW0562',
    name: 'DynamicDnsNotResolved',
    kind: 'ServiceEntry',
    field: 'spec.resolution: DYNAMIC_DNS',
    effect: 'degraded',
    description: 'Names under a wildcard host are not resolved per request yet: the service has no endpoints and its requests get 503. List the hosts with resolution DNS meanwhile.',
  },
  {
    code: 'SNW0563',
    name: 'UnixEndpointUnreachable',
    kind: 'WorkloadEntry',
    field: 'spec.address: unix://... (also in ServiceEntry spec.endpoints[])',
    effect: 'degraded',
    description: 'Proxies connect to endpoints over TCP only: a unix domain socket endpoint is left out of a ServiceEntry, and a WorkloadEntry at one cannot be reached.',
  },

  // === telemetry ===
  {
    code: 'SNW0570',
    name: 'TracingProvidersIgnored',
    kind: 'Telemetry',
    field: 'spec.tracing[].providers',
    effect: 'ignored',
    description: 'Spans go to the collectors the control plane names (its own trace store, and those it was started with), not to the providers named here.',
    retired: "the Telemetry API's tracing providers are applied (src/compiler/telemetry.ts): an opentelemetry (OTLP over HTTP) or zipkin extension provider of the mesh config receives the spans, as well as the control plane",
  },
  {
    code: 'SNW0571',
    name: 'TracingSettingsIgnored',
    kind: 'Telemetry',
    field: 'spec.tracing[].customTags | useRequestIdForTraceSampling | enableIstioTags | disableContextPropagation',
    effect: 'ignored',
    description: 'Of the tracing settings only randomSamplingPercentage and disableSpanReporting are applied.',
  },
  {
    code: 'SNW0572',
    name: 'AccessLogProviderSubstituted',
    kind: 'Telemetry',
    field: 'spec.accessLogging[].providers (other than envoy)',
    effect: 'degraded',
    description: 'Naming any access log provider turns on the proxy\'s own access log, as the built-in `envoy` provider does (on its standard output, in the mesh\'s format, Envoy\'s text by default); nothing is sent to the provider named.',
    retired: 'access log providers are applied: each envoyFileAccessLog extension provider is written with its path and its text format or JSON labels; the mesh config loader warns (SNW0452) about provider kinds Sinew does not send to',
  },
  {
    code: 'SNW0573',
    name: 'AccessLogFilterIgnored',
    kind: 'Telemetry',
    field: 'spec.accessLogging[].filter',
    effect: 'ignored',
    description: 'Access logs are not filtered by a CEL expression: every request is logged when logging is on.',
  },
  {
    code: 'SNW0574',
    name: 'MetricsProvidersIgnored',
    kind: 'Telemetry',
    field: 'spec.metrics[].providers (other than prometheus)',
    effect: 'ignored',
    description: 'Metrics are served for Prometheus to scrape; no other provider receives them.',
    retired: "metrics providers are applied as Istio merges them: Istio's standard metrics are recorded while a prometheus provider is in scope",
  },
  {
    code: 'SNW0575',
    name: 'MetricOverridesIgnored',
    kind: 'Telemetry',
    field: 'spec.metrics[].overrides[] for one metric or customMetric, or with tagOverrides',
    effect: 'ignored',
    description: 'Only turning every metric off or on (ALL_METRICS, or no metric named) is applied; single metrics cannot be turned off and tags are not changed.',
  },
  {
    code: 'SNW0576',
    name: 'ReportingIntervalIgnored',
    kind: 'Telemetry',
    field: 'spec.metrics[].reportingInterval',
    effect: 'ignored',
    description: 'Metrics are current whenever they are scraped; there is no reporting interval to set.',
  },
  {
    code: 'SNW0577',
    name: 'DirectionalTelemetryIgnored',
    kind: 'Telemetry',
    field: 'spec.tracing[] | metrics[].overrides[] with match.mode CLIENT or SERVER',
    effect: 'ignored',
    description: 'A proxy holds one tracing and one metrics setting for both directions, so a tracing entry or metrics override for client or server traffic only is not applied (access logs do follow match.mode). Leave match.mode unset (CLIENT_AND_SERVER).',
  },
  {
    code: 'SNW0578',
    name: 'TelemetryTargetRefIgnored',
    kind: 'Telemetry',
    field: 'spec.targetRef, spec.targetRefs',
    effect: 'ignored',
    description: 'A Telemetry resource that targets a Service or Gateway by reference is not applied to any proxy; use a selector or none.',
    retired: 'targetRefs attach as Istio attaches policies (src/semantics/policy-attachment.ts): to the proxies of the Gateway API gateway named, never to sidecars (Service targets are for waypoints, in Istio too)',
  },
  {
    code: 'SNW0579',
    name: 'JwtClaimRouteNotMatched',
    kind: 'VirtualService',
    field: 'spec.http[].match[].headers | withoutHeaders with a key `@request.auth.claims.<name>`',
    effect: 'degraded',
    description:
      'Routing on a JWT claim (istio.io\'s jwt-route task) is not done yet: the gateway chooses the route before the token is validated, so a match on `@request.auth.claims.*` never holds (and a withoutHeaders on one always does); requests fall through to the next route. Authorize on claims with an AuthorizationPolicy `when: request.auth.claims[...]` meanwhile, which is enforced.',
    retired:
      'gateways route on the claims of the verified token: the compiler turns a `@request.auth.claims.<name>` key into a claim condition of the route (never a header match), and the `sinew.filters.http.jwt_authn` filter of a gateway chooses the route again once it has verified a token (Envoy\'s clear_route_cache). Sidecars never see such a match: SNW0223 refuses it outside VirtualServices bound only to gateways, as Istio does',
  },
]);

/** The entries as diagnostic codes (warnings); a retired entry is documented as such. */
export const notEnforcedCodes: CodeTable = Object.freeze(
  Object.fromEntries(
    notEnforcedEntries.map((e) => [
      e.code,
      {
        level: 'warning' as const,
        name: e.name,
        description: `${e.retired ? `Retired: ${e.retired}. ` : ''}${e.kind}${e.field ? ` ${e.field}` : ''}: ${e.description}`,
      },
    ]),
  ),
);
