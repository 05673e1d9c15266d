/**
 * What authorization decides on: the attributes of one request (or one TCP connection), the
 * way Envoy's RBAC filter sees them. The proxy fills this in from its stream and connection;
 * the evaluator reads nothing else, so it can be tested without sockets and it does not
 * depend on how the connection manager is built.
 */

/** The end-user identity a validated JWT gives a request (Istio's `request.auth.*`). */
export interface RequestAuth {
  /** `<iss>/<sub>`: Istio's request principal. */
  principal: string;
  /** The token's `aud` claim, as a list. */
  audiences: readonly string[];
  /** The `azp` claim, when present. */
  presenter?: string;
  /** The whole payload, for `request.auth.claims[...]` (nested claims included). */
  claims: Readonly<Record<string, unknown>>;
}

export interface RequestAttributes {
  /** Absent for a TCP connection (network-level authorization). */
  method?: string;
  /** The request's `:path` after normalisation; the query and fragment are ignored when matching. */
  path?: string;
  /** The `:authority` / Host header. */
  host?: string;
  /** Lower-case names; several values of one header are joined with `,` (Envoy's header matcher). */
  headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The direct peer's address (`source.ip`, `ipBlocks`). */
  sourceIp?: string;
  sourcePort?: number;
  /** The original client, from X-Forwarded-For within the trusted hops (`remote.ip`, `remoteIpBlocks`); defaults to sourceIp. */
  remoteIp?: string;
  destinationIp?: string;
  destinationPort?: number;
  /**
   * The peer's SPIFFE ID from its mTLS certificate (`spiffe://cluster.local/ns/foo/sa/bar`).
   * Absent without mutual TLS: then principals and namespaces match nothing, as in Istio.
   */
  peerPrincipal?: string;
  /** The peer's namespace; taken from `peerPrincipal` when not given. */
  peerNamespace?: string;
  /** The TLS server name the client asked for (`connection.sni`). */
  sni?: string;
  /** Set by the JWT filter for a request with a valid token. */
  auth?: RequestAuth;
}

/** A SPIFFE ID without its scheme, the form Istio's principals are written in (`cluster.local/ns/foo/sa/bar`). */
export function principalOf(attributes: RequestAttributes): string | undefined {
  const id = attributes.peerPrincipal;
  if (!id) return undefined;
  return id.startsWith('spiffe://') ? id.slice('spiffe://'.length) : id;
}

/** The peer's namespace: given, or the `ns` segment of its SPIFFE ID (`<td>/ns/<ns>/sa/<sa>`). */
export function namespaceOf(attributes: RequestAttributes): string | undefined {
  if (attributes.peerNamespace) return attributes.peerNamespace;
  const principal = principalOf(attributes);
  if (!principal) return undefined;
  const parts = principal.split('/');
  const at = parts.indexOf('ns');
  return at >= 0 && at + 1 < parts.length ? parts[at + 1] : undefined;
}

/**
 * A claim's value(s) at a path into the payload (`request.auth.claims[a][b]`): a string, or a
 * list of strings (any element may match). Other types match nothing, as Envoy's metadata
 * matcher compares strings only. AuthorizationPolicy's `request.auth.claims[...]` and the
 * routes' `@request.auth.claims.*` conditions both read claims with it.
 */
export function claimValues(claims: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): string | readonly string[] | undefined {
  let at: unknown = claims;
  for (const key of path) {
    // Own fields only: a claim named `constructor` or `__proto__` is not the object's prototype.
    if (at === null || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  if (typeof at === 'string') return at;
  if (Array.isArray(at)) return at.filter((v): v is string => typeof v === 'string');
  return undefined;
}
