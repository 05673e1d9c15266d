/**
 * TLS termination on HTTP listeners (Envoy's DownstreamTlsContext on a listener's filter chain):
 * gateway servers with `tls.mode` SIMPLE, MUTUAL (clients must present a certificate signed by
 * the validation context's CA) and ISTIO_MUTUAL (the same, against the mesh root), and
 * permissive listeners that take plaintext beside TLS on one port.
 *
 * Certificates come from `ProxyConfig.secrets` by name: the certificate secret needs
 * `certificateChainPem` and `privateKeyPem`, the validation context `trustedCaPem`. The proxy
 * checks all of that, and that node can build a TLS context from the PEM, when a config is
 * applied (STYLE.md 3), so a listener never meets a certificate it cannot use.
 *
 * ALPN (RFC 7301) picks the codec on one port, as Envoy's `codec_type: AUTO` does: `h2` goes
 * to the HTTP/2 server, `http/1.1` or no ALPN to HTTP/1.1. The listener offers
 * `DownstreamTls.alpn` when given, else `h2, http/1.1` with `http.http2` and `http/1.1`
 * without it. (RFC 9113 3.2: HTTP/2 over TLS is negotiated with ALPN; node's HTTP/2 server
 * refuses a TLS socket that did not negotiate it, so there is no prior-knowledge h2 over TLS.)
 *
 * Limit: one certificate per listener. The contract's DownstreamTls names a single
 * `certificate`, and the compiler serves each gateway port with the first server's TLS
 * settings, so SNI does not choose among several certificates here (Istio gives each server
 * of a port its own filter chain matched by SNI); `servername` is not checked either.
 */
import { createRequire } from 'node:module';
import type tls from 'node:tls';
import type { DownstreamTls, Listener, Secret } from '../../api/proxy-config.js';

/** The first byte of a TLS record carrying a handshake (RFC 8446 5.1, ContentType 22). */
export const TLS_HANDSHAKE_RECORD = 0x16;

/** Envoy's default transport_socket_connect_timeout is off; a bound on a silent handshake is kinder. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The protocols a listener offers over ALPN. */
export function alpnProtocols(t: DownstreamTls, http2: boolean): string[] {
  if (t.alpn && t.alpn.length > 0) return [...t.alpn];
  return http2 ? ['h2', 'http/1.1'] : ['http/1.1'];
}

const mutual = (t: DownstreamTls) => t.mode === 'MUTUAL' || t.mode === 'ISTIO_MUTUAL';

/**
 * Problems with a listener's TLS settings against the pushed secrets, each as
 * `[field path under the listener, message]`; empty when the listener can terminate TLS.
 */
export function downstreamTlsProblems(l: Listener, secrets: readonly Secret[] | undefined): [string, string][] {
  const t = l.tls;
  if (!t) return [];
  const out: [string, string][] = [];
  if (l.protocol !== 'http') {
    out.push(['.tls', 'TLS termination is supported on http listeners only']);
    return out;
  }
  const byName = new Map((secrets ?? []).map((s) => [s.name, s]));
  if (t.mode !== 'SIMPLE' && t.mode !== 'MUTUAL' && t.mode !== 'ISTIO_MUTUAL') out.push(['.tls.mode', `unknown mode ${JSON.stringify(t.mode)}`]);
  const cert = byName.get(t.certificate);
  if (!cert) out.push(['.tls.certificate', `no secret named ${JSON.stringify(t.certificate)} was pushed`]);
  else if (!cert.certificateChainPem || !cert.privateKeyPem) out.push(['.tls.certificate', `secret ${JSON.stringify(t.certificate)} needs certificateChainPem and privateKeyPem`]);
  let ca: Secret | undefined;
  if (mutual(t)) {
    if (t.validationContext === undefined) out.push(['.tls.validationContext', `${t.mode} needs a validation context to verify client certificates`]);
    else {
      ca = byName.get(t.validationContext);
      if (!ca) out.push(['.tls.validationContext', `no secret named ${JSON.stringify(t.validationContext)} was pushed`]);
      else if (!ca.trustedCaPem) out.push(['.tls.validationContext', `secret ${JSON.stringify(t.validationContext)} needs trustedCaPem`]);
    }
  }
  for (const p of t.alpn ?? []) {
    if (typeof p !== 'string' || p.length === 0 || p.length > 255) out.push(['.tls.alpn', `${JSON.stringify(p)} is not an ALPN protocol id`]);
    else if (p === 'h2' && !l.http?.http2) out.push(['.tls.alpn', 'offers h2 but the listener does not serve HTTP/2 (http.http2)']);
  }
  if (out.length === 0 && cert) {
    try {
      // Bad PEM, or a key that does not match the certificate, fails here rather than on the
      // first handshake.
      loadTls().createSecureContext(secureContextOptions(t, cert, ca));
    } catch (err) {
      out.push(['.tls', `secret ${JSON.stringify(t.certificate)} cannot be used: ${(err as Error).message}`]);
    }
  }
  return out;
}

