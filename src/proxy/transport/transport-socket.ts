/**
 * Transport sockets (Envoy's transport_socket): one factory for plaintext, TLS and Istio
 * mutual TLS, on both sides of the proxy.
 *
 * - **Upstream** (`upstreamTransport`): the HTTP/1.1 client (upstream/http1) and undici's
 *   HTTP/2 pools connect through `connect()`, so a TLS cluster keeps sinew's fast HTTP/1.1
 *   client. A connection is usable once `readyEvent` fired and `verifyPeer` accepted the
 *   upstream's certificate.
 * - **Downstream** (`downstreamTransport`): a listener's filter chain wraps each accepted
 *   connection with `accept()` (filter-chains.ts picks the chain, by SNI and ALPN).
 *
 * TLS material comes from `ProxyConfig.secrets` by name, as Envoy's SDS names it: a
 * certificate secret (`certificateChainPem`, `privateKeyPem`; Istio's `default` is the
 * workload's) and a validation context (`trustedCaPem`, `revocations`; Istio's `ROOTCA`).
 * Peers are verified the way Istio's proxies verify them: the chain against the trust bundle
 * (src/core/pki TrustBundle), then the leaf against the mesh CA's revocations
 * (RevocationChecker), then, where the config names them, its SANs (`subjectAltNames`: a
 * SPIFFE ID is a URI SAN). Istio mutual TLS (ISTIO_MUTUAL) is mutual TLS with the mesh's own
 * credentials, offering ALPN `istio-peer-exchange, istio` (Istio's ALPNInMeshWithMxc) so that
 * the server side's filter chain match tells mesh traffic from other TLS.
 *
 * Everything is checked and built when a config is applied (`problems`, secure contexts made
 * once per factory, not per connection): a listener or cluster never meets material it cannot
 * use on the request path.
 */
import { createRequire } from 'node:module';
import type net from 'node:net';
import type tls from 'node:tls';
import { ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET, type DownstreamTls, type Secret, type UpstreamTls } from '../../api/proxy-config.js';
import { SinewError } from '../../core/errors.js';
import { hashString } from '../upstream/hash.js';
import { uriSans, type NodeX509 } from '../../core/pki/certificate-info.js';
import { RevocationChecker } from '../../core/pki/revocation.js';
import { TrustBundle } from '../../core/pki/trust-bundle.js';
import { setConnectionInfo, tlsConnectionInfo } from './connection-info.js';

/** Istio's ALPN for in-mesh mutual TLS with metadata exchange (pilot's util.ALPNInMeshWithMxc). */
export const ISTIO_ALPN: readonly string[] = Object.freeze(['istio-peer-exchange', 'istio']);

/**
 * How long a connection between two sidecars may sit idle, on both ends: Envoy's default
 * idle_timeout (1 h, upstream and downstream), which Istio keeps. Sidecars pool their
 * connections to each other, and each new one costs a full mutual-TLS handshake (milliseconds
 * of CPU on each side) where plaintext costs a TCP connect. With Node's 5 s keep-alive, a pair
 * of sidecars at 1000 req/s closed the connections a burst had opened and paid handshakes on
 * the request path again at the next burst (p99 153 ms against 1.1 ms in plaintext).
 */
export const MESH_CONNECTION_IDLE_TIMEOUT_MS = 3_600_000;

/**
 * What an Istio mutual TLS client offers over ALPN for each upstream protocol: Istio's ids
 * (istio-peer-exchange, then the protocol's own `istio-http/1.1` / `istio-h2` as istio's alpn
 * filter sets them, then `istio`), and the plain protocol last so that a server picks it and
 * the codec follows the ALPN it negotiated. A sidecar's inbound chain is matched by the istio ids.
 */
export function istioMutualAlpn(protocol: 'http1' | 'http2' | 'tcp'): string[] {
  if (protocol === 'tcp') return [...ISTIO_ALPN];
  return protocol === 'http2' ? ['istio-peer-exchange', 'istio-h2', 'istio', 'h2'] : ['istio-peer-exchange', 'istio-http/1.1', 'istio', 'http/1.1'];
}

/** Istio's inbound match for mesh mutual TLS (the ids an Istio client may offer). */
export const ISTIO_INBOUND_ALPN: readonly string[] = Object.freeze(['istio-peer-exchange', 'istio-h2', 'istio-http/1.1', 'istio-http/1.0', 'istio']);

/** Istio's minimum TLS version (TLSV1_2) for gateways and the mesh. */
const MIN_TLS_VERSION = 'TLSv1.2';

// === upstream ===

