/**
 * The CA's signing material, in the layout of Istio's `cacerts` secret: `ca-cert.pem` (the
 * certificate that signs workloads), `ca-key.pem` (its key), `cert-chain.pem` (the chain from
 * ca-cert up to the root, served after every workload certificate) and `root-cert.pem` (the
 * roots proxies trust). The CA's own generated root and intermediate are stored the same way,
 * so plug-in files and a reloaded state directory pass the same checks.
 *
 * The checks are Istio's (security/pkg/pki/util/keycertbundle.go Verify and
 * security/pkg/pki/ca/ca.go NewPluggedCertIstioCAOptions), with every problem reported at once:
 *
 * - ca-cert.pem parses, and verifies up to a root of root-cert.pem through cert-chain.pem:
 *   signatures, validity now, issuers that are CAs allowed to sign certificates;
 * - ca-key.pem parses and is the key of ca-cert.pem;
 * - ca-cert.pem is a CA ("certificate is not authorized to sign other certificates").
 *
 * Two checks go further than Istio, because the workload certificates would fail anyway:
 * path length constraints count ca-cert as an intermediate above a workload leaf, and the key
 * must be one WebCrypto signs with (ECDSA P-256/P-384, RSA of 2048 bits or more).
 */
import type crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { x509 } from './x509-library.js';
import { pemBlocks, splitPemCertificates, type NodeX509 } from '../core/pki/certificate-info.js';
import { TrustBundle } from '../core/pki/trust-bundle.js';
import { CaError, type CaErrorCode } from './errors.js';
import { certificatePem, importSigningKey, type SigningKey } from './x509-build.js';

const { X509Certificate, createPrivateKey } = createRequire(import.meta.url)('node:crypto') as typeof crypto;

/** The four files of Istio's `cacerts` secret, as text. */
export interface SigningBundleFiles {
  caCertPem: string;
  caKeyPem: string;
  /** Optional, as in Istio: without it ca-cert must be signed by a root directly. */
  certChainPem?: string;
  rootCertPem: string;
}

export const CA_CERT_FILE = 'ca-cert.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const CERT_CHAIN_FILE = 'cert-chain.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';

/** Verified signing material, ready to issue with. */
export interface SigningBundle {
  caCert: x509.X509Certificate;
  caCertNode: NodeX509;
  caCertPem: string;
  caKeyPem: string;
  signingKey: SigningKey;
  /** Served after each workload certificate: ca-cert first, then up towards the root. */
  chainPems: string[];
  /** root-cert.pem: every root proxies must trust for this material. */
  roots: TrustBundle;
  /** The root the ca-cert chains to. */
  anchor: NodeX509;
  /** The earliest notAfter along ca-cert's path (ms): no workload certificate may outlive it. */
  pathNotAfter: number;
}

interface Candidate {
  label: string;
  node: NodeX509;
  px: x509.X509Certificate;
  isRoot: boolean;
}

const MAX_PATH = 8;

/**
 * Checks the files and returns the material to sign with, or throws a CaError listing every
 * problem. `code` tells plug-in files from the CA's own reloaded state; `where` names the
 * directory in the message.
 */
