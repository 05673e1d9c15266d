/**
 * The certificates the CA makes, field by field, and the keys it signs them with. The
 * profiles follow Istio's (security/pkg/pki/util/generate_cert.go) and RFC 5280:
 *
 * - root: self-signed, CA, key usage keyCertSign + cRLSign (critical), subject key identifier;
 * - intermediate: CA with pathLenConstraint 0 (it signs workloads only), same key usages,
 *   authority and subject key identifiers;
 * - workload: not a CA, digitalSignature + keyEncipherment, serverAuth + clientAuth (one
 *   certificate for both directions of mutual TLS), an empty subject and the SPIFFE ID as the
 *   only SAN, a URI — critical, since RFC 5280 4.2.1.6 requires it when the subject is empty.
 *
 * Serial numbers are 127 random bits (RFC 5280 4.1.2.2: positive, at most 20 octets; CA/B
 * Forum asks for at least 64 bits of entropy).
 */
import type crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { webcrypto, x509 } from './x509-library.js';

const { createPrivateKey, randomBytes } = createRequire(import.meta.url)('node:crypto') as typeof crypto;

/** A private key the CA signs with, imported into WebCrypto, and the algorithm to sign with. */
export interface SigningKey {
  key: CryptoKey;
  algorithm: EcdsaParams | Algorithm;
  /** `ECDSA P-256`, `RSA 2048`, ... for messages and `sinew ca list`. */
  description: string;
}

const CA_KEY_ALGORITHM: EcKeyGenParams & EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const EC_CURVES: Record<string, { curve: string; hash: string }> = {
  prime256v1: { curve: 'P-256', hash: 'SHA-256' },
  secp384r1: { curve: 'P-384', hash: 'SHA-384' },
};

/** A new ECDSA P-256 key pair for a root or intermediate. */
export async function generateCaKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(CA_KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function signingKeyFromPair(keys: CryptoKeyPair): Promise<SigningKey> {
  return { key: keys.privateKey, algorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams, description: 'ECDSA P-256' };
}

/** PKCS#8 PEM of an extractable private key. */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/**
 * Imports a PEM private key (PKCS#8, or the PKCS#1 / SEC1 forms openssl writes) for signing.
 * Accepts what Istio's CA signs with that WebCrypto can sign with: ECDSA P-256 and P-384, RSA
 * of 2048 bits or more. Throws an Error whose message says why a key does not fit.
 */
export async function importSigningKey(pem: string): Promise<SigningKey> {
  const key = createPrivateKey(pem);
  const der = key.export({ format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType === 'ec') {
    const named = EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!named) throw new Error(`it is an EC key on curve ${key.asymmetricKeyDetails?.namedCurve}; the CA signs with P-256 or P-384 keys`);
    const imported = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: named.curve }, false, ['sign']);
    return { key: imported, algorithm: { name: 'ECDSA', hash: named.hash } as EcdsaParams, description: `ECDSA ${named.curve}` };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`it is a ${bits}-bit RSA key; the CA signs with RSA keys of 2048 bits or more`);
    const imported = await webcrypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
    return { key: imported, algorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as Algorithm, description: `RSA ${bits}` };
  }
  throw new Error(`it is an ${key.asymmetricKeyType} key; the CA signs with ECDSA (P-256, P-384) or RSA keys`);
}

/** 16 random bytes with the top bit clear: a positive INTEGER that never needs a padding byte. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex');
}

/** A short random tag that keeps the subjects of successive roots and intermediates apart. */
function generationTag(): string {
  return randomBytes(4).toString('hex');
}

function caExtensions(pathLength: number | undefined): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
}

/**
 * The authority key identifier for certificates `issuer` signs: the issuer's own subject key
 * identifier when it has one (a plug-in CA may compute it differently from us), else the
 * SHA-1 of its key as RFC 5280 4.2.1.2 suggests.
 */
async function authorityKeyId(issuer: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey);
}

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** A self-signed root for the mesh: `O=<trust domain>, CN=Sinew Root CA <tag>`. */
export async function createRootCertificate(keys: CryptoKeyPair, trustDomain: string, validity: Validity): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ O: [trustDomain] }, { CN: [`Sinew Root CA ${generationTag()}`] }],
    ...validity,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    // pathlen 1: the root signs one level of intermediates, which sign workloads.
    extensions: [...caExtensions(1), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
}

/** The mesh's intermediate (the certificate that signs workloads), under `issuer`. */
export async function createIntermediateCertificate(
  publicKey: CryptoKey,
  issuer: { cert: x509.X509Certificate; key: SigningKey },
  trustDomain: string,
  validity: Validity,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ O: [trustDomain] }, { CN: [`Sinew Intermediate CA ${generationTag()}`] }],
    issuer: issuer.cert.subjectName,
    ...validity,
    publicKey,
    signingKey: issuer.key.key,
    signingAlgorithm: issuer.key.algorithm,
    extensions: [...caExtensions(0), await x509.SubjectKeyIdentifierExtension.create(publicKey), await authorityKeyId(issuer.cert)],
  });
}

/** A workload certificate for `spiffeId` on the CSR's public key. */
export async function createWorkloadCertificate(
  publicKey: x509.PublicKey,
  spiffeId: string,
  serial: string,
  issuer: { cert: x509.X509Certificate; key: SigningKey },
  validity: Validity,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: '',
    issuer: issuer.cert.subjectName,
    ...validity,
    publicKey,
    signingKey: issuer.key.key,
    signingAlgorithm: issuer.key.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
      await authorityKeyId(issuer.cert),
    ],
  });
}

/** PEM with a trailing newline, the form every file and chain here uses. */
export function certificatePem(cert: x509.X509Certificate): string {
  return cert.toString('pem') + '\n';
}