export interface UpstreamConnectOptions {
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** TCP proxying: a FIN (TLS: close_notify) from the peer ends reading only (tcp-proxy.ts propagates it). */
  allowHalfOpen?: boolean;
}

export interface UpstreamTransport {
  readonly secure: boolean;
  /** Settings and secret contents that decide the connections: pools keep warm connections while it stays. */
  readonly key: string;
  /** The event of the socket `connect()` returns once it can carry requests. */
  readonly readyEvent: 'connect' | 'secureConnect';
  /** Opens a connection (plaintext, or TLS with this transport's context and ALPN). */
  connect(host: string, port: number, opts: UpstreamConnectOptions): net.Socket;
  /** After the handshake: an error when the upstream's certificate is refused (revoked). */
  verifyPeer(socket: net.Socket): Error | undefined;
}

/** Plaintext TCP: net.connect, nothing to verify. */
export const PLAINTEXT_UPSTREAM: UpstreamTransport = Object.freeze({
  secure: false,
  key: 'plaintext',
  readyEvent: 'connect' as const,
  connect: (host: string, port: number, opts: UpstreamConnectOptions) => loadNet().connect({ host, port, ...opts }),
  verifyPeer: () => undefined,
});

/** Why a cluster's transport cannot be built yet (a secret not pushed): the cluster warms (503 UH) meanwhile. */
export interface TransportUnavailable {
  readonly unavailable: string;
}

/**
 * The transport of a cluster. `protocol` decides the ALPN offered when the config gives none:
 * `h2` for HTTP/2 clusters, `http/1.1` otherwise, after Istio's own protocols for ISTIO_MUTUAL.
 */
export function upstreamTransport(t: UpstreamTls | undefined, secrets: ReadonlyMap<string, Secret>, protocol: 'http1' | 'http2' | 'tcp'): UpstreamTransport | TransportUnavailable {
  if (t === undefined) return PLAINTEXT_UPSTREAM;
  const missing: string[] = [];
  const secret = (name: string | undefined, needs: 'certificate' | 'ca'): Secret | undefined => {
    if (!name) return undefined;
    const s = secrets.get(name);
    const usable = s !== undefined && (needs === 'ca' ? Boolean(s.trustedCaPem) : Boolean(s.certificateChainPem && s.privateKeyPem));
    if (!usable) missing.push(name);
    return usable ? s : undefined;
  };
  const ca = secret(t.validationContext, 'ca');
  const cert = t.mode === 'SIMPLE' ? undefined : secret(t.certificate, 'certificate');
  if (missing.length) {
    // A secret named by file is pushed with its paths; the proxy could not read or use them (it logs why).
    const unread = missing.filter((m) => secrets.get(m)?.files);
    const unpushed = missing.filter((m) => !unread.includes(m));
    const list = (names: string[]) => `TLS secret${names.length > 1 ? 's' : ''} ${names.map((m) => `"${m}"`).join(', ')}`;
    return { unavailable: [unpushed.length ? `${list(unpushed)} not pushed` : '', unread.length ? `${list(unread)}: the files cannot be read` : ''].filter(Boolean).join('; ') };
  }
  const tlsModule = loadTls();
  const context = tlsModule.createSecureContext({
    ...(ca?.trustedCaPem ? { ca: TrustBundle.fromPem(ca.trustedCaPem).pem() } : {}),
    ...(cert ? { cert: cert.certificateChainPem, key: cert.privateKeyPem } : {}),
    minVersion: MIN_TLS_VERSION,
  });
  const alpn = t.alpn ?? (t.mode === 'ISTIO_MUTUAL' ? istioMutualAlpn(protocol) : [protocol === 'http2' ? 'h2' : 'http/1.1']);
  const sans = t.insecureSkipVerify ? undefined : t.subjectAltNames;
  const revocations = new RevocationChecker(ca?.revocations);
  const verifyHostname = !t.insecureSkipVerify && !sans?.length && t.mode !== 'ISTIO_MUTUAL';
  const checkServerIdentity = (host: string, peer: tls.PeerCertificate): Error | undefined => {
    if (sans?.length) return checkSubjectAltNames(peer.subjectaltname, sans, 'upstream');
    // Istio mutual TLS without subjectAltNames trusts any mesh certificate (the chain was verified).
    return verifyHostname ? tlsModule.checkServerIdentity(host, peer) : undefined;
  };
  const key = `tls|${t.mode}|${t.sni ?? ''}|${t.insecureSkipVerify ? 1 : 0}|${(sans ?? []).join(',')}|${alpn.join(',')}|${hashString((ca?.trustedCaPem ?? '') + JSON.stringify(ca?.revocations ?? null) + (cert?.certificateChainPem ?? '') + (cert?.privateKeyPem ?? ''))}`;
  return {
    secure: true,
    key,
    readyEvent: 'secureConnect',
    connect(host, port, opts) {
      const socket = tlsModule.connect({
        host,
        port,
        ...opts,
        secureContext: context,
        ALPNProtocols: alpn,
        // SNI carries a name, never an address (RFC 6066 §3).
        ...(t.sni ? { servername: t.sni } : {}),
        rejectUnauthorized: !t.insecureSkipVerify,
        checkServerIdentity,
      });
      // tls.connect ignores net's `noDelay` and `keepAlive` options (Node 20: only net.connect
      // applies them), so a TLS upstream kept Nagle's algorithm on: a write behind an
      // unacknowledged one waited for the peer's delayed ACK (~40 ms). Set on the socket
      // itself, before it connects, as net.connect would.
      if (opts.noDelay) socket.setNoDelay(true);
      if (opts.keepAlive) socket.setKeepAlive(true, opts.keepAliveInitialDelay ?? 0);
      return socket;
    },
    verifyPeer(socket) {
      if (revocations.empty) return undefined;
      const peer = (socket as tls.TLSSocket).getPeerX509Certificate?.();
      const reason = peer ? revocations.reason(peer as NodeX509) : undefined;
      return reason === undefined ? undefined : new SinewError('SNW_ERR_UPSTREAM_CERTIFICATE_REVOKED', `the upstream's certificate is refused: ${reason}`);
    },
  };
}

