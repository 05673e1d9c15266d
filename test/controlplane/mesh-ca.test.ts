/**
 * The control plane hosting the mesh CA (controlplane/mesh-ca.ts), with real push clients
 * carrying the proxy's SecretProvider (proxy/secrets/mesh-secrets.ts) over TCP, `sinew ca`
 * commands run as separate processes against the running control plane's directory, and
 * openssl judging the certificates.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { rootRotationDue } from '../../src/controlplane/mesh-ca.js';
import { splitPemCertificates, summarizeCertificate } from '../../src/core/pki/certificate-info.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { MeshSecrets } from '../../src/proxy/secrets/mesh-secrets.js';
import type { PushClient } from '../../src/xds/client.js';
import { XdsErrorCode } from '../../src/xds/protocol.js';
import { opensslOk, opensslVerify } from '../ca/support.js';
import { OperatorApi, proxyClient } from './helpers.js';

const repo = resolve(import.meta.dirname, '../..');

function sinewCa(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/sinew.js', 'ca', ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      done({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const nodeOf = (workload: string, serviceAccount: string): ProxyNode => ({ id: `sidecar~${workload}-0.default`, mode: 'sidecar', workload, namespace: 'default', labels: { app: workload.split('-')[0] }, serviceAccount });
const registrationOf = (workload: string, port: number) => ({
  kind: 'workload',
  name: workload,
  namespace: 'default',
  labels: { app: workload.split('-')[0] },
  replicas: [{ id: `${workload}-0`, host: '127.0.0.1', ports: { '9080': { inbound: port, app: port + 1 } }, ready: true, restarts: 0, proxy: { inbound: `127.0.0.1:${port}`, outbound: `127.0.0.1:${port + 2}`, admin: `127.0.0.1:${port + 3}` } }],
});

interface Proxy {
  node: ProxyNode;
  client: PushClient;
  secrets: MeshSecrets;
}

describe('the control plane\'s CA', () => {
  let stateDir: string;
  let caDir: string;
  let cp: ControlPlane;
  const proxies: Proxy[] = [];

  /** What `sinew proxy` does with its push connection (agent.ts), without its listeners. */
  function connect(node: ProxyNode): Proxy {
    let client: PushClient | undefined;
    const secrets = new MeshSecrets({ requestCertificate: (csr) => client!.requestCertificate(csr), initialRetryMs: 50, maxRetryMs: 200 });
    client = proxyClient(cp, node, { apply: (config) => secrets.commit(secrets.prepare(config)) });
    client.start();
    const proxy = { node, client, secrets };
    proxies.push(proxy);
    return proxy;
  }

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'sinew-cp-ca-'));
    caDir = join(stateDir, 'ca');
    cp = await startControlPlane({ stateDir, apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 10, ca: { refreshIntervalMs: 100 } });
    const api = new OperatorApi(cp);
    for (const [workload, port] of [['reviews-v1', 23000], ['ratings-v1', 23010]] as const) assert.equal((await api.register(registrationOf(workload, port))).status, 200);
  });

  after(async () => {
    for (const p of proxies) {
      p.secrets.close();
      await p.client.close();
    }
    await cp?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('is created in <state dir>/ca on first start, owner-only', () => {
    assert.equal(cp.ca?.ca.dir, caDir);
    assert.equal(cp.ca?.ca.source, 'generated');
    assert.equal(statSync(caDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(caDir, 'ca-key.pem')).mode & 0o777, 0o600);
  });

  test('each proxy gets a certificate for its service account that openssl verifies against the mesh root', async () => {
    const reviews = connect(nodeOf('reviews-v1', 'bookinfo-reviews'));
    const ratings = connect(nodeOf('ratings-v1', 'bookinfo-ratings'));
    for (const [proxy, sa] of [[reviews, 'bookinfo-reviews'], [ratings, 'bookinfo-ratings']] as const) {
      const cert = await until(`${sa}'s certificate`, () => proxy.secrets.tlsCertificate('default'));
      assert.equal(cert.identity, `spiffe://cluster.local/ns/default/sa/${sa}`);
      const [leaf, ...chain] = splitPemCertificates(cert.certificateChainPem);
      const verified = await opensslVerify(stateDir, readFileSync(join(caDir, 'root-cert.pem'), 'utf8'), chain.join(''), leaf);
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(verified.stdout, /: OK/);
      assert.match(await opensslOk(['x509', '-noout', '-ext', 'subjectAltName'], { input: leaf }), new RegExp(`URI:spiffe://cluster.local/ns/default/sa/${sa}`));
      // The trust the proxy holds is the CA's bundle, pushed in its config.
      assert.equal(proxy.secrets.validationContext('ROOTCA')!.trustedCaPem, cp.ca!.ca.trustBundle().pem());
      assert.deepEqual(proxy.client.config?.secrets?.find((s) => s.name === 'default'), { name: 'default', provider: 'mesh-ca' });
    }
    const replica = cp.status().workloads.find((w) => w.name === 'reviews-v1')!.replicas[0];
    assert.equal(replica.proxy.certificate?.identity, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.equal(replica.proxy.certificate?.serial, reviews.secrets.tlsCertificate('default')!.serial);
    assert.equal(Date.parse(replica.proxy.certificate!.notAfter), reviews.secrets.tlsCertificate('default')!.notAfter);
  });

  test('a CSR asking for another identity gets the caller\'s; a credential for another node gets nothing', async () => {
    const reviews = proxies[0];
    const { csrPem } = await generateKeyAndCsr({ identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings' });
    const { certificateChainPem } = await reviews.client.requestCertificate(csrPem);
    assert.deepEqual(summarizeCertificate(splitPemCertificates(certificateChainPem)[0]).identities, ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews']);

    // ratings' node, presenting reviews' credential: HELLO is refused, so no CSR is ever read.
    const issued = cp.push.metrics.certificatesIssued;
    const impostor = proxyClient(cp, nodeOf('ratings-v1', 'bookinfo-ratings'), { credential: cp.credentials.mintProxyCredential(reviews.node), backoff: { initialMs: 5_000, maxMs: 5_000 } });
    try {
      impostor.start();
      await assert.rejects(impostor.requestCertificate((await generateKeyAndCsr()).csrPem), (err: Error & { code?: string }) => err.code === XdsErrorCode.CertificateUnanswered && /UNAUTHENTICATED/.test(err.message));
      assert.equal(cp.push.metrics.certificatesIssued, issued);
    } finally {
      await impostor.close();
    }
  });

  test('`sinew ca revoke <serial>` beside the running control plane: the serial reaches every proxy\'s ROOTCA and the holder\'s renewal is refused', async () => {
    const [reviews, ratings] = proxies;
    const serial = reviews.secrets.tlsCertificate('default')!.serial;
    const revoked = await sinewCa('revoke', serial, '--ca-dir', caDir);
    assert.equal(revoked.status, 0, revoked.stderr);
    for (const proxy of [reviews, ratings]) {
      await until(`${proxy.node.id} to hold the revocation`, () => proxy.client.config?.secrets?.find((s) => s.name === 'ROOTCA')?.revocations?.serials.some((s) => s.serial === serial));
    }
    assert.equal(ratings.secrets.validationContext('ROOTCA')!.revocations.isRevoked(reviews.secrets.tlsCertificate('default')!.certificateChainPem), true);
    // reviews sees its own certificate revoked, asks again at once, and is refused.
    await until('the refused renewal', () => reviews.secrets.describe().lastError?.message.match(/SNW_ERR_CA_REVOKED/));
    await assert.rejects(reviews.client.requestCertificate((await generateKeyAndCsr()).csrPem), /SNW_ERR_CA_REVOKED/);
  });

  test('root rotation: both roots pushed, completed only once every connected proxy ACKed them, new certificates chain to the new root', async () => {
    const [, ratings] = proxies;
    const oldRoot = cp.ca!.ca.trustBundle().roots[0].fingerprint256;
    // A third proxy that holds back its answer to the config carrying both roots.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slowNode = nodeOf('details-v1', 'bookinfo-details');
    assert.equal((await new OperatorApi(cp).register(registrationOf('details-v1', 23020))).status, 200);
    const slow = proxyClient(cp, slowNode, { apply: async (config) => { if ((config.secrets?.find((s) => s.name === 'ROOTCA')?.trustedCaPem?.match(/BEGIN CERTIFICATE/g) ?? []).length > 1) await gate; } });
    try {
      slow.start();
      await until('the slow proxy to be in sync', () => cp.push.status().find((p) => p.node.id === slowNode.id)?.state === 'SYNCED');
      const begun = await sinewCa('rotate-root', '--ca-dir', caDir);
      assert.equal(begun.status, 0, begun.stderr);
      assert.match(begun.stdout, /root rotation begun/);
      for (const proxy of proxies) await until(`${proxy.node.id} to trust both roots`, () => proxy.secrets.validationContext('ROOTCA')!.trustBundle.roots.length === 2);
      await until('the other proxies\' ACKs to be counted', () => cp.ca!.rotationStatus()?.acked.length === proxies.length);
      assert.ok(cp.ca!.ca.describe().rotation, 'not complete while a proxy has not ACKed the new bundle');
      release();
      await until('the rotation to complete', () => cp.ca!.ca.describe().rotation === undefined && cp.ca!.rotationStatus() === undefined);
    } finally {
      release();
      await slow.close();
    }
    const newRoot = cp.ca!.ca.describe().roots[0].fingerprint256;
    assert.notEqual(newRoot, oldRoot);
    // The old root stays trusted while certificates it covers live.
    assert.deepEqual(new Set(cp.ca!.ca.trustBundle().roots.map((r) => r.fingerprint256)), new Set([oldRoot, newRoot]));
    const { certificateChainPem } = await ratings.client.requestCertificate((await generateKeyAndCsr()).csrPem);
    assert.equal(summarizeCertificate(splitPemCertificates(certificateChainPem).at(-1)!).fingerprint256, newRoot);
  });

  test('a restarted control plane still knows which certificate each proxy holds', async () => {
    const before = cp.status().workloads.find((w) => w.name === 'ratings-v1')!.replicas[0].proxy.certificate;
    assert.ok(before);
    const again = await startControlPlane({ stateDir, apiPort: 0, pushPort: 0, monitoringPort: 0, ca: { refreshIntervalMs: 100 } });
    try {
      assert.deepEqual(again.status().workloads.find((w) => w.name === 'ratings-v1')!.replicas[0].proxy.certificate, before);
    } finally {
      await again.close();
    }
  });

  test('a root is rotated once less than a fifth of its life is left (Istio\'s grace period)', () => {
    const root = { notBefore: 0, notAfter: 1000 };
    assert.equal(rootRotationDue(root, 799), false);
    assert.equal(rootRotationDue(root, 801), true);
  });
});

describe('a control plane with plug-in certificates', () => {
  test('signs with the cacerts it is given, and refuses bad ones naming every problem', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'sinew-cp-plugin-'));
    let cp: ControlPlane | undefined;
    try {
      // Istio's cacerts layout, as an operator's own CA would produce it.
      const source = await CertificateAuthority.init({ dir: join(scratch, 'operator-ca') });
      const plugin = join(scratch, 'cacerts');
      mkdirSync(plugin);
      for (const f of ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']) cpSync(join(source.dir, f), join(plugin, f));
      cp = await startControlPlane({ stateDir: join(scratch, 'state'), apiPort: 0, pushPort: 0, monitoringPort: 0, ca: { pluginDir: plugin } });
      assert.equal(cp.ca?.ca.source, 'plugin');
      assert.equal(cp.ca?.ca.describe().signingCertificate.fingerprint256, source.describe().signingCertificate.fingerprint256);
      await cp.close();
      cp = undefined;

      const bad = join(scratch, 'bad');
      mkdirSync(bad);
      cpSync(join(plugin, 'ca-cert.pem'), join(bad, 'ca-cert.pem'));
      await assert.rejects(startControlPlane({ stateDir: join(scratch, 'other'), apiPort: 0, pushPort: 0, monitoringPort: 0, ca: { pluginDir: bad } }), /ca-key\.pem is missing[\s\S]*root-cert\.pem is missing|needs ca-cert\.pem, ca-key\.pem, root-cert\.pem/);
    } finally {
      await cp?.close();
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
