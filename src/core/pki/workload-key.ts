/**
 * The proxy's side of issuance: a fresh key pair and a PKCS#10 request (RFC 2986) for the
 * mesh CA. The private key stays with the caller; only the CSR, signed with it as proof of
 * possession, goes to the CA. Istio's agent does the same on every rotation (a new key each
 * time), with ECDSA P-256 or RSA 2048 keys (pilot-agent ECC_SIGNATURE_ALGORITHM, 2048-bit RSA
 * by default there; ECDSA is Sinew's default because it is much cheaper to make and to use).
 */
import { webcrypto, x509 } from './x509-library.js';

export type WorkloadKeyType = 'ecdsa-p256' | 'rsa-2048';
export const DEFAULT_WORKLOAD_KEY_TYPE: WorkloadKeyType = 'ecdsa-p256';
export const WORKLOAD_KEY_TYPES: readonly WorkloadKeyType[] = ['ecdsa-p256', 'rsa-2048'];

/** WebCrypto parameters for each key type (generation and signing). */
export function keyAlgorithm(type: WorkloadKeyType): RsaHashedKeyGenParams | EcKeyGenParams & EcdsaParams {
  return type === 'rsa-2048'
    ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
}

export interface WorkloadKeyAndCsr {
  keyType: WorkloadKeyType;
  /** PKCS#8 PEM, as node:tls takes it. Never leaves the process that made it. */
  privateKeyPem: string;
  /** The CSR to send to the CA. */
  csrPem: string;
}

export interface CsrOptions {
  keyType?: WorkloadKeyType;
  /**
   * The identity the proxy expects (a SPIFFE ID), written into the CSR's SAN as Istio's agent
   * does. The CA does not trust it: it sets the SAN from the caller's authenticated credential.
   */
  identity?: string;
}

/** Makes a new key pair and a CSR signed with it. */
export async function generateKeyAndCsr(options: CsrOptions = {}): Promise<WorkloadKeyAndCsr> {
  const keyType = options.keyType ?? DEFAULT_WORKLOAD_KEY_TYPE;
  const algorithm = keyAlgorithm(keyType);
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const extensions = options.identity ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: options.identity }])] : [];
  // An empty subject: the identity lives in the SAN only, as in Istio's workload certificates.
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: '', keys, signingAlgorithm: algorithm, extensions });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keyType, privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), csrPem: csr.toString('pem') + '\n' };
}