export async function verifySigningBundle(files: SigningBundleFiles, now: number, where: string, code: CaErrorCode = 'SNW_ERR_CA_PLUGIN_CERTS'): Promise<SigningBundle> {
  const problems: string[] = [];

  const caCert = readCertificates(files.caCertPem, CA_CERT_FILE, problems)[0];
  if (!caCert && !problems.length) problems.push(`${CA_CERT_FILE}: holds no PEM certificate (failed to parse cert PEM)`);
  const chain = files.certChainPem ? readCertificates(files.certChainPem, CERT_CHAIN_FILE, problems) : [];

  let roots: TrustBundle | undefined;
  const rootCandidates: Candidate[] = [];
  const rootBlocks = splitPemCertificates(files.rootCertPem);
  if (rootBlocks.length === 0) problems.push(`${ROOT_CERT_FILE}: holds no PEM certificate`);
  else {
    const parsed = readCertificates(files.rootCertPem, ROOT_CERT_FILE, problems);
    try {
      roots = TrustBundle.fromPem(files.rootCertPem);
      for (const c of parsed) rootCandidates.push({ ...c, isRoot: true });
    } catch (err) {
      if (parsed.length === rootBlocks.length) problems.push(`${ROOT_CERT_FILE}: ${(err as Error).message}`);
    }
  }

  let signingKey: SigningKey | undefined;
  try {
    signingKey = await importSigningKey(files.caKeyPem);
  } catch (err) {
    problems.push(`${CA_KEY_FILE}: cannot be used as the signing key (failed to parse private key PEM): ${(err as Error).message}`);
  }

  let anchor: NodeX509 | undefined;
  let pathNotAfter = Infinity;
  if (caCert) {
    if (!basicConstraintsCa(caCert)) problems.push(`${CA_CERT_FILE} (${subjectOf(caCert.node)}) is not a CA certificate: it is not authorized to sign other certificates (basic constraints CA:TRUE is required)`);
    else {
      const usage = keyUsageProblem(caCert);
      if (usage) problems.push(usage);
    }
    if (signingKey) {
      let matches = false;
      try {
        matches = caCert.node.checkPrivateKey(createPrivateKey(files.caKeyPem));
      } catch {
        matches = false;
      }
      if (!matches) problems.push(`${CA_KEY_FILE} is not the key of ${CA_CERT_FILE} (the cert does not match the key)`);
    }
    if (rootCandidates.length) {
      const start: Candidate = { ...caCert, isRoot: false };
      const result = buildPath([start], chain.map((c) => ({ ...c, isRoot: false })), rootCandidates, now);
      if ('error' in result) problems.push(`cannot verify ${CA_CERT_FILE} with the roots of ${ROOT_CERT_FILE}${files.certChainPem ? ` through ${CERT_CHAIN_FILE}` : ` (there is no ${CERT_CHAIN_FILE})`}: ${result.error}`);
      else {
        anchor = result.path[result.path.length - 1].node;
        pathNotAfter = Math.min(...result.path.map((c) => Date.parse(c.node.validTo)));
      }
    }
  }

  if (problems.length || !caCert || !signingKey || !roots || !anchor) {
    throw new CaError(code, `the CA certificates in ${where} cannot be used:`, problems);
  }

  const caCertPem = certificatePem(caCert.px);
  const chainPems = chain.map((c) => certificatePem(c.px));
  if (chain.length === 0 || chain[0].node.fingerprint256 !== caCert.node.fingerprint256) chainPems.unshift(caCertPem);
  return { caCert: caCert.px, caCertNode: caCert.node, caCertPem, caKeyPem: files.caKeyPem, signingKey, chainPems, roots, anchor, pathNotAfter };
}

/** Every certificate of a PEM file; unreadable ones become problems naming the file and position. */
function readCertificates(text: string, file: string, problems: string[]): Omit<Candidate, 'isRoot'>[] {
  const out: Omit<Candidate, 'isRoot'>[] = [];
  const blocks = pemBlocks(text).filter((b) => b.label === 'CERTIFICATE');
  for (const [i, block] of blocks.entries()) {
    const label = blocks.length > 1 ? `${file} certificate ${i + 1}` : file;
    try {
      out.push({ label, node: new X509Certificate(block.pem), px: new x509.X509Certificate(block.pem) });
    } catch (err) {
      problems.push(`${label}: not a valid certificate (failed to parse cert PEM): ${(err as Error).message}`);
    }
  }
  return out;
}

function subjectOf(node: NodeX509): string {
  return node.subject.replace(/\n/g, ', ') || '(empty subject)';
}

