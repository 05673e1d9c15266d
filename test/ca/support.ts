/**
 * Helpers for the CA tests: scratch directories, openssl as the independent judge of the
 * certificates, and issuing a workload certificate the way a proxy will (its own key, a CSR).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateAuthority, IssuedCertificate } from '../../src/ca/authority.js';
import { generateKeyAndCsr, type WorkloadKeyType } from '../../src/core/pki/workload-key.js';

export function scratchDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `sinew-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs openssl; resolves with its exit code and output (never rejects on a non-zero exit). */
export function openssl(args: string[], options: { cwd?: string; input?: string } = {}): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, { cwd: options.cwd, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as unknown as number) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs openssl and fails the test with its stderr when it exits non-zero. */
export async function opensslOk(args: string[], options: { cwd?: string; input?: string } = {}): Promise<string> {
  const r = await openssl(args, options);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `openssl x509 -text` of a PEM certificate. */
export function certificateText(pem: string): Promise<string> {
  return opensslOk(['x509', '-noout', '-text'], { input: pem });
}

/**
 * `openssl verify` of `leafPem` against `rootsPem` with `chainPem` as untrusted intermediates
 * (and the purpose checked when given). Returns openssl's result so tests can assert failures.
 */
export async function opensslVerify(dir: string, rootsPem: string, chainPem: string, leafPem: string, extra: string[] = []): Promise<OpensslResult> {
  const tag = Math.random().toString(36).slice(2);
  const roots = join(dir, `roots-${tag}.pem`);
  const chain = join(dir, `chain-${tag}.pem`);
  const leaf = join(dir, `leaf-${tag}.pem`);
  writeFileSync(roots, rootsPem);
  writeFileSync(chain, chainPem);
  writeFileSync(leaf, leafPem);
  return openssl(['verify', '-CAfile', roots, ...(chainPem ? ['-untrusted', chain] : []), ...extra, leaf]);
}

export interface WorkloadCredentials extends IssuedCertificate {
  privateKeyPem: string;
}

/** What a proxy does: a key of its own, a CSR, and the CA's answer. */
export async function issueFor(
  ca: CertificateAuthority,
  namespace: string,
  serviceAccount: string,
  options: { ttlMs?: number; keyType?: WorkloadKeyType; csrIdentity?: string; holder?: string } = {},
): Promise<WorkloadCredentials> {
  const { privateKeyPem, csrPem } = await generateKeyAndCsr({ keyType: options.keyType, identity: options.csrIdentity });
  const issued = await ca.sign({ csrPem, identity: { namespace, serviceAccount }, ttlMs: options.ttlMs, holder: options.holder });
  return { ...issued, privateKeyPem };
}
