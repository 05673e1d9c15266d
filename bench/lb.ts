/**
 * Load balancer cost: picks per second for each policy over 10 endpoints, against a
 * single-endpoint baseline (the cheapest possible pick), both for the bare balancer and for
 * the whole cluster path the router takes (acquire -> lease -> release). No sockets: pools
 * are created lazily and never used. Prints one JSON line.
 *
 *   npx tsx bench/lb.ts [--endpoints 10] [--ms 400]
 */
import { parseArgs } from 'node:util';
import type { Cluster, Endpoint, LbPolicy } from '../src/api/proxy-config.js';
import { ManualClock } from '../src/core/clock.js';
import { SeededRandom } from '../src/core/random.js';
import { createClusterManager } from '../src/proxy/upstream/cluster-manager.js';
import { hashString } from '../src/proxy/upstream/hash.js';
import { createBalancer, type LbHost } from '../src/proxy/upstream/lb/index.js';
import type { PickContext } from '../src/proxy/upstream/types.js';

const { values } = parseArgs({ options: { endpoints: { type: 'string', default: '10' }, ms: { type: 'string', default: '400' } } });
const n = Number(values.endpoints);
const windowMs = Number(values.ms);
const policies: LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];

const hashes = Array.from({ length: 1024 }, (_, i) => hashString(`user-${i}`));
const ctxs: PickContext[] = hashes.map((hash) => ({ hash }));

/** Runs `fn` in batches for about windowMs after a warm-up; returns operations per second. */
function rate(fn: (i: number) => void): number {
  for (let i = 0; i < 20_000; i++) fn(i);
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < windowMs) {
    for (let i = 0; i < 10_000; i++) fn(ops + i);
    ops += 10_000;
    now = performance.now();
  }
  return Math.round((ops * 1000) / (now - start));
}

function hosts(count: number): LbHost[] {
  return Array.from({ length: count }, (_, i) => ({ key: `10.0.0.${i}:80`, address: { host: `10.0.0.${i}`, port: 80 }, weight: 1, activeRequests: 0, addedAt: 0 }));
}

const deps = { random: new SeededRandom(1), clock: new ManualClock(0) };
const one = hosts(1);
const many = hosts(n);
const baselineLb = createBalancer({ policy: 'ROUND_ROBIN' }, deps);
const baselinePick = rate((i) => baselineLb.pick(one, ctxs[i & 1023]));

const balancers: Record<string, { picksPerSec: number; xBaseline: number }> = {};
for (const policy of policies) {
  const lb = createBalancer({ policy }, deps);
  const picksPerSec = rate((i) => lb.pick(many, ctxs[i & 1023]));
  balancers[policy] = { picksPerSec, xBaseline: +(picksPerSec / baselinePick).toFixed(3) };
}

function clusterRate(policy: LbPolicy, count: number): number {
  const m = createClusterManager({ clock: new ManualClock(0), random: new SeededRandom(2) });
  const cluster: Cluster = { name: 'c', kind: 'eds', protocol: 'http1', connectTimeoutMs: 1000, lb: { policy } };
  const endpoints: Endpoint[] = Array.from({ length: count }, (_, i) => ({ address: { host: `10.0.0.${i}`, port: 80 }, labels: {}, health: 'HEALTHY' }));
  m.update([cluster], [{ clusterName: 'c', endpoints }]);
  const c = m.get('c')!;
  const ok = { status: 200 };
  const r = rate((i) => {
    const got = c.acquire(ctxs[i & 1023]);
    if (got.ok) got.lease.release(ok);
  });
  void m.close();
  return r;
}

const clusterBaseline = clusterRate('ROUND_ROBIN', 1);
const clusters: Record<string, { acquiresPerSec: number; xBaseline: number }> = {};
for (const policy of policies) {
  const acquiresPerSec = clusterRate(policy, n);
  clusters[policy] = { acquiresPerSec, xBaseline: +(acquiresPerSec / clusterBaseline).toFixed(3) };
}

console.log(JSON.stringify({
  bench: 'lb',
  endpoints: n,
  node: process.version,
  baseline: { picksPerSec: baselinePick, clusterAcquireReleasePerSec: clusterBaseline },
  balancers,
  clusters,
}));
