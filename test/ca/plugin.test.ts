/**
 * Plug-in CA certificates, as Istio's `cacerts` secret holds them (istio.io "Plug in CA
 * Certificates"; istio/istio tools/certs): ca-cert.pem, ca-key.pem, root-cert.pem,
 * cert-chain.pem. Made here with openssl, as an operator would. Good ones are used to sign
 * workloads; bad ones are refused with every problem named, as Istio refuses them
 * (security/pkg/pki/util/keycertbundle.go Verify, security/pkg/pki/ca/ca.go), and a refused
 * replacement leaves the CA in force untouched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { CaError } from '../../src/ca/errors.js';
import { ManualClock } from '../../src/core/clock.js';
import { splitPemCertificates } from '../../src/core/pki/certificate-info.js';
import { certificateText, issueFor, opensslOk, opensslVerify, scratchDir } from './support.js';

let scratch: ReturnType<typeof scratchDir>;
let pki: string;

/** openssl in the PKI folder. */
const run = (...args: string[]) => opensslOk(args, { cwd: pki });

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';

/** A self-signed root, as `make -f Makefile.selfsigned.mk root-ca` does (RSA here, to sign with RSA too). */
async function root(name: string, key: string[] = ['-newkey', 'rsa:2048'], extra = ''): Promise<void> {
  await run('req', '-x509', ...key, '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}-cert.pem`, '-days', '30', '-subj', `/O=Istio/CN=${name}`,
    '-addext', `basicConstraints=critical,CA:TRUE${extra}`, '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

/** A certificate for `name` signed by `issuer`, with the extensions given. */
async function signed(name: string, issuer: string, ext: string, key: string[] = ['-newkey', 'rsa:2048'], days = '30'): Promise<void> {
  writeFileSync(join(pki, `${name}.ext`), ext);
  await run('req', '-new', ...key, '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/O=Istio/CN=${name}`);
  await run('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}-cert.pem`, '-CAkey', `${issuer}-key.pem`, '-CAcreateserial', '-out', `${name}-cert.pem`, '-days', days, '-extfile', `${name}.ext`);
}

const read = (name: string) => readFileSync(join(pki, name), 'utf8');

/** A cacerts directory from the PKI's files: ca-cert/ca-key from `ca`, the chain of `chain` names, the root(s). */
function cacerts(dirName: string, files: { caCert: string; caKey: string; chain?: string[]; roots: string[] }): string {
  const dir = join(scratch.dir, 'cacerts', dirName);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ca-cert.pem'), read(`${files.caCert}-cert.pem`));
  writeFileSync(join(dir, 'ca-key.pem'), read(`${files.caKey}-key.pem`));
  if (files.chain) writeFileSync(join(dir, 'cert-chain.pem'), files.chain.map((n) => read(`${n}-cert.pem`)).join(''));
  writeFileSync(join(dir, 'root-cert.pem'), files.roots.map((n) => read(`${n}-cert.pem`)).join(''));
  return dir;
}

before(async () => {
  scratch = scratchDir('ca-plugin');
  pki = join(scratch.dir, 'pki');
  mkdirSync(pki);
  await root('root');
  await root('other-root');
  // Same name as "root", another key: a chain that names the right issuer but is not signed by it.
  await run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'twin-key.pem', '-out', 'twin-cert.pem', '-days', '30', '-subj', '/O=Istio/CN=root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  await root('strict-root', ['-newkey', 'rsa:2048'], ',pathlen:0');
  await signed('cluster1', 'root', CA_EXT.replace('CA:TRUE', 'CA:TRUE,pathlen:0'));
  await signed('middle', 'root', CA_EXT);
  await signed('cluster2', 'middle', CA_EXT, ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  await signed('leafy', 'root', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
  await signed('signonly', 'root', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n');
  await signed('under-strict', 'strict-root', CA_EXT);
  await signed('short', 'root', CA_EXT, ['-newkey', 'rsa:2048'], '1');
  await run('genpkey', '-algorithm', 'ed25519', '-out', 'ed-key.pem');
  await run('req', '-x509', '-key', 'ed-key.pem', '-out', 'ed-cert.pem', '-days', '30', '-subj', '/O=Istio/CN=ed', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
});
after(() => scratch.cleanup());

async function refused(pluginDir: string, ...patterns: RegExp[]): Promise<CaError> {
  const dir = join(scratch.dir, 'refused', Math.random().toString(36).slice(2));
  let caught: CaError | undefined;
  await assert.rejects(CertificateAuthority.init({ dir, pluginDir }), (err: unknown) => {
    assert.ok(err instanceof CaError, String(err));
    caught = err;
    return true;
  });
  assert.equal(caught!.code, 'SNW_ERR_CA_PLUGIN_CERTS');
  for (const p of patterns) assert.match(caught!.message, p);
  return caught!;
}

describe('plug-in certificates that Istio accepts', () => {
  test('an intermediate under the operator\'s root signs workloads that chain to that root', async () => {
    const dir = cacerts('good', { caCert: 'cluster1', caKey: 'cluster1', chain: ['cluster1', 'root'], roots: ['root'] });
    const ca = await CertificateAuthority.init({ dir: join(scratch.dir, 'good-ca'), pluginDir: dir });
    assert.equal(ca.source, 'plugin');
    assert.equal(ca.trustBundle().pem(), read('root-cert.pem'));
    for (const f of ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']) assert.equal(statSync(join(ca.dir, f)).mode & 0o777, 0o600, `${f} copied owner-only`);
    const issued = await issueFor(ca, 'default', 'reviews');
    const verified = await opensslVerify(scratch.dir, read('root-cert.pem'), issued.certificateChainPem, issued.certificatePem, ['-purpose', 'sslclient']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(await certificateText(issued.certificatePem), /Signature Algorithm: sha256WithRSAEncryption[\s\S]*URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/);
    assert.equal((await CertificateAuthority.load({ dir: ca.dir })).source, 'plugin', 'reloaded as a plug-in CA');
  });

  test('without cert-chain.pem, an intermediate signed by the root directly (its certificate is served after the leaf)', async () => {
    const dir = cacerts('no-chain', { caCert: 'cluster1', caKey: 'cluster1', roots: ['root'] });
    const ca = await CertificateAuthority.init({ dir: join(scratch.dir, 'no-chain-ca'), pluginDir: dir });
    const issued = await issueFor(ca, 'default', 'reviews');
    assert.equal(splitPemCertificates(issued.certificateChainPem).length, 2);
    const verified = await opensslVerify(scratch.dir, read('root-cert.pem'), issued.certificateChainPem, issued.certificatePem);
    assert.equal(verified.code, 0, verified.stderr);
  });

  test('three levels with the chain, an EC signing key, and two roots in root-cert.pem (a root migration)', async () => {
    const dir = cacerts('three', { caCert: 'cluster2', caKey: 'cluster2', chain: ['cluster2', 'middle', 'root'], roots: ['other-root', 'root'] });
    const ca = await CertificateAuthority.init({ dir: join(scratch.dir, 'three-ca'), pluginDir: dir });
    assert.equal(ca.trustBundle().roots.length, 2);
    const issued = await issueFor(ca, 'default', 'reviews');
    const verified = await opensslVerify(scratch.dir, read('root-cert.pem'), issued.certificateChainPem, issued.certificatePem);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(await certificateText(issued.certificatePem), /Signature Algorithm: ecdsa-with-SHA256/);
  });

  test('workload certificates stop where the plug-in intermediate does', async () => {
    const dir = cacerts('short', { caCert: 'short', caKey: 'short', chain: ['short', 'root'], roots: ['root'] });
    const ca = await CertificateAuthority.init({ dir: join(scratch.dir, 'short-ca'), pluginDir: dir });
    const issued = await issueFor(ca, 'default', 'reviews', { ttlMs: 7 * 86_400_000 });
    assert.equal(issued.notAfter, ca.describe().signingCertificate.notAfter);
  });
});

describe('plug-in certificates that are refused, with the reason', () => {
  test('missing files are named', async () => {
    const dir = join(scratch.dir, 'cacerts', 'empty');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'ca-cert.pem'), read('cluster1-cert.pem'));
    await refused(dir, /not a plug-in CA directory/, /ca-key\.pem is missing/, /root-cert\.pem is missing/);
    await assert.rejects(CertificateAuthority.init({ dir: join(scratch.dir, 'x'), pluginDir: join(scratch.dir, 'nowhere') }), /cannot read the plug-in directory/);
  });

  test('a key that is not the certificate\'s (Istio: "the cert does not match the key")', async () => {
    await refused(cacerts('mismatch', { caCert: 'cluster1', caKey: 'middle', chain: ['cluster1', 'root'], roots: ['root'] }), /ca-key\.pem is not the key of ca-cert\.pem \(the cert does not match the key\)/);
  });

  test('a signing certificate that is not a CA, or may not sign certificates', async () => {
    await refused(cacerts('leaf', { caCert: 'leafy', caKey: 'leafy', chain: ['leafy', 'root'], roots: ['root'] }), /ca-cert\.pem \(O=Istio, CN=leafy\) is not a CA certificate: it is not authorized to sign other certificates/);
    await refused(cacerts('signonly', { caCert: 'signonly', caKey: 'signonly', chain: ['signonly', 'root'], roots: ['root'] }), /key usage without keyCertSign/);
  });

  test('a chain that does not reach root-cert.pem: another root, a missing middle, a look-alike root', async () => {
    await refused(cacerts('other-root', { caCert: 'cluster1', caKey: 'cluster1', chain: ['cluster1', 'root'], roots: ['other-root'] }), /cannot verify ca-cert\.pem with the roots of root-cert\.pem through cert-chain\.pem: .*certificate signed by unknown authority/);
    await refused(cacerts('no-middle', { caCert: 'cluster2', caKey: 'cluster2', roots: ['root'] }), /\(there is no cert-chain\.pem\): ca-cert\.pem \(O=Istio, CN=cluster2\) is issued by "O=Istio, CN=middle", which is in neither/);
    await refused(cacerts('twin', { caCert: 'cluster1', caKey: 'cluster1', chain: ['cluster1'], roots: ['twin'] }), /is not signed by the key of root-cert\.pem \(O=Istio, CN=root\)/);
  });

  test('a root whose path length leaves no room for the workload certificates', async () => {
    await refused(cacerts('pathlen', { caCert: 'under-strict', caKey: 'under-strict', chain: ['under-strict', 'strict-root'], roots: ['strict-root'] }), /allows 0 intermediate\(s\) below it \(pathlen 0\), but the workload certificates would have 1/);
  });

  test('an expired signing certificate', async () => {
    const dir = cacerts('expired', { caCert: 'short', caKey: 'short', chain: ['short', 'root'], roots: ['root'] });
    const clock = new ManualClock(Date.now() + 3 * 86_400_000);
    await assert.rejects(CertificateAuthority.init({ dir: join(scratch.dir, 'expired-ca'), pluginDir: dir, clock }), (err: CaError) => err.code === 'SNW_ERR_CA_PLUGIN_CERTS' && /ca-cert\.pem \(O=Istio, CN=short\) has expired: current time/.test(err.message));
  });

  test('unreadable certificates and keys, and keys the CA cannot sign with', async () => {
    const dir = cacerts('garbage', { caCert: 'cluster1', caKey: 'cluster1', chain: ['cluster1', 'root'], roots: ['root'] });
    writeFileSync(join(dir, 'ca-key.pem'), 'not a key');
    writeFileSync(join(dir, 'root-cert.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const err = await refused(dir, /ca-key\.pem: cannot be used as the signing key \(failed to parse private key PEM\)/, /root-cert\.pem: not a valid certificate \(failed to parse cert PEM\)/);
    assert.equal(err.problems.length, 2, 'every problem, one per line');
    writeFileSync(join(dir, 'ca-cert.pem'), 'hello');
    await refused(dir, /ca-cert\.pem: holds no PEM certificate/);
    await refused(cacerts('ed25519', { caCert: 'ed', caKey: 'ed', roots: ['ed'] }), /it is an ed25519 key; the CA signs with ECDSA \(P-256, P-384\) or RSA keys/);
  });

  test('a refused replacement (init --force) leaves the CA in force as it was', async () => {
    const good = cacerts('keep', { caCert: 'cluster1', caKey: 'cluster1', chain: ['cluster1', 'root'], roots: ['root'] });
    const ca = await CertificateAuthority.init({ dir: join(scratch.dir, 'keep-ca'), pluginDir: good });
    const before = readFileSync(join(ca.dir, 'ca-cert.pem'), 'utf8');
    const bad = join(scratch.dir, 'cacerts', 'keep-bad');
    cpSync(good, bad, { recursive: true });
    writeFileSync(join(bad, 'ca-key.pem'), read('middle-key.pem'));
    await assert.rejects(CertificateAuthority.init({ dir: ca.dir, pluginDir: bad, force: true }), /the cert does not match the key/);
    assert.equal(readFileSync(join(ca.dir, 'ca-cert.pem'), 'utf8'), before);
    const reloaded = await CertificateAuthority.load({ dir: ca.dir });
    assert.ok(await issueFor(reloaded, 'default', 'reviews'));
    rmSync(bad, { recursive: true, force: true });
  });
});
