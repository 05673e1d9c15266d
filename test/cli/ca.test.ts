/**
 * `sinew ca` as an operator runs it: the real command in a child process against a CA
 * directory, openssl making the CSR and checking what comes back, exit codes, tables and
 * `-o json`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;
let caDir: string;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input?: string, cwd = repoRoot): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(command, args, { cwd, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      done({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
    // A command that exits without reading its input closes the pipe: that is not this test's failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}
const sinew = (...args: string[]) => run(process.execPath, ['bin/sinew.js', ...args]);
const sinewIn = (input: string, ...args: string[]) => run(process.execPath, ['bin/sinew.js', ...args], input);
const openssl = (...args: string[]) => run('openssl', args, undefined, dir);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-cli-ca-'));
  caDir = join(dir, 'ca');
  const csr = await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'workload.key', '-out', 'workload.csr', '-subj', '/CN=ignored');
  assert.equal(csr.status, 0, csr.stderr);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('sinew ca', () => {
  test('without a CA, says how to make one (exit 1)', async () => {
    const r = await sinew('ca', 'list', '--ca-dir', caDir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /✘ there is no CA in .* yet; create one with "sinew ca init"/);
  });

  test('init creates a root and intermediate (owner-only) and refuses to run twice', async () => {
    const r = await sinew('ca', 'init', '--ca-dir', caDir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /✔ created the CA in .*: a new root and intermediate, trust domain cluster\.local/);
    assert.match(r.stdout, /ROOT +O=cluster\.local, CN=Sinew Root CA \w+, expires .*SHA-256 [0-9A-F:]+/);
    assert.equal(statSync(caDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(caDir, 'ca-key.pem')).mode & 0o777, 0o600);
    const again = await sinew('ca', 'init', '--ca-dir', caDir);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already holds a CA .* pass --force/);
  });

  test('root prints the PEM roots (and JSON with -o json)', async () => {
    const pem = await sinew('ca', 'root', '--ca-dir', caDir);
    const json = await sinew('ca', 'root', '--ca-dir', caDir, '-o', 'json');
    assert.equal(pem.status, 0, pem.stderr);
    assert.equal(pem.stdout, readFileSync(join(caDir, 'root-cert.pem'), 'utf8'));
    const roots = JSON.parse(json.stdout) as { subject: string; pem: string; fingerprint256: string }[];
    assert.equal(roots.length, 1);
    assert.equal(roots[0].pem, pem.stdout);
  });

  test('sign issues a chain for the identity given, whatever the CSR says, that openssl verifies', async () => {
    const r = await sinew('ca', 'sign', '--ca-dir', caDir, '--csr', join(dir, 'workload.csr'), '--identity', 'default/reviews', '--ttl', '30m');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /✔ issued [0-9a-f]+ for spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews, valid until/);
    writeFileSync(join(dir, 'chain.pem'), r.stdout);
    const verified = await openssl('verify', '-CAfile', join(caDir, 'root-cert.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, 'chain.pem'));
    assert.equal(verified.status, 0, verified.stderr);
    const text = await openssl('x509', '-in', join(dir, 'chain.pem'), '-noout', '-text', '-dates');
    assert.match(text.stdout, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/);
    assert.doesNotMatch(text.stdout, /ignored/);
    const start = Date.parse(/notBefore=(.*)/.exec(text.stdout)![1]);
    const end = Date.parse(/notAfter=(.*)/.exec(text.stdout)![1]);
    assert.equal(end - start, 30 * 60_000);
    const key = await openssl('x509', '-in', join(dir, 'chain.pem'), '-noout', '-pubkey');
    const own = await openssl('pkey', '-in', join(dir, 'workload.key'), '-pubout');
    assert.equal(key.stdout, own.stdout, 'for the key of the CSR');
  });

  test('sign reads the CSR from stdin, and answers JSON with -o json', async () => {
    const r = await sinewIn(readFileSync(join(dir, 'workload.csr'), 'utf8'), 'ca', 'sign', '--ca-dir', caDir, '--csr', '-', '--identity', 'spiffe://cluster.local/ns/bookinfo/sa/ratings', '-o', 'json');
    assert.equal(r.status, 0, r.stderr);
    const issued = JSON.parse(r.stdout) as { identity: string; serial: string; certificateChainPem: string };
    assert.equal(issued.identity, 'spiffe://cluster.local/ns/bookinfo/sa/ratings');
    assert.match(issued.certificateChainPem, /^-----BEGIN CERTIFICATE-----/);
  });

  test('sign refuses what it cannot issue, with the reason', async () => {
    // One at a time: the suite shares two cores with other test files.
    const badTtl = await sinew('ca', 'sign', '--ca-dir', caDir, '--csr', join(dir, 'workload.csr'), '--identity', 'default/reviews', '--ttl', 'soon');
    const badIdentity = await sinew('ca', 'sign', '--ca-dir', caDir, '--csr', join(dir, 'workload.csr'), '--identity', 'reviews');
    const otherDomain = await sinew('ca', 'sign', '--ca-dir', caDir, '--csr', join(dir, 'workload.csr'), '--identity', 'spiffe://example.org/ns/default/sa/reviews');
    const notCsr = await sinew('ca', 'sign', '--ca-dir', caDir, '--csr', join(caDir, 'root-cert.pem'), '--identity', 'default/reviews');
    const usage = await sinew('ca', 'sign', '--ca-dir', caDir, '--identity', 'default/reviews');
    assert.equal(badTtl.status, 1);
    assert.match(badTtl.stderr, /--ttl "soon" is not a duration; write it like 24h/);
    assert.equal(badIdentity.status, 1);
    assert.match(badIdentity.stderr, /"reviews" is not an identity: write spiffe:\/\/cluster\.local\/ns\/<namespace>\/sa\/<service account>, or <namespace>\/<service account>/);
    assert.match(otherDomain.stderr, /in trust domain example\.org; this CA issues for cluster\.local/);
    assert.equal(notCsr.status, 1);
    assert.match(notCsr.stderr, /must be exactly one PEM "CERTIFICATE REQUEST" block; found CERTIFICATE/);
    assert.equal(usage.status, 2, 'a usage error');
    assert.match(usage.stderr, /required option '--csr <file>'/);
  });

  test('list, revoke, unrevoke: a table for people, JSON for scripts', async () => {
    const listed = await sinew('ca', 'list', '--ca-dir', caDir);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^SERIAL +IDENTITY +ISSUED +EXPIRES +STATUS$/m);
    const row = listed.stdout.split('\n').find((l) => l.includes('/ns/default/sa/reviews'))!;
    assert.match(row, /^([0-9a-f]+) +spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews +\S+ +\S+ +(valid|expired)$/);
    const serial = row.split(/ +/)[0];

    const openssl = serial.padStart(serial.length + (serial.length % 2), '0').toUpperCase().match(/../g)!.join(':');
    const bySerial = await sinew('ca', 'revoke', openssl, '--ca-dir', caDir);
    assert.equal(bySerial.status, 0, bySerial.stderr);
    assert.match(bySerial.stdout, new RegExp(`✔ revoked certificate ${serial}: proxies refuse it until`));

    const byIdentity = await sinew('ca', 'revoke', 'bookinfo/ratings', '--ca-dir', caDir, '-o', 'json');
    assert.equal(byIdentity.status, 0, byIdentity.stderr);
    assert.deepEqual({ ...JSON.parse(byIdentity.stdout), expiresAt: undefined }, { kind: 'identity', target: 'spiffe://cluster.local/ns/bookinfo/sa/ratings', changed: true, expiresAt: undefined, liveCertificates: 1 });

    const refused = await sinew('ca', 'sign', '--ca-dir', caDir, '--csr', join(dir, 'workload.csr'), '--identity', 'bookinfo/ratings');
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /identity spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/ratings was revoked .* until "sinew ca unrevoke/);

    const json = JSON.parse((await sinew('ca', 'list', '--ca-dir', caDir, '-o', 'json')).stdout) as {
      trustDomain: string;
      source: string;
      certificates: { serial: string; identity: string; status: string }[];
      revocations: { serials: { serial: string }[]; identities: { identity: string; issuanceBlocked: boolean }[] };
    };
    assert.equal(json.trustDomain, 'cluster.local');
    assert.equal(json.source, 'generated');
    assert.equal(json.certificates.find((c) => c.serial === serial)?.status, 'revoked');
    assert.equal(json.certificates.find((c) => c.identity.endsWith('/sa/ratings'))?.status, 'revoked');
    assert.deepEqual(json.revocations.serials.map((s) => s.serial), [serial]);
    assert.deepEqual(json.revocations.identities.map((i) => [i.identity, i.issuanceBlocked]), [['spiffe://cluster.local/ns/bookinfo/sa/ratings', true]]);

    const table = await sinew('ca', 'list', '--ca-dir', caDir);
    assert.match(table.stdout, /^REVOKED IDENTITY +SINCE +ISSUANCE +PROXIES REFUSE ITS OLD CERTIFICATES UNTIL$/m);
    assert.match(table.stdout, /spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/ratings +\S+ +refused +\S+/);

    const lifted = await sinew('ca', 'unrevoke', 'bookinfo/ratings', '--ca-dir', caDir);
    assert.equal(lifted.status, 0, lifted.stderr);
    assert.match(lifted.stdout, /✔ the CA issues certificates for spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/ratings again/);
    const signed = await sinew('ca', 'sign', '--ca-dir', caDir, '--csr', join(dir, 'workload.csr'), '--identity', 'bookinfo/ratings');
    assert.equal(signed.status, 0, signed.stderr);

    const unknown = await sinew('ca', 'revoke', 'abcdef', '--ca-dir', caDir);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no record of a certificate with serial abcdef; "sinew ca list" shows the certificates it issued/);
  });

  test('init --plugin-dir refuses bad cacerts with every problem, and finds the CA under --state-dir (where its control plane keeps it)', async () => {
    const plugin = join(dir, 'cacerts');
    mkdirSync(plugin);
    writeFileSync(join(plugin, 'ca-cert.pem'), readFileSync(join(caDir, 'root-cert.pem')));
    writeFileSync(join(plugin, 'ca-key.pem'), readFileSync(join(dir, 'workload.key')));
    writeFileSync(join(plugin, 'root-cert.pem'), readFileSync(join(caDir, 'root-cert.pem')));
    const stateDir = join(dir, 'state');
    const bad = await sinew('ca', 'init', '--state-dir', stateDir, '--plugin-dir', plugin);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /✘ the CA certificates in .*cacerts cannot be used:\n {2}- ca-key\.pem is not the key of ca-cert\.pem/);
    assert.ok(!existsSync(join(stateDir, 'control-plane', 'ca', 'ca.json')), 'nothing half-made is left');

    for (const f of ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']) writeFileSync(join(plugin, f), readFileSync(join(caDir, f)));
    const good = await sinew('ca', 'init', '--state-dir', stateDir, '--plugin-dir', plugin, '--trust-domain', 'example.org');
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /plug-in certificates from .*cacerts, trust domain example\.org/);
    assert.ok(existsSync(join(stateDir, 'control-plane', 'ca', 'ca.json')), 'the mesh run from the state directory uses this CA');
    const root = await sinew('ca', 'root', '--state-dir', stateDir);
    assert.equal(root.stdout, readFileSync(join(caDir, 'root-cert.pem'), 'utf8'));
  });
});
