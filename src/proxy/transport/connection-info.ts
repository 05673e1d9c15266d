/**
 * What a downstream or upstream connection knows about its peer once its transport socket is
 * up (Envoy's Ssl::ConnectionInfo): for filters (authorization reads the peer's SPIFFE ID),
 * metrics (`connection_security_policy`, `source_principal`) and access logs
 * (`%DOWNSTREAM_PEER_URI_SAN%`, `%DOWNSTREAM_TLS_VERSION%`, ...).
 *
 * Each connection's info is computed once, when first asked, and kept beside its socket in a
 * WeakMap (a property added to node's sockets would give them a second shape in node's own
 * code; stream.ts says the same of local addresses).
 */
import type tls from 'node:tls';

export interface ConnectionInfo {
  /** Istio's connection_security_policy: `mutual_tls` when the peer proved a certificate, `none` in plaintext. */
  readonly security: 'none' | 'tls' | 'mutual_tls';
  /** The peer certificate's first URI SAN (a SPIFFE ID in the mesh): Istio's principal. */
  readonly peerUriSan?: string;
  /** This side's certificate's first URI SAN (the proxy's own SPIFFE ID): XFCC's `By`. */
  readonly localUriSan?: string;
  /** SHA-256 of the peer certificate (DER), hex: Envoy's %DOWNSTREAM_PEER_FINGERPRINT_256%. */
  readonly peerCertificateSha256?: string;
  /** The server name the client asked for (SNI). */
  readonly sni?: string;
  /** The protocol ALPN settled on, if any. */
  readonly alpn?: string;
  /** `TLSv1.3`, `TLSv1.2`. */
  readonly tlsVersion?: string;
}

export const PLAINTEXT: ConnectionInfo = Object.freeze({ security: 'none' });

const known = new WeakMap<object, ConnectionInfo>();

/** The info of a connection's socket (plaintext unless it is a TLS socket). */
export function connectionInfoOf(socket: object | null | undefined): ConnectionInfo {
  if (socket === null || socket === undefined) return PLAINTEXT;
  const tlsSocket = socket as Partial<tls.TLSSocket>;
  if (tlsSocket.encrypted !== true) return PLAINTEXT;
  let info = known.get(socket);
  if (info === undefined) {
    info = tlsConnectionInfo(socket as tls.TLSSocket);
    known.set(socket, info);
  }
  return info;
}

/** Reads a TLS socket's peer and session facts (after its handshake). */
export function tlsConnectionInfo(socket: tls.TLSSocket): ConnectionInfo {
  const peer = socket.getPeerCertificate?.();
  const hasPeer = peer !== undefined && peer !== null && Object.keys(peer).length > 0 && socket.authorized !== false;
  const sni = (socket as tls.TLSSocket & { servername?: string | false }).servername;
  const alpn = socket.alpnProtocol;
  const local = socket.getCertificate?.();
  const localUriSan = local && 'subjectaltname' in local ? firstUriSan(local.subjectaltname) : undefined;
  return Object.freeze({
    security: hasPeer && socket.authorized ? 'mutual_tls' : 'tls',
    ...(hasPeer ? { peerUriSan: firstUriSan(peer.subjectaltname), peerCertificateSha256: peer.fingerprint256?.replace(/:/g, '').toLowerCase() } : {}),
    ...(localUriSan ? { localUriSan } : {}),
    ...(typeof sni === 'string' && sni ? { sni } : {}),
    ...(typeof alpn === 'string' && alpn ? { alpn } : {}),
    tlsVersion: socket.getProtocol?.() ?? undefined,
  } as ConnectionInfo);
}

/** The first `URI:` entry of node's `subjectaltname` text. */
export function firstUriSan(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  for (const part of subjectAltName.split(', ')) if (part.startsWith('URI:')) return part.slice(4);
  return undefined;
}

/** Remembers what a transport socket established (the TLS server verifies before it is known). */
export function setConnectionInfo(socket: object, info: ConnectionInfo): void {
  known.set(socket, info);
}

/**
 * Istio's x-forwarded-client-cert for a mutual TLS connection (Envoy's
 * set_current_client_cert_details with subject and uri, as Istio's sidecars set it):
 * `By=<own SPIFFE ID>;Hash=<peer certificate SHA-256>;Subject="";URI=<peer SPIFFE ID>`.
 * Undefined without a verified client certificate.
 */
export function forwardedClientCert(info: ConnectionInfo): string | undefined {
  if (info.security !== 'mutual_tls' || info.peerCertificateSha256 === undefined) return undefined;
  // Istio's workload certificates have an empty subject; Envoy writes it quoted.
  return `${info.localUriSan ? `By=${info.localUriSan};` : ''}Hash=${info.peerCertificateSha256};Subject="";URI=${info.peerUriSan ?? ''}`;
}
