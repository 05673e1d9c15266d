/**
 * Hashing for consistent-hash load balancing (RING_HASH, MAGLEV) and for the route's hash
 * policy (Istio `consistentHash`: httpHeaderName, httpCookie, useSourceIp,
 * httpQueryParameterName).
 *
 * Envoy uses xxHash64 for both; any hash with a good spread works as long as the ring and the
 * request use the same space. We use a 53-bit hash built from two 32-bit multiply lanes
 * (cyrb53, public domain) so the values stay plain JS numbers: no BigInt on the request path.
 */
import type { HashPolicy } from '../../api/proxy-config.js';

/** 2^53: every hash lives in [0, HASH_SPACE). */
export const HASH_SPACE = 9007199254740992;

/** A 53-bit hash of a string; `seed` gives independent hash functions (Maglev needs two). */
export function hashString(input: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < input.length; i++) {
    const ch = input.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Brings a caller-supplied hash (bigint or number) into [0, 2^53). */
export function normalizeHash(hash: bigint | number): number {
  if (typeof hash === 'bigint') return Number(BigInt.asUintN(53, hash));
  if (Number.isSafeInteger(hash) && hash >= 0) return hash;
  // Negative or fractional numbers: fold deterministically rather than reject.
  return hashString(String(hash));
}

// === request hashing (the router calls this) ===

export type HeaderValue = string | string[] | undefined;

export interface HashableRequest {
  /** Lower-case header names. */
  headers: Readonly<Record<string, HeaderValue>>;
  /** Parsed cookies; parsed from the `cookie` header when absent. */
  cookies?: Readonly<Record<string, string>>;
  /** The downstream peer address (or the trusted client address). */
  sourceIp: string;
  /** Raw query string (with or without `?`), parsed parameters, or a URLSearchParams. */
  query?: string | URLSearchParams | Readonly<Record<string, string | string[] | undefined>>;
}

/** A cookie the router must add to the response (Envoy generates it when the TTL is set). */
export interface GeneratedCookie {
  name: string;
  value: string;
  path?: string;
  /** Absent = session cookie (Istio: a TTL of zero). */
  maxAgeSeconds?: number;
}

export interface RequestHash {
  hash: number;
  /** Set when the cookie policy found no cookie: send `Set-Cookie` with this. */
  setCookie?: GeneratedCookie;
}

/**
 * Hashes a request per a route's hash policy. Returns undefined when the policy's input is
 * missing (no such header, no query parameter, cookie absent and no TTL to generate one);
 * Envoy then balances that request as if no hash policy were set (a random ring entry).
 */
export function hashRequest(policy: HashPolicy, req: HashableRequest): RequestHash | undefined {
  if (policy.header !== undefined) {
    const value = headerValue(req.headers[policy.header.toLowerCase()]);
    return value === undefined ? undefined : { hash: hashString(value) };
  }
  if (policy.cookie) {
    const { name, path, ttlMs } = policy.cookie;
    const value = req.cookies ? req.cookies[name] : parseCookie(headerValue(req.headers.cookie), name);
    if (value !== undefined) return { hash: hashString(value) };
    // Envoy (hash_policy.cookie): "If the cookie is not present and ttl is set, Envoy will
    // generate a cookie"; the value is derived from the downstream address so that a client's
    // first request and its later ones land on the same host. Istio: TTL 0 = session cookie.
    if (ttlMs === undefined) return undefined;
    const generated = hashString(req.sourceIp, 0x5eed).toString(16).padStart(14, '0');
    const setCookie: GeneratedCookie = { name, value: generated };
    if (path !== undefined) setCookie.path = path;
    if (ttlMs > 0) setCookie.maxAgeSeconds = Math.max(1, Math.round(ttlMs / 1000));
    return { hash: hashString(generated), setCookie };
  }
  if (policy.sourceIp) {
    return req.sourceIp ? { hash: hashString(req.sourceIp) } : undefined;
  }
  if (policy.queryParameter !== undefined) {
    const value = queryValue(req.query, policy.queryParameter);
    return value === undefined ? undefined : { hash: hashString(value) };
  }
  return undefined;
}

function headerValue(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  // Envoy hashes all values of a repeated header together, joined in order.
  return Array.isArray(value) ? (value.length ? value.join(',') : undefined) : value;
}

function parseCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
  }
  return undefined;
}

function queryValue(query: HashableRequest['query'], name: string): string | undefined {
  if (query === undefined) return undefined;
  if (typeof query === 'string') {
    const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
    return params.has(name) ? (params.get(name) ?? '') : undefined;
  }
  if (query instanceof URLSearchParams) return query.has(name) ? (query.get(name) ?? '') : undefined;
  const value = query[name];
  if (value === undefined) return undefined;
  // Envoy's query_parameter hash uses the first occurrence of the parameter.
  return Array.isArray(value) ? value[0] : value;
}
