/**
 * `sinew ca ...`: the mesh's certificate authority, worked on offline through its directory
 * (`<state dir>/ca`, or `--ca-dir`). Every command takes the directory's lock, so it is safe
 * beside a running control plane; changes made here reach the proxies once the control plane
 * reads them (later, `revoke` will go through the running control plane).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertificateAuthority, type CaDescription, type RevokeTarget } from '../ca/authority.js';
import { CaError } from '../ca/errors.js';
import type { IssuedRecord } from '../ca/records.js';
import type { CertificateSummary } from '../core/pki/certificate-info.js';
import { looksLikeSerial, normalizeSerial } from '../core/pki/certificate-info.js';
import { createLogger } from '../core/logger.js';
import { parseSpiffeId, type WorkloadIdentity } from '../core/pki/spiffe.js';
import { parseDurationMs } from '../config/semantic/rules.js';
import { stateDir } from './client.js';
import { CA_DIR } from '../controlplane/ca-dir.js';
import { CONTROL_PLANE_DIR } from '../mesh/state.js';
import { table, type Io } from './output.js';

export interface CaDirOptions {
  caDir?: string;
  stateDir?: string;
}

/**
 * `--ca-dir`, else the CA of the mesh run from the state directory (--state-dir,
 * SINEW_STATE_DIR or .sinew): `<state dir>/control-plane/ca`, where its control plane keeps it.
 */
export function caDir(options: CaDirOptions): string {
  return options.caDir ?? join(stateDir(options.stateDir), CONTROL_PLANE_DIR, CA_DIR);
}

// The commands print their own outcome; the CA's log lines would only repeat it.
const logger = () => createLogger({ level: (process.env.SINEW_LOG_LEVEL as 'info' | undefined) ?? 'error' });
const time = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const oneLine = (dn: string) => dn.replace(/\n/g, ', ') || '(empty)';

// === init ===

export async function runCaInit(options: CaDirOptions & { pluginDir?: string; trustDomain?: string; force?: boolean; output: string }, io: Io): Promise<number> {
  const dir = caDir(options);
  const ca = await CertificateAuthority.init({ dir, pluginDir: options.pluginDir, trustDomain: options.trustDomain, force: options.force, logger: logger() });
  const description = ca.describe();
  if (options.output === 'json') {
    io.out(JSON.stringify(describeJson(description), null, 2) + '\n');
    return 0;
  }
  io.out(`✔ ${options.force ? 'replaced the signing certificates of' : 'created'} the CA in ${dir}: ${description.source === 'plugin' ? `plug-in certificates from ${options.pluginDir}` : 'a new root and intermediate'}, trust domain ${description.trustDomain}\n`);
  io.out(header(description));
  return 0;
}

// === root ===

export async function runCaRoot(options: CaDirOptions & { output: string }, io: Io): Promise<number> {
  const ca = await CertificateAuthority.load({ dir: caDir(options), logger: logger() });
  const bundle = ca.trustBundle();
  if (options.output === 'json') io.out(JSON.stringify(bundle.roots.map((r) => ({ ...summaryJson(r), pem: r.pem })), null, 2) + '\n');
  else io.out(bundle.pem());
  return 0;
}

// === sign ===

export async function runCaSign(options: CaDirOptions & { csr: string; identity: string; ttl?: string; output: string }, io: Io, readStdin: () => Promise<string> = stdinText): Promise<number> {
  const ca = await CertificateAuthority.load({ dir: caDir(options), logger: logger() });
  const identity = workloadIdentity(options.identity, ca.trustDomain);
  let ttlMs: number | undefined;
  if (options.ttl !== undefined) {
    ttlMs = parseDurationMs(options.ttl);
    if (ttlMs === undefined || ttlMs <= 0) throw new CaError('SNW_ERR_CA_BAD_TTL', `--ttl "${options.ttl}" is not a duration; write it like 24h, 30m or 60s`);
  }
  let csrPem: string;
  try {
    csrPem = options.csr === '-' ? await readStdin() : await readFile(options.csr, 'utf8');
  } catch (err) {
    throw new CaError('SNW_ERR_CA_BAD_CSR', `cannot read the CSR ${options.csr}: ${(err as Error).message}`, [], { cause: err });
  }
  // No holder: an operator's debugging request has no credential for revocation to refuse.
  const issued = await ca.sign({ csrPem, identity, ttlMs });
  if (options.output === 'json') {
    io.out(JSON.stringify({ serial: issued.serial, identity: issued.identity, notBefore: time(issued.notBefore), notAfter: time(issued.notAfter), certificateChainPem: issued.certificateChainPem, trustBundlePem: issued.trustBundlePem }, null, 2) + '\n');
  } else {
    io.out(issued.certificateChainPem);
    io.err(`✔ issued ${issued.serial} for ${issued.identity}, valid until ${time(issued.notAfter)} (the chain is on stdout; "sinew ca root" prints the roots)\n`);
  }
  return 0;
}

