/**
 * The route's hash policy (Envoy's Http::HashPolicy, which Istio's DestinationRule
 * `consistentHash` configures): the request's hash for RING_HASH and MAGLEV clusters and for
 * sticky canary splits. One source per policy: a header, a cookie, the source IP or a query
 * parameter. A request without that input gets no hash, and Envoy then balances it as if no
 * policy were set; except a cookie policy with a TTL, for which Envoy generates the cookie,
 * hashes the request with it and sets it on the response (router.cc addDownstreamSetCookie).
 */
import type { HashPolicy } from '../../api/proxy-config.js';
import { hashString } from '../upstream/hash.js';

type HeaderValue = string | string[] | undefined;

/** What a hash policy reads of a request (HttpStream has these). */
export interface HashedRequest {
  /** Request headers by lower-case name. */
  readonly headers: Readonly<Record<string, HeaderValue>>;
  /** The query string, without `?`. */
  readonly query: string;
  /** The downstream peer's address. */
  readonly peer: string;
}

/**
 * Envoy's AddCookieCallback: makes the value of a cookie the client did not send, arranges for
 * `Set-Cookie` on the response, and returns the value to hash.
 */
export interface GeneratedCookies {
  addSetCookie(name: string, path: string | undefined, maxAgeSeconds: number): string;
}

/** The request's hash, in [0, 2^53); undefined when the policy's input is missing. */
export function hashRequest(policy: HashPolicy, req: HashedRequest, cookies: GeneratedCookies): number | undefined {
  if (policy.header !== undefined) {
    const value = joined(req.headers[policy.header.toLowerCase()]);
    return value === undefined ? undefined : hashString(value);
  }
  if (policy.cookie) {
    const { name, path, ttlMs } = policy.cookie;
    const value = cookieValue(req.headers.cookie, name);
    // Envoy: an empty value counts as absent; without a TTL nothing is generated. Istio: a TTL
    // of zero asks for a session cookie (no Max-Age).
    if (value) return hashString(value);
    if (ttlMs === undefined) return undefined;
    return hashString(cookies.addSetCookie(name, path, Math.floor(ttlMs / 1000)));
  }
  if (policy.sourceIp) return req.peer ? hashString(req.peer) : undefined;
  if (policy.queryParameter !== undefined) {
    if (!req.query) return undefined;
    // Envoy's query_parameter hash uses the first occurrence of the parameter.
    const value = new URLSearchParams(req.query).get(policy.queryParameter);
    return value === null ? undefined : hashString(value);
  }
  return undefined;
}

/**
 * The value of a generated cookie: the same for every request of one downstream connection
 * (so that requests racing on it get one cookie), different between connections. Envoy hashes
 * the connection's remote and local addresses (xxHash64, hex).
 */
export function generatedCookieValue(remoteAddress: string, localAddress: string): string {
  return hashString(remoteAddress + localAddress).toString(16).padStart(14, '0');
}

/** Envoy's Utility::makeSetCookieValue for a generated cookie: quoted value, Max-Age unless 0, Path, HttpOnly. */
export function setCookieValue(name: string, value: string, path: string | undefined, maxAgeSeconds: number): string {
  let out = `${name}="${value}"`;
  if (maxAgeSeconds !== 0) out += `; Max-Age=${maxAgeSeconds}`;
  if (path) out += `; Path=${path}`;
  return `${out}; HttpOnly`;
}

/** Repeated headers hash as one value, joined in order (Envoy hashes all of a header's values). */
function joined(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? (value.length ? value.join(',') : undefined) : value;
}

/**
 * A cookie's value in the request's `Cookie` field(s), as Envoy's Utility::parseCookieValue
 * reads it: pairs separated by `;`, the first with the name wins, a double-quoted value is
 * unquoted (RFC 6265 4.1.1). HTTP/2 clients may send several cookie fields (RFC 9113 8.2.3).
 */
function cookieValue(header: HeaderValue, name: string): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) {
    for (const h of header) {
      const v = cookieValue(h, name);
      if (v !== undefined) return v;
    }
    return undefined;
  }
  if (!header.includes(name)) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}