/** Istio subjectAltNames: the peer must carry one of them (URI SANs for SPIFFE IDs, DNS names otherwise). */
export function checkSubjectAltNames(subjectAltName: string | undefined, sans: readonly string[], who: 'upstream' | 'client'): Error | undefined {
  const names = (subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^(URI|DNS|IP Address):/, ''));
  if (sans.some((san) => names.includes(san))) return undefined;
  return new SinewError(who === 'upstream' ? 'SNW_ERR_UPSTREAM_SAN_MISMATCH' : 'SNW_ERR_CLIENT_SAN_MISMATCH', `${who} certificate SANs [${names.filter(Boolean).join(', ')}] match none of [${sans.join(', ')}]`);
}

// === downstream ===

export interface DownstreamTransport {
  /**
   * Terminates TLS on an accepted connection (bytes the listener peeked were put back): the
   * options' `onSecure` gets the TLS socket once the handshake is done and the client's
   * certificate passed (mutual modes), `onError` a failed handshake or a refused client.
   */
  accept(socket: net.Socket): void;
  /** Settings and secret contents: a change builds a new transport, used by new connections. */
  readonly key: string;
}

export interface DownstreamTransportOptions {
  /** The listener serves HTTP/2 (ALPN then offers `h2` first). */
  http2: boolean;
  /**
   * A TCP listener's chain: no HTTP protocols offered over ALPN (Istio's ids only, for
   * ISTIO_MUTUAL), and a client's close_notify ends its direction only, as a FIN does in
   * plaintext (tcp-proxy.ts propagates each end to the other side).
   */
  tcp?: boolean;
  /** Bound on the handshake (default 10 s). */
  handshakeTimeoutMs?: number;
  onSecure(socket: tls.TLSSocket): void;
  onError(err: Error): void;
}

/** Envoy's transport_socket_connect_timeout is off by default; a bound on a silent handshake is kinder. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

const mutual = (t: DownstreamTls) => t.mode === 'MUTUAL' || t.mode === 'ISTIO_MUTUAL';

/**
 * The protocols a listener offers over ALPN (mesh clients' `istio*` ids are accepted after them,
 * for HTTP/1.1). A TCP listener offers none but Istio's ids on ISTIO_MUTUAL chains (Istio's
 * sidecars offer `istio-peer-exchange, istio` for TCP): any other client is served whatever it offers.
 */
export function alpnProtocols(t: DownstreamTls, http2: boolean, tcp = false): string[] {
  if (t.alpn && t.alpn.length > 0) return [...t.alpn];
  if (tcp) return t.mode === 'ISTIO_MUTUAL' ? [...ISTIO_INBOUND_ALPN] : [];
  const http = http2 ? ['h2', 'http/1.1'] : ['http/1.1'];
  // A mesh client may offer only Istio's ids (Envoy does): selecting one keeps the handshake
  // going (RFC 7301 §3.2 would otherwise end it), and the connection speaks HTTP/1.1.
  return t.mode === 'ISTIO_MUTUAL' ? [...http, ...ISTIO_INBOUND_ALPN.filter((p) => http2 || p !== 'istio-h2')] : http;
}

