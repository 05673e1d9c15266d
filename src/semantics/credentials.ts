/**
 * TLS credentials from Secrets, as Istio reads them (pilot/pkg/credentials/kube/secrets.go):
 * a certificate chain and key under `tls.crt`/`tls.key` (kubernetes.io/tls) or `cert`/`key`
 * (generic), a CA bundle under `ca.crt` or `cacert`, or, when the credential's own Secret has
 * none, in the Secret named `<name>-cacert`. Written once for the compiler (what a gateway is
 * given), status (whether a Gateway's certificateRef is usable) and validation (warnings).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { GENERIC_SECRET_KEYS, TLS_SECRET_KEYS, secretValues, type SecretSpec } from '../api/resources/secret.js';

export interface TlsCredential {
  certificateChainPem?: string;
  privateKeyPem?: string;
  caPem?: string;
}

/** The credential a Secret holds, in Istio's two layouts (tls.* first). */
export function credentialOf(spec: SecretSpec): TlsCredential {
  const values = secretValues(spec);
  const text = (k: string) => values.get(k)?.toString('utf8');
  const out: TlsCredential = {};
  for (const keys of [TLS_SECRET_KEYS, GENERIC_SECRET_KEYS]) {
    const cert = text(keys.cert);
    const key = text(keys.key);
    if (cert !== undefined && key !== undefined && out.certificateChainPem === undefined) {
      out.certificateChainPem = cert;
      out.privateKeyPem = key;
    }
    const ca = text(keys.ca);
    if (ca !== undefined && out.caPem === undefined) out.caPem = ca;
  }
  return out;
}

/** The PEM certificates of a bundle; throws when a block is not a certificate or there is none. */
export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM certificate (-----BEGIN CERTIFICATE-----) found');
  return blocks.map((b) => new X509Certificate(b));
}

/** Why a certificate chain and key do not make a credential, or undefined when they do. */
export function credentialProblem(certPem: string, keyPem: string): string | undefined {
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(certPem);
  } catch (err) {
    return `the certificate is not PEM: ${(err as Error).message}`;
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    return `the private key is not a PEM key: ${(err as Error).message.split('\n')[0]}`;
  }
  if (!certs[0].checkPrivateKey(key)) return 'the private key does not belong to the (first) certificate';
  return undefined;
}

/** Whether a Secret holds a certificate and key a server can present. */
export function servesCertificate(spec: SecretSpec): boolean {
  const c = credentialOf(spec);
  return c.certificateChainPem !== undefined && c.privateKeyPem !== undefined && credentialProblem(c.certificateChainPem, c.privateKeyPem) === undefined;
}
