/**
 * The proxy's SecretProvider (src/proxy/secrets/mesh-secrets.ts) against a real CA in a
 * scratch directory, on an injected clock and seeded randomness: it starts asking for a
 * certificate once a config names the `default` secret from the mesh CA, renews at about half
 * life (twice here, on 60 s certificates), announces every change by name, keeps its key out
 * of everything it shows, refuses a config whose ROOTCA cannot be read (keeping what it had),
 * and renews at once when the bundle no longer trusts its root or its certificate is revoked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import type { ProxyConfig, Secret } from '../../src/api/proxy-config.js';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { MeshSecrets } from '../../src/proxy/secrets/mesh-secrets.js';
import { scratchDir } from '../ca/support.js';

const LIFETIME = 60_000;
const START = Date.UTC(2026, 0, 1);

/** Polls `cond` until it holds or `timeoutMs` passes (the CA does real crypto and file I/O). */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await delay(5);
  }
}

const configWith = (secrets: Secret[]): ProxyConfig => ({ version: 'v', node: { id: 'sidecar~a.default', mode: 'sidecar', workload: 'a', namespace: 'default', labels: {} }, listeners: [], routeConfigs: [], clusters: [], endpoints: [], secrets });

describe('MeshSecrets: the proxy\'s certificate and trust', () => {
  let scratch: ReturnType<typeof scratchDir>;
  let clock: ManualClock;
  let ca: CertificateAuthority;
  let requests = 0;

  before(async () => {
    scratch = scratchDir('proxy-secrets');
    clock = new ManualClock(START);
    ca = await CertificateAuthority.open({ dir: join(scratch.dir, 'ca'), clock, workloadTtlMs: LIFETIME });
  });
  after(() => scratch.cleanup());

  const provider = () =>
    new MeshSecrets({
      clock,
      random: new SeededRandom(7),
      requestCertificate: async (csrPem) => {
        requests++;
        // What the control plane does for this proxy's node (mesh-ca.ts issue).
        const issued = await ca.sign({ csrPem, identity: { namespace: 'default', serviceAccount: 'bookinfo-reviews' }, holder: 'sidecar~a.default' });
        return { certificateChainPem: issued.certificateChainPem };
      },
    });
  const meshConfig = () => configWith([ca.rootCaSecret(), { name: 'default', provider: 'mesh-ca' }]);

  test('asks for nothing until a config names the mesh CA\'s `default` secret', async () => {
    const secrets = provider();
    try {
      const before = requests;
      secrets.commit(secrets.prepare(configWith([ca.rootCaSecret()])));
      assert.equal(secrets.tlsCertificate('default'), undefined);
      assert.equal(requests, before);
      assert.equal(secrets.validationContext('ROOTCA')?.trustBundle.roots.length, 1);
    } finally {
      secrets.close();
    }
  });

  test('renews at about half life, twice, announcing each certificate; the key is never shown', async () => {
    const secrets = provider();
    const changes: string[] = [];
    secrets.onChange((name) => changes.push(name));
    try {
      secrets.commit(secrets.prepare(meshConfig()));
      await waitFor(() => secrets.tlsCertificate('default') !== undefined, 'the first certificate');
      const first = secrets.tlsCertificate('default')!;
      assert.equal(first.identity, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
      assert.equal(first.notAfter - first.notBefore, LIFETIME);
      assert.equal(first.rootFingerprint, ca.trustBundle().roots[0].fingerprint256);
      assert.deepEqual(changes, ['ROOTCA', 'default']);

      const serials = [first.serial];
      for (const generation of [2, 3]) {
        const current = secrets.tlsCertificate('default')!;
        const renewAt = Date.parse(secrets.describe().secrets[0].renewAt!);
        // Half life ± 1 % of the lifetime (Istio's grace ratio and jitter).
        assert.ok(Math.abs(renewAt - (current.notBefore + LIFETIME / 2)) <= LIFETIME * 0.01 + 1000, `renewAt ${renewAt - current.notBefore} ms into the life`);
        assert.equal(Date.parse(secrets.describe().nextRequestAt!), renewAt, 'the next request to the CA is the renewal');
        clock.advance(renewAt - clock.now() - 1);
        assert.equal(Date.parse(secrets.describe().nextRequestAt!), renewAt, 'nothing asked before its time');
        clock.advance(1);
        await waitFor(() => secrets.tlsCertificate('default')!.generation === generation, `renewal ${generation - 1}`);
        serials.push(secrets.tlsCertificate('default')!.serial);
      }
      assert.equal(new Set(serials).size, 3, 'three certificates');
      assert.deepEqual(changes, ['ROOTCA', 'default', 'default', 'default']);
      const shown = JSON.stringify(secrets.describe());
      assert.ok(!shown.includes('PRIVATE KEY'), 'describe() never carries the key');
      assert.match(secrets.tlsCertificate('default')!.privateKeyPem, /BEGIN PRIVATE KEY/);
    } finally {
      secrets.close();
    }
  });

  test('a ROOTCA that cannot be read is refused, and the trust in force stays', async () => {
    const secrets = provider();
    try {
      secrets.commit(secrets.prepare(configWith([ca.rootCaSecret()])));
      const before = secrets.validationContext('ROOTCA')!;
      assert.throws(() => secrets.prepare(configWith([{ name: 'ROOTCA', trustedCaPem: 'not a certificate' }])), /secrets\.ROOTCA\.trustedCaPem: the trust bundle holds no PEM certificate/);
      assert.equal(secrets.validationContext('ROOTCA'), before);
    } finally {
      secrets.close();
    }
  });

  test('a revocation of its own certificate makes the proxy ask again at once, and the CA refuses it', async () => {
    const secrets = provider();
    try {
      secrets.commit(secrets.prepare(meshConfig()));
      await waitFor(() => secrets.tlsCertificate('default') !== undefined, 'a certificate');
      const mine = secrets.tlsCertificate('default')!;
      await ca.revoke({ serial: mine.serial });
      const before = requests;
      secrets.commit(secrets.prepare(meshConfig()));
      assert.equal(secrets.validationContext('ROOTCA')!.revocations.isRevoked(mine.certificateChainPem), true);
      await waitFor(() => requests > before && secrets.describe().lastError !== undefined, 'the refused renewal');
      assert.match(secrets.describe().lastError!.message, /certificate .* issued to this caller was revoked/);
      assert.equal(secrets.tlsCertificate('default')!.serial, mine.serial, 'the proxy keeps what it has');
    } finally {
      secrets.close();
    }
  });
});
