/**
 * Istio's server TLS settings as a proxy applies them: the cipher suites Envoy accepts
 * (security.IsValidCipherSuite; validation warns about the others and the proxy leaves them
 * out), TLS protocol versions from the API's names to OpenSSL's, and whether a server speaks
 * HTTP inside. Written once for validation (src/config/semantic/gateway.ts, config/not-enforced.ts)
 * and the compiler (gateway servers).
 */
import type { TlsVersion } from '../api/proxy-config.js';

/** Cipher suites Envoy accepts (Istio's security.ValidCipherSuites). */
export const VALID_CIPHER_SUITES: ReadonlySet<string> = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-PSK-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA', 'ECDHE-PSK-AES128-CBC-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-RSA-AES256-SHA', 'ECDHE-PSK-AES256-CBC-SHA',
  'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-SHA', 'PSK-AES128-CBC-SHA', 'AES256-SHA', 'PSK-AES256-CBC-SHA', 'DES-CBC3-SHA',
  'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-RSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-RSA-AES256-SHA384',
  'AES128-SHA256', 'AES256-SHA256', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
]);

/** The valid suites of a list, each once, in the order given (Istio's filteredCipherSuites). */
export function usableCipherSuites(suites: readonly string[] | undefined): string[] {
  return [...new Set((suites ?? []).filter((s) => VALID_CIPHER_SUITES.has(s)))];
}

/** `TLSV1_2` -> `TLSv1.2`; `TLS_AUTO` and absent -> undefined (the proxy's default). */
export function tlsVersion(v: string | undefined): TlsVersion | undefined {
  switch (v) {
    case 'TLSV1_0':
      return 'TLSv1';
    case 'TLSV1_1':
      return 'TLSv1.1';
    case 'TLSV1_2':
      return 'TLSv1.2';
    case 'TLSV1_3':
      return 'TLSv1.3';
    default:
      return undefined;
  }
}

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

/**
 * Whether a Gateway server speaks HTTP inside (Istio's protocol IsHTTP, or HTTPS terminated at the
 * gateway), rather than TCP bytes: plain TCP, TLS passed through (PASSTHROUGH, AUTO_PASSTHROUGH)
 * or protocol TLS, terminated or not.
 */
export function serverSpeaksHttp(server: { port: { protocol: string }; tls?: { mode?: string } }): boolean {
  const p = server.port.protocol.toUpperCase();
  if (HTTP_PROTOCOLS.has(p)) return true;
  return p === 'HTTPS' && server.tls?.mode !== 'PASSTHROUGH' && server.tls?.mode !== 'AUTO_PASSTHROUGH';
}