/**
 * Whether a chain's material is the proxy's own identity not issued yet: the workload
 * certificate (`default`) without its key, or the mesh roots (`ROOTCA`) not pushed. Like a
 * listener Envoy keeps warming until SDS delivers them, such a chain is accepted and closes
 * the connections it gets (`ssl_context_warming`) until the certificate arrives, rather than
 * refusing the whole config.
 */
export function awaitingMeshIdentity(t: DownstreamTls, secrets: readonly Secret[] | undefined): boolean {
  const byName = new Map((secrets ?? []).map((s) => [s.name, s]));
  const cert = byName.get(t.certificate);
  const certMissing = t.certificate === WORKLOAD_CERTIFICATE_SECRET && (!cert?.certificateChainPem || !cert.privateKeyPem);
  const caMissing = t.validationContext === ROOT_CA_SECRET && !byName.get(ROOT_CA_SECRET)?.trustedCaPem;
  return certMissing || caMissing;
}

/**
 * Problems with a chain's TLS settings against the pushed secrets, as `[field, message]`
 * (field under the chain: `.tls.certificate`, ...); empty when the chain can terminate TLS.
 */
export function downstreamTlsProblems(t: DownstreamTls, secrets: readonly Secret[] | undefined, http2: boolean): [string, string][] {
  const out: [string, string][] = [];
  if (mutual(t) && awaitingMeshIdentity(t, secrets)) return out;
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
  for (const field of ['minProtocolVersion', 'maxProtocolVersion'] as const) {
    const v = t[field];
    if (v !== undefined && !TLS_VERSIONS.includes(v)) out.push([`.tls.${field}`, `${JSON.stringify(v)} is not one of ${TLS_VERSIONS.join(', ')}`]);
  }
  if (t.minProtocolVersion && t.maxProtocolVersion && TLS_VERSIONS.indexOf(t.minProtocolVersion) > TLS_VERSIONS.indexOf(t.maxProtocolVersion)) {
    out.push(['.tls.maxProtocolVersion', `${t.maxProtocolVersion} is older than minProtocolVersion ${t.minProtocolVersion}`]);
  }
  if (t.clientCertificateOptional && t.mode !== 'MUTUAL') out.push(['.tls.clientCertificateOptional', 'applies to MUTUAL only']);
  for (const p of t.alpn ?? []) {
    if (typeof p !== 'string' || p.length === 0 || p.length > 255) out.push(['.tls.alpn', `${JSON.stringify(p)} is not an ALPN protocol id`]);
    else if (p === 'h2' && !http2) out.push(['.tls.alpn', 'offers h2 but the listener does not serve HTTP/2 (http.http2)']);
  }
  if (out.length === 0 && cert) {
    try {
      // Bad PEM, a key that does not match the certificate, or a bundle that holds no CA,
      // fails here rather than on the first handshake.
      if (ca?.trustedCaPem) TrustBundle.fromPem(ca.trustedCaPem);
      loadTls().createSecureContext(serverContextOptions(t, cert, ca));
    } catch (err) {
      out.push(['.tls', `secret ${JSON.stringify(t.certificate)} cannot be used: ${(err as Error).message}`]);
    }
  }
  return out;
}

function serverContextOptions(t: DownstreamTls, cert: Secret, ca: Secret | undefined): tls.SecureContextOptions {
  return {
    cert: cert.certificateChainPem,
    key: cert.privateKeyPem,
    ...(mutual(t) && ca?.trustedCaPem ? { ca: ca.trustedCaPem } : {}),
    minVersion: t.minProtocolVersion ?? MIN_TLS_VERSION,
    ...(t.maxProtocolVersion ? { maxVersion: t.maxProtocolVersion } : {}),
    ...(t.cipherSuites?.length ? { ciphers: cipherList(t.cipherSuites) } : {}),
  };
}