/**
 * Basic constraints CA:TRUE, read from the extension itself: node's `ca` also says false when
 * the key usage lacks keyCertSign, and that deserves its own message.
 */
function basicConstraintsCa(c: Omit<Candidate, 'isRoot'>): boolean {
  return c.px.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

function keyUsageProblem(c: Omit<Candidate, 'isRoot'>): string | undefined {
  const usage = c.px.getExtension(x509.KeyUsagesExtension);
  // RFC 5280 4.2.1.3: a key that signs certificates must carry keyCertSign when key usage is present.
  if (usage && !(usage.usages & x509.KeyUsageFlags.keyCertSign)) return `${c.label} (${subjectOf(c.node)}) has a key usage without keyCertSign: it is not authorized to sign other certificates`;
  return undefined;
}

function validityProblem(c: Candidate, now: number): string | undefined {
  const from = Date.parse(c.node.validFrom);
  const to = Date.parse(c.node.validTo);
  if (now < from) return `${c.label} (${subjectOf(c.node)}) is not yet valid: current time ${new Date(now).toISOString()} is before ${new Date(from).toISOString()}`;
  if (now > to) return `${c.label} (${subjectOf(c.node)}) has expired: current time ${new Date(now).toISOString()} is after ${new Date(to).toISOString()}`;
  return undefined;
}

/**
 * Why `issuer` may not sign the certificate below it, with `below` certificates between it
 * and a workload leaf (ca-cert counts: it is an intermediate for the workloads).
 */
function issuerProblem(issuer: Candidate, below: number, now: number): string | undefined {
  if (!basicConstraintsCa(issuer)) return `${issuer.label} (${subjectOf(issuer.node)}) is not a CA certificate: it is not authorized to sign other certificates`;
  const usage = keyUsageProblem(issuer);
  if (usage) return usage;
  const constraints = issuer.px.getExtension(x509.BasicConstraintsExtension);
  if (constraints?.pathLength !== undefined && below > constraints.pathLength) {
    return `${issuer.label} (${subjectOf(issuer.node)}) allows ${constraints.pathLength} intermediate(s) below it (pathlen ${constraints.pathLength}), but the workload certificates would have ${below}`;
  }
  return validityProblem(issuer, now);
}

/** Depth-first search for a path from path[0] to a root; the first error explains a failure. */
function buildPath(path: Candidate[], intermediates: Candidate[], roots: Candidate[], now: number): { path: Candidate[] } | { error: string } {
  const current = path[path.length - 1];
  if (path.length === 1) {
    const own = validityProblem(current, now);
    if (own) return { error: own };
  }
  // ca-cert may itself be a root (a self-signed signing certificate, Istio's own default).
  if (roots.some((r) => r.node.fingerprint256 === current.node.fingerprint256)) return { path };
  if (path.length > MAX_PATH) return { error: `the chain is longer than ${MAX_PATH} certificates` };
  const issuers = [...roots, ...intermediates.filter((c) => !path.includes(c))].filter((c) => c.node.subject === current.node.issuer);
  if (issuers.length === 0) {
    return { error: `${current.label} (${subjectOf(current.node)}) is issued by "${current.node.issuer.replace(/\n/g, ', ')}", which is in neither ${ROOT_CERT_FILE} nor ${CERT_CHAIN_FILE} (certificate signed by unknown authority)` };
  }
  let error = '';
  for (const issuer of issuers) {
    if (!current.node.verify(issuer.node.publicKey)) {
      error ||= `${current.label} (${subjectOf(current.node)}) is not signed by the key of ${issuer.label} (${subjectOf(issuer.node)})`;
      continue;
    }
    const problem = issuerProblem(issuer, path.length, now);
    if (problem) {
      error ||= problem;
      continue;
    }
    if (issuer.isRoot) return { path: [...path, issuer] };
    const longer = buildPath([...path, issuer], intermediates, roots, now);
    if ('path' in longer) return longer;
    error ||= longer.error;
  }
  return { error };
}
