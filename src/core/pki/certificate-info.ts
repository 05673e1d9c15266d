/**
 * Reading certificates with node's own X509Certificate: PEM splitting, serial numbers, URI
 * SANs, validity. Everything here is cheap enough for the proxy's handshake path and loads no
 * X.509 library (creating certificates and CSRs is `workload-key.ts`'s and the CA's job).
 */
import type crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { parseSpiffeId, type SpiffeIdentity } from './spiffe.js';

// Through require, not an ESM import: node's ESM view of node:crypto reads every export,
// which loads WebCrypto (~0.5 MB of a proxy's memory) that nothing here uses (random-hex.ts).
const { X509Certificate, createPrivateKey } = createRequire(import.meta.url)('node:crypto') as typeof crypto;
export type NodeX509 = crypto.X509Certificate;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/g;

/** One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, ...) and the block's text. */
export interface PemBlock {
  label: string;
  pem: string;
}

/** Every PEM block in `text`, in order; text between blocks is ignored, as OpenSSL does. */
export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) blocks.push({ label: m[1], pem: m[0] + '\n' });
  return blocks;
}

/** Each `CERTIFICATE` block of `text` as its own PEM string. */
export function splitPemCertificates(text: string): string[] {
  return pemBlocks(text).filter((b) => b.label === 'CERTIFICATE').map((b) => b.pem);
}

/** Parses one PEM or DER certificate with node's X509Certificate (throws on garbage). */
export function parseCertificate(pemOrDer: string | Buffer): NodeX509 {
  return new X509Certificate(pemOrDer);
}

/** True when `privateKeyPem` is the key of `cert` (false also when the key cannot be read). */
export function certificateMatchesKey(cert: NodeX509, privateKeyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(privateKeyPem));
  } catch {
    return false;
  }
}

/**
 * A serial number in one spelling: lower-case hex without colons or leading zeros. Node
 * prints `0A1B...` (upper case, a leading zero byte when the top bit is set), openssl
 * `0a:1b:...`; both name the same certificate.
 */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().replace(/:/g, '').toLowerCase();
  return hex.replace(/^0+(?=.)/, '');
}

/** True when `text` reads as a serial number (hex, optionally colon-separated as openssl prints). */
export function looksLikeSerial(text: string): boolean {
  return /^[0-9a-fA-F]{2}(:?[0-9a-fA-F]{2})*$/.test(text.trim()) || /^[0-9a-fA-F]+$/.test(text.trim());
}

/**
 * The entries of node's `subjectAltName` string (`URI:spiffe://..., DNS:a.example`). Node
 * writes a value that holds a comma, quote or other special character as a JSON string, so a
 * hostile certificate cannot smuggle a second entry inside one (CVE-2021-44532).
 */
export function subjectAltNames(cert: NodeX509): { type: string; value: string }[] {
  const text = cert.subjectAltName;
  if (!text) return [];
  const out: { type: string; value: string }[] = [];
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  let m: RegExpExecArray | null;
  while (entry.lastIndex < text.length && (m = entry.exec(text))) {
    const raw = m[2];
    out.push({ type: m[1], value: raw.startsWith('"') ? (JSON.parse(raw) as string) : raw });
  }
  return out;
}

/** The URI SANs of a certificate. */
export function uriSans(cert: NodeX509): string[] {
  return subjectAltNames(cert).filter((e) => e.type === 'URI').map((e) => e.value);
}

/** What people and proxies need to know about a workload certificate. */
export interface CertificateSummary {
  /** Normalised (see `normalizeSerial`). */
  serial: string;
  /** URI SANs (the SPIFFE IDs). */
  identities: string[];
  /** The one Istio workload identity among them, when there is exactly one. */
  spiffe?: SpiffeIdentity;
  subject: string;
  issuer: string;
  /** Milliseconds since the epoch. */
  notBefore: number;
  notAfter: number;
  isCA: boolean;
  /** SHA-256 fingerprint, colon-separated upper-case hex as node prints it. */
  fingerprint256: string;
}

export function summarizeCertificate(cert: NodeX509 | string): CertificateSummary {
  const x = typeof cert === 'string' ? parseCertificate(cert) : cert;
  const identities = uriSans(x);
  const spiffe = identities.length === 1 ? parseSpiffeId(identities[0]) : undefined;
  return {
    serial: normalizeSerial(x.serialNumber),
    identities,
    spiffe,
    // Node leaves these undefined for an empty name (Istio's workload certificates have no subject).
    subject: x.subject ?? '',
    issuer: x.issuer ?? '',
    notBefore: Date.parse(x.validFrom),
    notAfter: Date.parse(x.validTo),
    isCA: x.ca,
    fingerprint256: x.fingerprint256,
  };
}