const TLS_VERSIONS: readonly string[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * Node's `ciphers` from Envoy's cipher_suites. Envoy's list governs TLS 1.2 and below only;
 * node would turn TLS 1.3 off for a list without any TLS 1.3 suite, so its default TLS 1.3
 * suites are kept unless the list names some.
 */
function cipherList(suites: readonly string[]): string {
  if (suites.some((s) => s.startsWith('TLS_'))) return suites.join(':');
  const tls13 = loadTls().DEFAULT_CIPHERS.split(':').filter((s) => s.startsWith('TLS_'));
  return [...tls13, ...suites].join(':');
}

/**
 * A chain's TLS termination; validated by `downstreamTlsProblems` first (this asserts the
 * secrets are there). A tls.Server that never listens: the listener accepts the TCP
 * connection (and may have peeked at it) and hands it over here.
 */
export function downstreamTransport(t: DownstreamTls, secrets: readonly Secret[] | undefined, opts: DownstreamTransportOptions): DownstreamTransport {
  if (mutual(t) && awaitingMeshIdentity(t, secrets)) {
    return {
      key: JSON.stringify(['warming', t]),
      accept(socket) {
        opts.onError(new SinewError('SNW_ERR_TLS_WARMING', 'the workload certificate has not been issued yet'));
        socket.destroy();
      },
    };
  }
  const byName = new Map((secrets ?? []).map((s) => [s.name, s]));
  const cert = byName.get(t.certificate);
  if (!cert) throw new Error(`secret ${t.certificate} missing after validation`);
  const ca = mutual(t) && t.validationContext !== undefined ? byName.get(t.validationContext) : undefined;
  const requestCert = mutual(t);
  // OPTIONAL_MUTUAL: the TLS stack asks for a certificate but lets the handshake finish without
  // one; one that does not chain to the CA is refused below (Envoy's ACCEPT_UNTRUSTED is not it:
  // Istio's OPTIONAL_MUTUAL verifies what it gets).
  const optional = requestCert && t.clientCertificateOptional === true;
  const revocations = new RevocationChecker(ca?.revocations);
  const sans = t.subjectAltNames;
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const server = loadTls().createServer({
    ...serverContextOptions(t, cert, ca),
    ...(alpnProtocols(t, opts.http2, opts.tcp).length ? { ALPNProtocols: alpnProtocols(t, opts.http2, opts.tcp) } : {}),
    // MUTUAL: a client without a certificate, or with one the trust bundle does not sign,
    // fails the handshake (TLS 1.3 clients learn it on their first read: the alert follows Finished).
    requestCert,
    rejectUnauthorized: requestCert && !optional,
    handshakeTimeout: handshakeTimeoutMs,
  });
  server.on('secureConnection', (secure: tls.TLSSocket) => {
    if (requestCert) {
      // The chain was verified by the TLS stack; then the mesh CA's revocations and the SANs.
      const peer = secure.getPeerX509Certificate?.();
      const refused = !peer
        ? optional
          ? undefined
          : new SinewError('SNW_ERR_CLIENT_CERTIFICATE_MISSING', 'the client presented no certificate')
        : optional && !secure.authorized
          ? new SinewError('SNW_ERR_CLIENT_CERTIFICATE_UNTRUSTED', `the client's certificate is refused: ${String(secure.authorizationError)}`)
          : revocations.reason(peer as NodeX509) !== undefined
          ? new SinewError('SNW_ERR_CLIENT_CERTIFICATE_REVOKED', `the client's certificate is refused: ${revocations.reason(peer as NodeX509)}`)
          : sans?.length
            ? checkSubjectAltNames(peer.subjectAltName, sans, 'client')
            : t.mode === 'ISTIO_MUTUAL' && uriSans(peer as NodeX509).length === 0
              ? new SinewError('SNW_ERR_CLIENT_NOT_A_WORKLOAD', 'the client certificate carries no SPIFFE identity (URI SAN)')
              : undefined;
      if (refused !== undefined) {
        opts.onError(refused);
        secure.destroy();
        return;
      }
    }
    setConnectionInfo(secure, tlsConnectionInfo(secure));
    opts.onSecure(secure);
  });
  server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
    opts.onError(err);
    // Node emits a handshake timeout without closing the socket; a failed handshake must not
    // hold the connection (nor, through it, the listener's drain) open.
    socket.destroy();
  });
  const key = JSON.stringify([t, opts.http2, opts.tcp === true, handshakeTimeoutMs, cert.certificateChainPem, cert.privateKeyPem, ca?.trustedCaPem, ca?.revocations]);
  return {
    key,
    accept(socket) {
      // TLS ends a connection with close_notify and the TCP FIN together; with the listener's
      // half-open sockets a client's FIN would otherwise leave this side open for good. A TCP
      // chain keeps half-open (the TLS socket inherits it): its proxy closes what the peer ended.
      socket.allowHalfOpen = opts.tcp === true;
      server.emit('connection', socket);
    },
  };
}

let tlsModule: typeof tls | undefined;
let netModule: typeof net | undefined;

/**
 * node:tls, loaded the first time a listener or cluster uses TLS: it and the crypto it pulls
 * in cost a proxy ~1 MB of memory, which plaintext-only proxies should not pay.
 */
function loadTls(): typeof tls {
  return (tlsModule ??= createRequire(import.meta.url)('node:tls') as typeof tls);
}

function loadNet(): typeof net {
  return (netModule ??= createRequire(import.meta.url)('node:net') as typeof net);
}
