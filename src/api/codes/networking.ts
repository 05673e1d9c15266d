import type { CodeTable } from './types.js';

/**
 * SNW02xx: networking semantics (VirtualService, DestinationRule, Gateway, Sidecar), the rules
 * of Istio's validating webhook (istio/istio pkg/config/validation: validation.go,
 * virtualservice.go, agent/validation.go). Messages keep Istio's wording where it has one.
 */
export const networkingCodes: CodeTable = {
  // --- hosts and names ---
  SNW0201: { level: 'error', name: 'InvalidHost', description: 'A host is not a valid DNS name or wildcard (`*.example.com`); short names are expanded with the namespace, partial wildcards like `*foo.com` are refused where Istio refuses them.' },
  SNW0202: { level: 'error', name: 'MeshWildcardHost', description: 'The host `*` is only allowed for VirtualServices bound to gateways, not to the mesh; name the services instead.' },
  SNW0203: { level: 'error', name: 'DuplicateHost', description: 'Two hosts of the VirtualService overlap (literally or through a wildcard); keep one.' },
  SNW0204: { level: 'error', name: 'InvalidGatewayName', description: 'A gateway reference must be `mesh`, a Gateway name or `namespace/name`, each part an RFC 1123 label (no `*`); a Gateway\'s own name must be a label too (no dots).' },
  SNW0205: { level: 'error', name: 'InvalidExportTo', description: 'exportTo entries must be `.`, `*` or namespace names, without duplicates, and `*` must stand alone.' },
  SNW0206: { level: 'warning', name: 'LegacyGatewayName', description: 'A gateway named in the legacy `name.namespace` form; prefer `namespace/name`.' },

  // --- VirtualService routes ---
  SNW0210: { level: 'error', name: 'NoRoutes', description: 'A VirtualService needs at least one http, tcp or tls route.' },
  SNW0211: { level: 'error', name: 'RouteActionMissingOrConflicting', description: 'An HTTP route needs exactly one action: route, redirect, directResponse or (in a root VirtualService) delegate; some actions cannot be combined (e.g. route with redirect, mirror with mirrors).' },
  SNW0212: { level: 'error', name: 'InvalidDelegate', description: 'A delegate VirtualService (no hosts) cannot name gateways or have tcp/tls routes, and a delegate route cannot delegate again.' },
  SNW0213: { level: 'error', name: 'InvalidWeight', description: 'Route weights must be non-negative, and when there are several destinations they cannot all be 0. Weights are relative and need not sum to 100.' },
  SNW0214: { level: 'error', name: 'InvalidDestination', description: 'A route destination needs a valid host (not `*`), a subset name that is an RFC 1123 label and a port in 1..65535.' },
  SNW0215: { level: 'error', name: 'InvalidDuration', description: 'The duration is not valid here: durations are at least 1ms and have millisecond precision (CORS maxAge: whole seconds).' },
  SNW0216: { level: 'error', name: 'InvalidRetryPolicy', description: 'Retry attempts must be non-negative, retryOn must list Envoy retry conditions or HTTP status codes, and other retry settings need attempts > 0.' },
  SNW0217: { level: 'error', name: 'InvalidFaultInjection', description: 'A fault needs a delay and/or an abort; abort HTTP status must be 200..599, gRPC status a known code name, percentages 0 or 0.0001..100.' },
  SNW0218: { level: 'error', name: 'InvalidRewrite', description: 'A rewrite needs uri, uriRegexRewrite or authority; uri and uriRegexRewrite exclude each other; the regex must be valid RE2.' },
  SNW0219: { level: 'error', name: 'InvalidRedirect', description: 'A redirect needs uri, authority, scheme or port; redirectCode is 3xx; scheme is http or https; uri and prefixRewrite exclude each other; prefixRewrite needs prefix URI matches.' },
  SNW0220: { level: 'error', name: 'InvalidHeaderOperation', description: 'A header name or value in a header manipulation is invalid (pseudo-headers, Host, an Envoy `%` not escaped as `%%`), or the authority is set twice.' },
  SNW0221: { level: 'error', name: 'InvalidCorsPolicy', description: 'CORS allowOrigins need a non-empty exact, prefix or regex; methods must be HTTP methods; header names valid; maxAge whole seconds.' },
  SNW0222: { level: 'error', name: 'InvalidMatch', description: 'A match condition is invalid: regexes must be RE2 (matching the whole value), prefixes non-empty, header names valid, ports 1..65535, sourceNamespace an RFC 1123 label.' },
  SNW0223: { level: 'error', name: 'JwtClaimRouteWithoutGateway', description: 'Routing on `@request.auth.claims.*` works only for VirtualServices bound to gateways (not the mesh).' },
  SNW0224: { level: 'warning', name: 'UnreachableRule', description: 'A route or match can never be used because an earlier rule or match already covers it (Istio: VirtualServiceUnreachableRule / VirtualServiceIneffectiveMatch).' },
  SNW0225: { level: 'error', name: 'InvalidMirror', description: 'Mirror percentages are 0..100; mirrors need a destination.' },
  SNW0226: { level: 'error', name: 'InvalidDirectResponse', description: 'A direct response status must be 200..599 and its body smaller than 1MB (a warning above 100kB).' },
  SNW0227: { level: 'error', name: 'InvalidTlsOrTcpRoute', description: 'A TLS route needs matches with sniHosts that fall under the VirtualService hosts, and a route; a TCP route needs a route.' },
  SNW0228: { level: 'warning', name: 'SniHostIsIP', description: 'An IP address as SNI host goes against the SNI specification; most clients will not send it.' },
  SNW0229: { level: 'error', name: 'InvalidOneOf', description: 'At most one of a set of alternatives may be set (e.g. exact/prefix/regex in a string match).' },

  // --- DestinationRule ---
  SNW0240: { level: 'error', name: 'InvalidSubset', description: 'Subset names must be unique RFC 1123 labels and their labels valid Kubernetes labels.' },
  SNW0241: { level: 'error', name: 'EmptyTrafficPolicy', description: 'A traffic policy (or port-level policy, or connection pool) is present but sets nothing; remove it or set a field.' },
  SNW0242: { level: 'error', name: 'InvalidConnectionPool', description: 'Connection pool limits must be non-negative, durations valid, and useClientProtocol cannot be combined with h2UpgradePolicy UPGRADE.' },
  SNW0243: { level: 'error', name: 'InvalidOutlierDetection', description: 'Outlier detection percentages are 0..100, durations valid, and consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors.' },
  SNW0244: { level: 'error', name: 'InvalidLoadBalancer', description: 'Load balancer settings are inconsistent: maglev tableSize must be a prime below 5000011, cookie names and attributes unique, locality settings well formed.' },
  SNW0245: { level: 'error', name: 'InvalidClientTls', description: 'Client TLS settings conflict: insecureSkipVerify with CA/SANs, credentialName with inline certificates, MUTUAL without client certificate and key.' },
  SNW0246: { level: 'error', name: 'InvalidPortTrafficPolicy', description: 'A port-level traffic policy needs a port.' },
  SNW0247: { level: 'error', name: 'InvalidTunnel', description: 'Tunnel settings need protocol CONNECT or POST, a valid target host and port, and cannot be combined with proxyProtocol.' },
  SNW0248: { level: 'warning', name: 'EmptyWorkloadSelector', description: 'A workload selector without labels selects every workload in the namespace.' },
  SNW0249: { level: 'error', name: 'InvalidWorkloadSelector', description: 'Selector labels cannot have empty keys or wildcards.' },

  // --- Gateway ---
  SNW0260: { level: 'error', name: 'NoServers', description: 'A Gateway needs at least one server.' },
  SNW0261: { level: 'error', name: 'InvalidServerHost', description: 'Server hosts are `[namespace/]dnsName` (namespace `*`, `.` or a name; dnsName a full name or wildcard, or an IP); no partial wildcards.' },
  SNW0262: { level: 'error', name: 'InvalidServerPort', description: 'A server port needs a number in 1..65535 (0 only for unix sockets), a supported protocol and a name unique in the Gateway.' },
  SNW0263: { level: 'error', name: 'InvalidServerTls', description: 'HTTPS/TLS servers need tls settings; plain-text ports cannot have them (except httpsRedirect on HTTP); certificate sources are exclusive and modes need their certificates.' },
  SNW0264: { level: 'error', name: 'InvalidBind', description: 'bind must be an IP address or `unix://` followed by an absolute path.' },
  SNW0265: { level: 'warning', name: 'TlsSettingIgnored', description: 'A TLS setting has no effect here (httpsRedirect on a non-HTTP server, certificates in passthrough mode, invalid or duplicate ciphers).' },

  // --- Sidecar ---
  SNW0280: { level: 'error', name: 'EmptySidecar', description: 'A Sidecar must configure ingress, egress, outboundTrafficPolicy or inboundConnectionPool.' },
  SNW0281: { level: 'error', name: 'InvalidEgressHost', description: 'Sidecar egress hosts are `namespace/dnsName` with namespace `*`, `.`, `~` or a name, and a full name or wildcard (no short names).' },
  SNW0282: { level: 'error', name: 'InvalidSidecarListener', description: 'A Sidecar listener has an invalid port, protocol, bind, capture mode or default endpoint, or repeats a port.' },
  SNW0283: { level: 'error', name: 'InvalidOutboundTrafficPolicy', description: 'egressProxy is only allowed with mode ALLOW_ANY and needs a valid host and port.' },
  SNW0284: { level: 'warning', name: 'DuplicateEgressHost', description: 'An egress host repeats one already selected (for example after `ns/*` or `*/*`).' },
  SNW0285: { level: 'warning', name: 'IgnoredSetting', description: 'A setting has no effect where it is written (targetPort on Gateways and Sidecars, HTTP pool settings on a non-HTTP port).' },
};
