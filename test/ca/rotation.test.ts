/**
 * The proxy's side of rotation, driven by an injected clock and seeded randomness: when a
 * certificate is renewed (about half its life, with Istio's jitter), that every renewal brings
 * a new key and certificate from the CA, that failures are retried with backoff while the
 * current certificate keeps serving, and that an answer for the wrong key is not installed.
 * Certificates last 60 s here, as in the rotation-under-load bar.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom, type Random } from '../../src/core/random.js';
import { renewalTime, WorkloadCertificateManager, type WorkloadCredential } from '../../src/core/pki/rotation.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { scratchDir } from './support.js';

const LIFETIME = 60_000;

/** Polls `cond` until it holds or `timeoutMs` passes (the CA does real crypto and file I/O). */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await delay(5);
  }
}

/** A Random that returns the given values in turn (then repeats the last). */
function scripted(...values: number[]): Random {
  let i = 0;
  return { next: () => values[Math.min(i++, values.length - 1)] };
}

describe('renewalTime', () => {
  const validity = { notBefore: 1_000_000, notAfter: 1_000_000 + LIFETIME };

  test('is at half life when the jitter draws nothing', () => {
    assert.equal(renewalTime(validity, scripted(0.5)), 1_030_000);
  });

  test('moves by at most 1% of the lifetime either way (Istio SECRET_GRACE_PERIOD_RATIO_JITTER)', () => {
    assert.equal(renewalTime(validity, scripted(0)), 1_030_600, 'grace 0.49: later');
    assert.equal(renewalTime(validity, scripted(1 - Number.EPSILON)), 1_029_400, 'grace 0.51: earlier');
    const random = new SeededRandom(17);
    const times = Array.from({ length: 2000 }, () => renewalTime(validity, random));
    assert.ok(Math.min(...times) >= 1_029_400 && Math.max(...times) <= 1_030_600);
    assert.ok(new Set(times).size > 500, 'spread out, not one instant');
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    assert.ok(Math.abs(mean - 1_030_000) < 50, `centred on half life (mean ${mean})`);
  });

  test('follows the configured grace and jitter, and never leaves the validity window', () => {
    assert.equal(renewalTime(validity, scripted(0.5), { graceRatio: 0.2 }), 1_048_000);
    assert.equal(renewalTime(validity, scripted(0), { graceRatio: 0.5, jitterRatio: 0.1 }), 1_036_000);
    assert.equal(renewalTime(validity, scripted(0), { graceRatio: 0, jitterRatio: 0.5 }), validity.notAfter);
    assert.equal(renewalTime(validity, scripted(1), { graceRatio: 1, jitterRatio: 0.5 }), validity.notBefore);
  });
});

