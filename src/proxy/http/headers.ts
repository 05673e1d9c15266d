/**
 * Header hygiene shared by the connection manager and the router: hop-by-hop removal
 * (RFC 9110 7.6.1), internal-header stripping, and the set/add/remove operations of routes.
 */
import type { HeaderOperations } from '../../api/proxy-config.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../../telemetry/peer-metadata.js';
import { PEER_SIGNATURE_HEADER } from '../peer-identity.js';

export type HeaderValue = string | string[];
export type HeaderBag = Record<string, HeaderValue>;

/**
 * Connection-specific headers never forwarded (RFC 9110 7.6.1; Envoy removes the same set, and
 * HTTP/2 forbids them outright, RFC 9113 8.2.2). `te` is handled apart: `te: trailers` is kept
 * because gRPC needs it. `expect` is answered by the proxy itself (node sends 100 Continue).
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te',
  'proxy-authenticate', 'proxy-authorization', 'http2-settings', 'expect', 'host',
]);

const INTERNAL_PREFIXES = ['x-envoy-', 'x-sinew-'];

/**
 * Envoy removes a client's x-forwarded-client-cert unless the connection is mutual TLS (its
 * forward_client_cert_details: SANITIZE, Istio's setting at gateways, and APPEND_FORWARD at
 * sidecars, both drop it from a peer without a client certificate). It never passes here: the
 * inbound sidecar sets Istio's own from the verified client certificate (stream.ts,
 * connection-info.ts `forwardedClientCert`), so a client cannot forge the identity an app reads.
 */
const FORWARDED_CLIENT_CERT = 'x-forwarded-client-cert';

/** Names listed in a `Connection` header (they are hop-by-hop too). */
function connectionTokens(value: HeaderValue | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // Nearly every `Connection` header says only this: a connection option, naming no other header.
  if (value === 'keep-alive' || value === 'close') return undefined;
  const s = Array.isArray(value) ? value.join(',') : value;
  const out = new Set<string>();
  for (const t of s.split(',')) {
    const n = t.trim().toLowerCase();
    if (n) out.add(n);
  }
  return out.size ? out : undefined;
}

/**
 * Copies request headers for the upstream: drops pseudo-headers, hop-by-hop headers, headers
 * named in `Connection`, x-forwarded-client-cert, and (from untrusted downstreams) Envoy's and
 * Sinew's internal headers, which a client could otherwise use to steer the mesh (Envoy strips
 * x-envoy-* on external requests the same way).
 */
export function upstreamRequestHeaders(src: Readonly<Record<string, HeaderValue | undefined>>, stripInternal: boolean): HeaderBag {
  const out: HeaderBag = {};
  const named = connectionTokens(src['connection']);
  for (const key in src) {
    const value = src[key];
    if (value === undefined || key.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(key)) {
      // gRPC over HTTP/2 needs `te: trailers` end to end (gRPC over HTTP2 spec).
      if (key === 'te' && String(value).toLowerCase().trim() === 'trailers') out[key] = 'trailers';
      continue;
    }
    if (named?.has(key) || key === FORWARDED_CLIENT_CERT) continue;
    if (stripInternal && (key.startsWith(INTERNAL_PREFIXES[0]) || key.startsWith(INTERNAL_PREFIXES[1]))) continue;
    out[key] = value;
  }
  return out;
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te']);

/**
 * An upstream response head without its hop-by-hop headers (and, with `dropPeerMetadata`,
 * without the upstream sidecar's metadata-exchange headers and their proof, which the app must not see). Copied rather than deleted from:
 * nearly every HTTP/1.1 response carries `connection` and `keep-alive`, and a delete turns
 * V8's object into a slow dictionary that every later header operation on it pays for.
 */
export function sanitizeResponseHeaders(headers: HeaderBag, dropPeerMetadata = false): HeaderBag {
  const named = connectionTokens(headers['connection']);
  const out: HeaderBag = {};
  for (const key in headers) {
    if (RESPONSE_HOP_BY_HOP.has(key) || named?.has(key) || key.charCodeAt(0) === 58) continue;
    if (dropPeerMetadata && (key === PEER_METADATA_HEADER || key === PEER_METADATA_ID_HEADER || key === PEER_SIGNATURE_HEADER)) continue;
    out[key] = headers[key];
  }
  return out;
}

/**
 * Applies set/add/remove. `:authority` and `host` address the authority, which the caller keeps
 * apart (returned when changed). Envoy order: remove, then set, then add (append).
 */
export function applyHeaderOps(headers: HeaderBag, ops: HeaderOperations | undefined, authority?: string): string | undefined {
  if (!ops) return authority;
  if (ops.remove) for (const name of ops.remove) delete headers[name.toLowerCase()];
  if (ops.set) {
    for (const name in ops.set) {
      const key = name.toLowerCase();
      if (key === ':authority' || key === 'host') authority = ops.set[name];
      else headers[key] = ops.set[name];
    }
  }
  if (ops.add) {
    for (const name in ops.add) {
      const key = name.toLowerCase();
      const value = ops.add[name];
      if (key === ':authority' || key === 'host') { authority = value; continue; }
      const existing = headers[key];
      if (existing === undefined) headers[key] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else headers[key] = [existing, value];
    }
  }
  return authority;
}

/** One header value as matching sees it: repeated headers joined with "," (Envoy). */
export function joinValue(value: HeaderValue | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}
