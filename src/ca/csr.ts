/**
 * Reading a certificate signing request (PKCS#10, RFC 2986) from a proxy. The CA checks that
 * the request is signed by the key it carries (proof of possession) and that the key is one
 * it issues for (ECDSA P-256 / P-384, RSA 2048 or more, as Istio's CA); it takes nothing else
 * from the request: the subject and SANs asked for are ignored, the identity comes from the
 * caller's authenticated credential.
 */
import type crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { x509 } from './x509-library.js';
import { pemBlocks } from '../core/pki/certificate-info.js';
import { CaError } from './errors.js';

const { createPublicKey } = createRequire(import.meta.url)('node:crypto') as typeof crypto;

/** Far larger than any real CSR (an RSA 4096 request is about 1.7 KB of PEM). */
export const MAX_CSR_BYTES = 64 * 1024;

export interface VerifiedCsr {
  publicKey: x509.PublicKey;
  /** `ECDSA P-256`, `RSA 2048`, ... */
  keyDescription: string;
  /** URI SANs the request asked for (ignored for issuance; kept for logs). */
  requestedUris: string[];
}

const bad = (message: string, cause?: unknown) => new CaError('SNW_ERR_CA_BAD_CSR', message, [], { cause });

/** Parses and verifies a PEM CSR. Throws CaError `SNW_ERR_CA_BAD_CSR` with the reason. */
export async function verifyCsr(pem: string): Promise<VerifiedCsr> {
  if (typeof pem !== 'string' || pem.length === 0) throw bad('the CSR is empty: send a PEM "CERTIFICATE REQUEST"');
  if (Buffer.byteLength(pem) > MAX_CSR_BYTES) throw bad(`the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  const blocks = pemBlocks(pem);
  const requests = blocks.filter((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  if (requests.length !== 1) {
    const found = blocks.length ? `found ${blocks.map((b) => b.label).join(', ')}` : 'found no PEM block';
    throw bad(`the CSR must be exactly one PEM "CERTIFICATE REQUEST" block; ${found}`);
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(requests[0].pem);
  } catch (err) {
    throw bad(`the CSR is not a valid PKCS#10 request: ${(err as Error).message}`, err);
  }
  const keyDescription = describeKey(csr.publicKey.rawData);
  let signed: boolean;
  try {
    signed = await csr.verify();
  } catch (err) {
    throw bad(`the CSR's signature cannot be checked: ${(err as Error).message}`, err);
  }
  if (!signed) throw bad("the CSR's signature does not match its public key: it must be signed by the key the certificate is for");
  const requestedUris = csr.extensions
    .filter((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension)
    .flatMap((san) => san.names.items.filter((n) => n.type === 'url').map((n) => n.value));
  return { publicKey: csr.publicKey, keyDescription, requestedUris };
}

/** Names the key, or throws when the CA does not issue for it. */
function describeKey(spki: ArrayBuffer): string {
  let key: crypto.KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw bad(`the CSR's public key cannot be read: ${(err as Error).message}`, err);
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ECDSA P-256';
    if (curve === 'secp384r1') return 'ECDSA P-384';
    throw bad(`the CSR's key is on curve ${curve}; the CA issues for ECDSA P-256 (the default) or P-384 keys, or RSA of 2048 bits or more`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw bad(`the CSR's key is a ${bits}-bit RSA key; the CA issues for RSA keys of 2048 bits or more, or ECDSA P-256`);
    return `RSA ${bits}`;
  }
  throw bad(`the CSR's key is an ${key.asymmetricKeyType} key; the CA issues for ECDSA P-256 (the default) or P-384 keys, or RSA of 2048 bits or more`);
}