function secureContextOptions(t: DownstreamTls, cert: Secret, ca: Secret | undefined): tls.SecureContextOptions {
  return {
    cert: cert.certificateChainPem,
    key: cert.privateKeyPem,
    ...(mutual(t) && ca?.trustedCaPem ? { ca: ca.trustedCaPem } : {}),
    // Istio's gateway default minProtocolVersion (TLSV1_2).
    minVersion: 'TLSv1.2',
  };
}

/**
 * What decides a listener's TLS server: settings and secret contents. A change of it (a
 * rotated certificate) builds a new server, used by new connections only.
 */
export function tlsFingerprint(l: Listener, secrets: readonly Secret[] | undefined): string {
  const t = l.tls;
  if (!t) return '';
  const pick = (name: string | undefined) => secrets?.find((s) => s.name === name);
  const cert = pick(t.certificate);
  const ca = mutual(t) ? pick(t.validationContext) : undefined;
  return JSON.stringify([t, Boolean(l.http?.http2), cert?.certificateChainPem, cert?.privateKeyPem, ca?.trustedCaPem]);
}

export interface DownstreamTlsOptions {
  /** Bound on the handshake (default 10 s). */
  handshakeTimeoutMs?: number;
  /** A handshake completed: hand the decrypted socket to HTTP/1.1 or HTTP/2 by its ALPN. */
  onSecure(socket: tls.TLSSocket): void;
  /** A handshake failed (bad record, unknown CA, no client certificate, timeout). */
  onHandshakeError(err: Error): void;
}

/**
 * A tls.Server that never listens: the listener's net.Server accepts the TCP connection and
 * emits it here, so plaintext and TLS can share a port (permissive) and ALPN can choose the
 * codec. Validated by `downstreamTlsProblems` first; this asserts the secrets are there.
 */
export function createDownstreamTlsServer(l: Listener, secrets: readonly Secret[] | undefined, opts: DownstreamTlsOptions): tls.Server {
  const t = l.tls!;
  const byName = new Map((secrets ?? []).map((s) => [s.name, s]));
  const cert = byName.get(t.certificate);
  if (!cert) throw new Error(`listener ${l.name}: secret ${t.certificate} missing after validation`);
  const ca = mutual(t) && t.validationContext !== undefined ? byName.get(t.validationContext) : undefined;
  const server = loadTls().createServer({
    ...secureContextOptions(t, cert, ca),
    ALPNProtocols: alpnProtocols(t, Boolean(l.http?.http2)),
    // MUTUAL: a client without a certificate, or with one the CA did not sign, fails the
    // handshake (TLS 1.3 clients learn it on their first read: the alert follows Finished).
    requestCert: mutual(t),
    rejectUnauthorized: mutual(t),
    handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  });
  server.on('secureConnection', opts.onSecure);
  server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
    opts.onHandshakeError(err);
    // Node emits a handshake timeout without closing the socket; a failed handshake must not
    // hold the connection (nor, through it, the listener's drain) open.
    socket.destroy();
  });
  return server;
}

let tlsModule: typeof tls | undefined;

/**
 * node:tls, loaded the first time a listener terminates TLS: it and the crypto it pulls in cost
 * a proxy ~1 MB of memory, which plaintext listeners should not pay.
 */
function loadTls(): typeof tls {
  return (tlsModule ??= createRequire(import.meta.url)('node:tls') as typeof tls);
}
