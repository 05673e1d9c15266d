/**
 * The proxy's side of issuance: a fresh key pair and a PKCS#10 request (RFC 2986) for the
 * mesh CA. The private key stays with the caller; only the CSR, signed with it as proof of
 * possession, goes to the CA. Istio's agent does the same on every rotation (a new key each
 * time), with ECDSA P-256 or RSA 2048 keys (pilot-agent ECC_SIGNATURE_ALGORITHM; 2048-bit RSA
 * by default there, ECDSA here because it is much cheaper to make and to use).
 *
 * Written with node:crypto and a few lines of DER (der.ts) rather than the X.509 library the
 * CA uses: loading that library and WebCrypto adds about 18 MB of RSS (3 MB of heap) to a
 * process (bench/ca.ts), which every sidecar would pay, and a CSR is one fixed structure.
 * The CA parses and verifies what arrives with the library, and tests check it with openssl.
 */
import type crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { bitString, context, INTEGER_ZERO, NULL, octetString, oid, pem, sequence, set, tlv } from './der.js';

// Through require, not an ESM import: node's ESM view of node:crypto loads WebCrypto (random-hex.ts).
const { generateKeyPair, sign } = createRequire(import.meta.url)('node:crypto') as typeof crypto;
const generateKeyPairAsync = promisify(generateKeyPair);

export type WorkloadKeyType = 'ecdsa-p256' | 'rsa-2048';
export const DEFAULT_WORKLOAD_KEY_TYPE: WorkloadKeyType = 'ecdsa-p256';
export const WORKLOAD_KEY_TYPES: readonly WorkloadKeyType[] = ['ecdsa-p256', 'rsa-2048'];

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
};

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

/** Makes a new key pair (off the event loop) and a CSR signed with it. */
export async function generateKeyAndCsr(options: CsrOptions = {}): Promise<WorkloadKeyAndCsr> {
  const keyType = options.keyType ?? DEFAULT_WORKLOAD_KEY_TYPE;
  if (!WORKLOAD_KEY_TYPES.includes(keyType)) throw new TypeError(`unknown key type "${keyType}"; use ${WORKLOAD_KEY_TYPES.join(' or ')}`);
  const { publicKey, privateKey } =
    keyType === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })
      : await generateKeyPairAsync('ec', { namedCurve: 'P-256' });

  // RFC 2986 4.1 CertificationRequestInfo: version 0, an empty subject (the identity lives in
  // the SAN only, as in Istio's workload certificates), the key, and attributes [0].
  const info = sequence(INTEGER_ZERO, sequence(), publicKey.export({ type: 'spki', format: 'der' }), context(0, ...sanRequest(options.identity)));
  // ECDSA signatures come DER-encoded (r, s) from node, as X.509 wants them (RFC 3279 2.2.3).
  const signature = sign('sha256', info, privateKey);
  const algorithm = keyType === 'rsa-2048' ? sequence(oid(OID.sha256WithRsa), NULL) : sequence(oid(OID.ecdsaWithSha256));
  return {
    keyType,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: pem('CERTIFICATE REQUEST', sequence(info, algorithm, bitString(signature))),
  };
}

/** The extensionRequest attribute (PKCS#9) asking for one URI SAN, or nothing. */
function sanRequest(identity: string | undefined): Buffer[] {
  if (!identity) return [];
  // A URI GeneralName is [6] IMPLICIT IA5String: ASCII only.
  if (!/^[\x21-\x7e]+$/.test(identity)) throw new TypeError(`"${identity}" cannot be a URI SAN: it must be printable ASCII`);
  const san = sequence(tlv(0x86, Buffer.from(identity, 'ascii')));
  return [sequence(oid(OID.extensionRequest), set(sequence(sequence(oid(OID.subjectAltName), octetString(san)))))];
}