// === revoke / unrevoke ===

export async function runCaRevoke(options: CaDirOptions & { target: string; output: string }, io: Io): Promise<number> {
  const ca = await CertificateAuthority.load({ dir: caDir(options), logger: logger() });
  const result = await ca.revoke(revokeTarget(options.target, ca.trustDomain));
  if (options.output === 'json') {
    io.out(JSON.stringify({ ...result, expiresAt: time(result.expiresAt) }, null, 2) + '\n');
    return 0;
  }
  if (!result.changed) {
    io.out(`${result.kind} ${result.target} was already revoked; proxies refuse it until ${time(result.expiresAt)}\n`);
    return 0;
  }
  const what = result.kind === 'serial' ? `certificate ${result.target}` : `identity ${result.target} (${result.liveCertificates} live certificate${result.liveCertificates === 1 ? '' : 's'})`;
  const renewal = result.kind === 'serial' ? 'the credential it was issued to gets no new certificate' : `the CA issues nothing for it until "sinew ca unrevoke ${result.target}"`;
  io.out(`✔ revoked ${what}: proxies refuse it until ${time(result.expiresAt)}; ${renewal}\n`);
  return 0;
}

export async function runCaUnrevoke(options: CaDirOptions & { identity: string }, io: Io): Promise<number> {
  const ca = await CertificateAuthority.load({ dir: caDir(options), logger: logger() });
  const id = spiffeIdArgument(options.identity, ca.trustDomain);
  const { changed } = await ca.unrevoke(id);
  io.out(changed ? `✔ the CA issues certificates for ${id} again; those issued before the revocation stay refused until they expire\n` : `${id} is not revoked; nothing to do\n`);
  return 0;
}

// === list ===

type Status = 'valid' | 'expired' | 'revoked';

// === rotate-root ===

/**
 * Begins a root rotation (a new root trusted beside the old one), or with `complete` makes the
 * new intermediate sign. A running control plane completes a rotation on its own once every
 * connected proxy holds the new root; `--complete` is for a CA with no mesh running.
 */
export async function runCaRotateRoot(options: CaDirOptions & { complete?: boolean; output: string }, io: Io): Promise<number> {
  const ca = await CertificateAuthority.load({ dir: caDir(options), logger: logger() });
  if (options.complete) {
    const { oldRootTrustedUntil } = await ca.completeRootRotation();
    if (options.output === 'json') io.out(JSON.stringify({ completed: true, oldRootTrustedUntil: time(oldRootTrustedUntil) }, null, 2) + '\n');
    else io.out(`✔ root rotation complete: the new root signs; the old root stays trusted until ${time(oldRootTrustedUntil)}\n`);
    return 0;
  }
  const newRoot = await ca.beginRootRotation();
  if (options.output === 'json') {
    io.out(JSON.stringify({ begun: true, newRoot: summaryJson(newRoot) }, null, 2) + '\n');
    return 0;
  }
  io.out(`✔ root rotation begun: new root ${newRoot.fingerprint256} is trusted beside the old one\n`);
  io.out('  a running control plane pushes both roots and completes the rotation once every proxy has them; with no mesh running, finish with "sinew ca rotate-root --complete"\n');
  return 0;
}

