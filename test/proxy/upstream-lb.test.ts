/**
 * One conformance suite for every load balancer (STYLE.md 17, Hono's runTest pattern): the
 * same cases run against each policy, with a seeded random source so the outcomes are exact.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LbPolicy } from '../../src/api/proxy-config.js';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRandom } from '../../src/core/random.js';
import { createBalancer, OriginalDstBalancer, isPrime, type Balancer, type LbHost } from '../../src/proxy/upstream/lb/index.js';
import { hashString } from '../../src/proxy/upstream/hash.js';
import { localityMatches, localityPriority, planLocality } from '../../src/proxy/upstream/locality.js';
import { countBy } from './upstream-fixtures.js';

interface TestHost extends LbHost {
  activeRequests: number;
}

function host(i: number, weight = 1, addedAt = 0): TestHost {
  return { key: `10.0.0.${i}:8080`, address: { host: `10.0.0.${i}`, port: 8080 }, weight, activeRequests: 0, addedAt };
}

function hosts(n: number): TestHost[] {
  return Array.from({ length: n }, (_, i) => host(i + 1));
}

const policies: { policy: LbPolicy; hashed: boolean }[] = [
  { policy: 'ROUND_ROBIN', hashed: false },
  { policy: 'LEAST_REQUEST', hashed: false },
  { policy: 'RANDOM', hashed: false },
  { policy: 'RING_HASH', hashed: true },
  { policy: 'MAGLEV', hashed: true },
];

function make(policy: LbPolicy, seed = 42): Balancer {
  return createBalancer({ policy }, { random: new SeededRandom(seed), clock: new ManualClock(0) });
}

for (const { policy, hashed } of policies) {
  describe(`load balancer conformance: ${policy}`, () => {
    // Hash balancers are fed many distinct request hashes; the others ignore the hash.
    const ctxFor = (i: number) => (hashed ? { hash: hashString(`user-${i}`) } : {});

    test('no hosts -> undefined', () => {
      assert.equal(make(policy).pick([], ctxFor(1)), undefined);
    });

    test('one host gets everything', () => {
      const one = hosts(1);
      const lb = make(policy);
      for (let i = 0; i < 50; i++) assert.equal(lb.pick(one, ctxFor(i)), one[0]);
    });

    test('spreads evenly over 5 hosts', () => {
      const set = hosts(5);
      const lb = make(policy);
      const picks = Array.from({ length: 10_000 }, (_, i) => lb.pick(set, ctxFor(i))!.key);
      const counts = countBy(picks);
      assert.equal(counts.size, 5);
      // RR and LEAST_REQUEST (all idle) are near exact; RANDOM is binomial (sigma ~40);
      // the ring with 1024 entries has a few percent of imbalance per host.
      const tolerance = hashed ? 0.2 : 0.1;
      for (const [key, n] of counts) assert.ok(Math.abs(n - 2000) <= 2000 * tolerance, `${key} got ${n}`);
    });

    test('weights are proportional (1:2:3)', () => {
      const set = [host(1, 1), host(2, 2), host(3, 3)];
      const lb = make(policy);
      const counts = countBy(Array.from({ length: 12_000 }, (_, i) => lb.pick(set, ctxFor(i))!.key));
      const expected = [2000, 4000, 6000];
      set.forEach((h, i) => {
        const n = counts.get(h.key) ?? 0;
        assert.ok(Math.abs(n - expected[i]) <= expected[i] * 0.15, `${h.key} (weight ${h.weight}) got ${n}, expected about ${expected[i]}`);
      });
    });

    test('a host that leaves is never picked; one that joins gets traffic', () => {
      const lb = make(policy);
      const before = hosts(4);
      const after = [...before.slice(0, 3), host(9)];
      for (let i = 0; i < 200; i++) lb.pick(before, ctxFor(i));
      const counts = countBy(Array.from({ length: 2000 }, (_, i) => lb.pick(after, ctxFor(i))!.key));
      assert.equal(counts.get(before[3].key), undefined);
      assert.ok((counts.get(host(9).key) ?? 0) > 300, `joined host got ${counts.get(host(9).key)}`);
    });

    test('excluded (previously tried) hosts are avoided while others exist', () => {
      const set = hosts(4);
      const lb = make(policy);
      const exclude = new Set([set[0].key, set[1].key]);
      for (let i = 0; i < 500; i++) {
        const picked = lb.pick(set, { ...ctxFor(i), exclude })!;
        assert.ok(!exclude.has(picked.key), `picked excluded ${picked.key}`);
      }
      // Everything excluded: still answers (Envoy gives up avoiding and takes a host).
      const all = new Set(set.map((h) => h.key));
      assert.ok(lb.pick(set, { ...ctxFor(1), exclude: all }));
    });

    if (hashed) {
      test('the same hash always reaches the same host', () => {
        const set = hosts(5);
        const lb = make(policy);
        const other = make(policy, 7);
        for (let i = 0; i < 100; i++) {
          const ctx = { hash: hashString(`session-${i}`) };
          const first = lb.pick(set, ctx)!.key;
          for (let j = 0; j < 5; j++) assert.equal(lb.pick(set, ctx)!.key, first);
          // Another balancer instance (another proxy) agrees: the mapping is a pure function.
          assert.equal(other.pick(set, ctx)!.key, first);
        }
        // bigint hashes are accepted too.
        assert.equal(lb.pick(set, { hash: 12345n })!.key, lb.pick(set, { hash: 12345 })!.key);
      });

      test('when one of 5 hosts leaves, only about 1/5 of the keys move', () => {
        const set = hosts(5);
        const lb = make(policy);
        const keys = Array.from({ length: 5000 }, (_, i) => hashString(`k${i}`));
        const before = keys.map((hash) => lb.pick(set, { hash })!.key);
        const smaller = set.slice(0, 4);
        const after = keys.map((hash) => lb.pick(smaller, { hash })!.key);
        let moved = 0;
        let movedFromSurvivors = 0;
        for (let i = 0; i < keys.length; i++) {
          if (before[i] !== after[i]) {
            moved++;
            if (before[i] !== set[4].key) movedFromSurvivors++;
          }
        }
        assert.ok(moved / keys.length < 0.3, `moved ${moved}`);
        // Ring hash moves only the removed host's keys; Maglev may move a few more.
        assert.ok(movedFromSurvivors / keys.length < (policy === 'RING_HASH' ? 0.001 : 0.05), `survivor keys moved: ${movedFromSurvivors}`);
      });

      test('no hash (policy input missing) still picks a host', () => {
        const set = hosts(3);
        const lb = make(policy);
        const counts = countBy(Array.from({ length: 300 }, () => lb.pick(set, {})!.key));
        assert.ok(counts.size >= 2);
      });
    }
  });
}

describe('policy specifics', () => {
  test('ROUND_ROBIN with equal weights is a strict rotation', () => {
    const set = hosts(3);
    const lb = make('ROUND_ROBIN');
    const seq = Array.from({ length: 9 }, () => lb.pick(set, {})!.key);
    assert.deepEqual(seq.slice(3, 6), seq.slice(0, 3));
    assert.equal(new Set(seq.slice(0, 3)).size, 3);
  });

  test('RANDOM is not a fixed rotation (LB-02: some consecutive repeat)', () => {
    const set = hosts(3);
    const lb = make('RANDOM');
    const seq = Array.from({ length: 60 }, () => lb.pick(set, {})!.key);
    assert.ok(seq.some((k, i) => i > 0 && seq[i - 1] === k));
  });

  test('LEAST_REQUEST never picks the busiest host while others are idle (distinct two choices)', () => {
    const set = hosts(3);
    set[0].activeRequests = 4;
    const lb = make('LEAST_REQUEST');
    for (let i = 0; i < 300; i++) assert.notEqual(lb.pick(set, {})!.key, set[0].key);
  });

  test('LEAST_REQUEST with unequal weights favours idle, heavy hosts', () => {
    const set = [host(1, 1), host(2, 3)];
    set[1].activeRequests = 2; // effective 3 / 3 = 1 vs 1 / 1 = 1: about even
    const lb = make('LEAST_REQUEST');
    const counts = countBy(Array.from({ length: 4000 }, () => lb.pick(set, {})!.key));
    assert.ok(Math.abs((counts.get(set[0].key) ?? 0) - 2000) < 250);
  });

  test('slow start ramps a new host from 10% to full weight over warmupMs', () => {
    const clock = new ManualClock(0);
    const lb = createBalancer({ policy: 'ROUND_ROBIN', warmupMs: 10_000 }, { random: new SeededRandom(1), clock });
    const set = [host(1, 1, -100_000), host(2, 1, 0)];
    const share = () => (countBy(Array.from({ length: 1100 }, () => lb.pick(set, {})!.key)).get(set[1].key) ?? 0) / 1100;
    assert.ok(Math.abs(share() - 0.1 / 1.1) < 0.02);
    clock.advance(5000);
    assert.ok(Math.abs(share() - 0.5 / 1.5) < 0.02);
    clock.advance(5000);
    assert.ok(Math.abs(share() - 0.5) < 0.02);
  });

  test('Maglev table sizes: default 65537 is prime', () => {
    assert.ok(isPrime(65537));
    assert.ok(!isPrime(65536));
  });

  test('PASSTHROUGH: the host is the original destination; hosts are kept in a bounded LRU', () => {
    const evicted: string[] = [];
    const lb = new OriginalDstBalancer<TestHost>(
      (address, key) => ({ key, address, weight: 1, activeRequests: 0, addedAt: 0 }),
      (h) => evicted.push(h.key),
      2,
    );
    assert.equal(lb.pick([], {}), undefined);
    const a = lb.pick([], { originalDestination: { host: '10.1.1.1', port: 80 } })!;
    assert.equal(a.key, '10.1.1.1:80');
    assert.equal(lb.pick([], { originalDestination: { host: '10.1.1.1', port: 80 } }), a);
    lb.pick([], { originalDestination: { host: '10.1.1.2', port: 80 } });
    lb.pick([], { originalDestination: { host: '10.1.1.1', port: 80 } }); // a is now most recent
    lb.pick([], { originalDestination: { host: '10.1.1.3', port: 80 } });
    assert.deepEqual(evicted, ['10.1.1.2:80']);
  });
});

describe('locality priorities', () => {
  const lb = { enabled: true, self: 'us-east/a/1', failover: [{ from: 'us-east', to: 'eu-west' }] };
  const at = (locality: string, labels: Record<string, string> = {}) => ({ locality, labels });

  test('closest first: subzone, zone, region, failover region, the rest', () => {
    assert.equal(localityPriority(at('us-east/a/1'), lb, {}), 0);
    assert.equal(localityPriority(at('us-east/a/2'), lb, {}), 1);
    assert.equal(localityPriority(at('us-east/b/1'), lb, {}), 2);
    assert.equal(localityPriority(at('eu-west/a/1'), lb, {}), 3);
    assert.equal(localityPriority(at('ap-south/a/1'), lb, {}), 4);
  });

  test('failoverPriority ranks by the listed labels shared with the proxy, in order', () => {
    const byLabels = { enabled: true, self: 'us-east/a/1', failoverPriority: ['topology.istio.io/network', 'topology.kubernetes.io/region', 'topology.kubernetes.io/zone'] };
    const self = { 'topology.istio.io/network': 'n1' };
    assert.equal(localityPriority(at('us-east/a/9', { 'topology.istio.io/network': 'n1' }), byLabels, self), 0);
    assert.equal(localityPriority(at('us-east/b/1', { 'topology.istio.io/network': 'n1' }), byLabels, self), 1);
    assert.equal(localityPriority(at('eu-west/a/1', { 'topology.istio.io/network': 'n1' }), byLabels, self), 2);
    assert.equal(localityPriority(at('us-east/a/1', { 'topology.istio.io/network': 'n2' }), byLabels, self), 3);
  });

  test('planLocality keeps the best level with hosts; patterns match with wildcards', () => {
    const plan = planLocality([at('us-east/b/1'), at('eu-west/a/1'), at('us-east/b/2')], lb, {});
    assert.equal(plan.kind, 'priority');
    assert.deepEqual(plan.kind === 'priority' && plan.hosts.map((h) => h.locality), ['us-east/b/1', 'us-east/b/2']);
    assert.ok(localityMatches('us-east/*', 'us-east/b/1'));
    assert.ok(localityMatches('us-east', 'us-east/b/1'));
    assert.ok(!localityMatches('us-east/a/*', 'us-east/b/1'));
    assert.equal(planLocality([at('x/y/z')], { enabled: false, self: 'us-east/a/1' }, {}).kind, 'flat');
  });
});