describe('WorkloadCertificateManager against the CA', () => {
  let scratch: ReturnType<typeof scratchDir>;
  let clock: ManualClock;
  let ca: CertificateAuthority;
  const managers: WorkloadCertificateManager[] = [];

  before(async () => {
    scratch = scratchDir('ca-rotation');
    clock = new ManualClock(Date.now());
    ca = await CertificateAuthority.open({ dir: join(scratch.dir, 'ca'), clock, workloadTtlMs: LIFETIME });
  });
  after(() => {
    for (const m of managers) m.stop();
    scratch.cleanup();
  });

  function manager(options: Partial<ConstructorParameters<typeof WorkloadCertificateManager>[0]> & { seen: WorkloadCredential[] }): WorkloadCertificateManager {
    const m = new WorkloadCertificateManager({
      requestCertificate: (csrPem) => ca.sign({ csrPem, identity: { namespace: 'default', serviceAccount: 'reviews' } }),
      onCertificate: (c) => options.seen.push(c),
      clock,
      random: new SeededRandom(7),
      ...options,
    });
    managers.push(m);
    return m;
  }

  test('obtains a certificate, then renews it at about half life with a new key, again and again', async () => {
    const seen: WorkloadCredential[] = [];
    const m = manager({ seen });
    const first = await m.start();
    assert.deepEqual(first.summary.identities, ['spiffe://cluster.local/ns/default/sa/reviews']);
    assert.equal(first.summary.notAfter - first.summary.notBefore, LIFETIME);
    assert.equal(m.nextAttempt(), first.renewAt);
    assert.ok(first.renewAt >= first.summary.notBefore + 29_400 && first.renewAt <= first.summary.notBefore + 30_600, 'half life ± 1%');

    clock.advance(first.renewAt - clock.now() - 1);
    assert.equal(m.nextAttempt(), first.renewAt, 'nothing is due a millisecond before the renewal time');
    assert.equal(seen.length, 1);

    for (let round = 2; round <= 4; round++) {
      const previous = seen.at(-1)!;
      clock.advance(previous.renewAt - clock.now());
      await waitFor(() => seen.length === round, `renewal ${round}`);
      const next = seen.at(-1)!;
      assert.notEqual(next.summary.serial, previous.summary.serial);
      assert.notEqual(next.privateKeyPem, previous.privateKeyPem, 'a new key for every certificate');
      assert.ok(next.summary.notBefore <= clock.now() && next.summary.notAfter > previous.summary.notAfter);
      assert.ok(clock.now() < previous.summary.notAfter, 'renewed while the old certificate was still valid');
      assert.equal(m.current(), next);
    }
  });

  test('retries a failed request with growing backoff and keeps the certificate it has meanwhile', async () => {
    const seen: WorkloadCredential[] = [];
    let failing = 0;
    const requests: number[] = [];
    const m = manager({
      seen,
      random: scripted(0.5, 1, 1, 1, 1),
      requestCertificate: async (csrPem) => {
        requests.push(clock.now());
        if (failing > 0) {
          failing--;
          throw new Error('control plane unreachable');
        }
        return ca.sign({ csrPem, identity: { namespace: 'default', serviceAccount: 'ratings' } });
      },
    });
    const first = await m.start();
    failing = 3;
    clock.advance(first.renewAt - clock.now());
    await waitFor(() => requests.length === 2, 'the first renewal attempt');
    await waitFor(() => m.nextAttempt() !== undefined, 'a retry to be scheduled');
    // random 1 -> the full backoff: 1 s, then 2 s, then 4 s.
    const expected = [1000, 2000, 4000];
    for (const [i, backoff] of expected.entries()) {
      assert.equal(m.nextAttempt()! - clock.now(), backoff, `retry ${i + 1} waits ${backoff} ms`);
      assert.equal(m.current(), first, 'the old certificate keeps serving');
      clock.advance(backoff);
      await waitFor(() => requests.length === i + 3, `retry ${i + 1}`);
      if (i < expected.length - 1) await waitFor(() => m.nextAttempt() !== undefined, 'the next retry');
    }
    await waitFor(() => seen.length === 2, 'the renewal after the failures');
    assert.notEqual(m.current()!.summary.serial, first.summary.serial);
  });

  test('does not install a certificate that is not for its key, and retries', async () => {
    const seen: WorkloadCredential[] = [];
    let wrongKey = true;
    const m = manager({
      seen,
      random: scripted(1),
      requestCertificate: async (csrPem) => {
        if (wrongKey) {
          wrongKey = false;
          const other = await generateKeyAndCsr();
          return ca.sign({ csrPem: other.csrPem, identity: { namespace: 'default', serviceAccount: 'x' } });
        }
        return ca.sign({ csrPem, identity: { namespace: 'default', serviceAccount: 'x' } });
      },
    });
    const started = m.start();
    await waitFor(() => m.nextAttempt() !== undefined, 'a retry after the wrong certificate');
    assert.equal(m.current(), undefined);
    assert.equal(seen.length, 0);
    clock.advance(m.nextAttempt()! - clock.now());
    const credential = await started;
    assert.equal(seen.length, 1);
    assert.equal(credential, m.current());
  });

  test('stop() ends the schedule and fails a start still waiting for its first certificate', async () => {
    const seen: WorkloadCredential[] = [];
    const m = manager({ seen, requestCertificate: () => Promise.reject(new Error('no CA')) });
    const started = m.start();
    await waitFor(() => m.nextAttempt() !== undefined, 'the retry after the first failure');
    const pending = clock.pendingTimers();
    m.stop();
    assert.equal(clock.pendingTimers(), pending - 1, 'its timer is cancelled');
    await assert.rejects(started, /stopped before it obtained a certificate/);
  });
});