export async function runCaList(options: CaDirOptions & { output: string }, io: Io, now = Date.now()): Promise<number> {
  const ca = await CertificateAuthority.load({ dir: caDir(options), logger: logger() });
  const description = ca.describe();
  const records = await ca.issued();
  const revocations = ca.revocationRecords();
  const revokedSerials = new Set(revocations.serials.map((s) => s.serial));
  const status = (r: IssuedRecord): Status => {
    if (revokedSerials.has(r.serial) || revocations.identities.some((i) => i.identity === r.identity && r.notBefore < i.issuedBefore)) return 'revoked';
    return r.notAfter < now ? 'expired' : 'valid';
  };
  const certificates = [...records].sort((a, b) => a.notBefore - b.notBefore || a.serial.localeCompare(b.serial));
  if (options.output === 'json') {
    io.out(
      JSON.stringify(
        {
          ...describeJson(description),
          certificates: certificates.map((r) => ({ serial: r.serial, identity: r.identity, notBefore: time(r.notBefore), notAfter: time(r.notAfter), status: status(r) })),
          revocations: {
            serials: revocations.serials.map((s) => ({ serial: s.serial, identity: s.identity, revokedAt: time(s.revokedAt), expiresAt: time(s.expiresAt) })),
            identities: revocations.identities.map((i) => ({ identity: i.identity, revokedAt: time(i.revokedAt), refusedUntil: time(i.expiresAt), issuanceBlocked: i.blocked })),
          },
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  io.out(header(description));
  io.out('\n');
  if (certificates.length === 0) io.out('no workload certificates issued yet\n');
  else io.out(table(['SERIAL', 'IDENTITY', 'ISSUED', 'EXPIRES', 'STATUS'], certificates.map((r) => [r.serial, r.identity, time(r.notBefore), time(r.notAfter), status(r)])));
  if (revocations.identities.length) {
    io.out('\n');
    io.out(table(['REVOKED IDENTITY', 'SINCE', 'ISSUANCE', 'PROXIES REFUSE ITS OLD CERTIFICATES UNTIL'], revocations.identities.map((i) => [i.identity, time(i.revokedAt), i.blocked ? 'refused' : 'allowed again', time(i.expiresAt)])));
  }
  return 0;
}

// === shared ===

function header(d: CaDescription): string {
  const rows: string[][] = [['CA', `${d.dir} (${d.source}, trust domain ${d.trustDomain})`]];
  for (const root of d.roots) rows.push(['ROOT', `${oneLine(root.subject)}, expires ${time(root.notAfter)}, SHA-256 ${root.fingerprint256}`]);
  if (d.rotation) rows.push(['NEW ROOT', `${oneLine(d.rotation.newRoot.subject)}, trusted since ${time(d.rotation.startedAt)}, signing once the rotation completes`]);
  for (const r of d.retiringRoots) rows.push(['OLD ROOT', `${oneLine(r.root.subject)}, trusted until ${time(r.trustedUntil)}`]);
  rows.push(['SIGNING', `${oneLine(d.signingCertificate.subject)}, expires ${time(d.signingCertificate.notAfter)}`]);
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
}

function summaryJson(s: CertificateSummary) {
  return { subject: oneLine(s.subject), serial: s.serial, notBefore: time(s.notBefore), notAfter: time(s.notAfter), fingerprint256: s.fingerprint256 };
}

function describeJson(d: CaDescription) {
  return {
    dir: d.dir,
    trustDomain: d.trustDomain,
    source: d.source,
    roots: d.roots.map(summaryJson),
    signingCertificate: summaryJson(d.signingCertificate),
    rotation: d.rotation ? { startedAt: time(d.rotation.startedAt), newRoot: summaryJson(d.rotation.newRoot) } : undefined,
    retiringRoots: d.retiringRoots.map((r) => ({ ...summaryJson(r.root), trustedUntil: time(r.trustedUntil) })),
  };
}

/**
 * An identity as people write it: a SPIFFE ID, `<namespace>/<service account>` or
 * `ns/<namespace>/sa/<service account>`.
 */
function spiffeIdArgument(text: string, trustDomain: string): string {
  const t = text.trim();
  if (t.startsWith('spiffe://')) return t;
  const short = /^(?:ns\/)?([^/]+)\/(?:sa\/)?([^/]+)$/.exec(t);
  if (short) return `spiffe://${trustDomain}/ns/${short[1]}/sa/${short[2]}`;
  throw new CaError('SNW_ERR_CA_BAD_IDENTITY', `"${text}" is not an identity: write spiffe://${trustDomain}/ns/<namespace>/sa/<service account>, or <namespace>/<service account>`);
}

function workloadIdentity(text: string, trustDomain: string): WorkloadIdentity {
  const id = spiffeIdArgument(text, trustDomain);
  const parsed = parseSpiffeId(id);
  if (!parsed) throw new CaError('SNW_ERR_CA_BAD_IDENTITY', `"${text}" is not a workload identity: write spiffe://${trustDomain}/ns/<namespace>/sa/<service account>`);
  if (parsed.trustDomain !== trustDomain) throw new CaError('SNW_ERR_CA_BAD_IDENTITY', `${id} is in trust domain ${parsed.trustDomain}; this CA issues for ${trustDomain}`);
  return { namespace: parsed.namespace, serviceAccount: parsed.serviceAccount };
}

/** A serial (hex, with or without colons) or an identity. */
function revokeTarget(text: string, trustDomain: string): RevokeTarget {
  if (!text.includes('/') && looksLikeSerial(text)) return { serial: normalizeSerial(text) };
  return { identity: spiffeIdArgument(text, trustDomain) };
}

async function stdinText(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
