/**
 * Control-plane push at fleet size: N simulated proxies (PushClient, 2000 by default) in this
 * process against one PushServer, one mesh-wide config change, and the time until every
 * proxy has ACKed it (p50/p99/max from the moment the push batch starts, after debounce),
 * plus the process RSS. Prints one JSON line.
 *
 *   npx tsx bench/controlplane-push.ts [--proxies 2000] [--clusters 50] [--endpoints 10]
 *
 * Both ends share one event loop, so the figures are a ceiling on server cost plus client
 * cost, not a network measurement; compare runs on the same machine only.
 */
import { parseArgs } from 'node:util';
import type { ProxyConfig, ProxyNode } from '../src/api/proxy-config.js';
import { outboundClusterName } from '../src/api/proxy-config.js';
import { SeededRandom } from '../src/core/random.js';
import { PushClient } from '../src/xds/client.js';
import { PushServer } from '../src/xds/server.js';
import type { ProxyStatus } from '../src/xds/server.js';

const { values } = parseArgs({
  options: {
    proxies: { type: 'string', default: '2000' },
    clusters: { type: 'string', default: '50' },
    endpoints: { type: 'string', default: '10' },
    batch: { type: 'string', default: '200' },
  },
});
const proxies = Number(values.proxies);
const clusters = Number(values.clusters);
const endpointsPer = Number(values.endpoints);
const batch = Number(values.batch);

/** A config of realistic shape: `clusters` services with `endpointsPer` endpoints each. */
function build(node: ProxyNode, generation: number): ProxyConfig {
  const names = Array.from({ length: clusters }, (_, i) => outboundClusterName(9080, undefined, `svc${i}.default.svc.cluster.local`));
  return {
    version: `g${generation}`,
    node,
    listeners: [{ name: 'virtualOutbound', address: { host: '127.0.0.1', port: 15001 }, direction: 'outbound', protocol: 'http', http: { routeConfigByPort: true } }],
    routeConfigs: [
      {
        name: '9080',
        virtualHosts: names.map((cluster, i) => ({
          name: `svc${i}:9080`,
          domains: [`svc${i}`, `svc${i}:9080`, `svc${i}.default.svc.cluster.local`],
          routes: [{ name: `default/svc${i}/0`, match: { path: { prefix: '/' } }, action: { kind: 'route', destinations: [{ cluster, weight: 100 }], timeoutMs: generation * 1000 } }],
        })),
      },
    ],
    clusters: names.map((name) => ({ name, kind: 'eds', protocol: 'http1', connectTimeoutMs: 10_000, lb: { policy: 'ROUND_ROBIN' } })),
    endpoints: names.map((clusterName, c) => ({
      clusterName,
      endpoints: Array.from({ length: endpointsPer }, (_, e) => ({
        address: { host: `10.${c % 250}.${e}.1`, port: 9080 },
        labels: { app: `svc${c}`, version: 'v1' },
        health: 'HEALTHY' as const,
      })),
    })),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number) => Math.round(n * 100) / 100;

let generation = 1;
const server = new PushServer({ source: (node) => build(node, generation), idleTimeoutMs: 0 });
const { port } = await server.listen(0);
const rssBefore = process.memoryUsage().rss;
const clients: PushClient[] = [];

// Connect in batches: thousands of simultaneous SYNs overflow the listen backlog and turn
// into 1 s+ kernel retransmits that would measure the kernel, not the push path.
const connectStart = performance.now();
for (let start = 0; start < proxies; start += batch) {
  const n = Math.min(batch, proxies - start);
  let acked = 0;
  const done = new Promise<void>((resolve) => {
    const onAck = () => {
      if (++acked === n) {
        server.off('ack', onAck);
        resolve();
      }
    };
    server.on('ack', onAck);
  });
  for (let i = start; i < start + n; i++) {
    const node: ProxyNode = { id: `sidecar~w${i}.default`, mode: 'sidecar', workload: `w${i}`, namespace: 'default', labels: { app: `w${i}` } };
    const client = new PushClient({ host: '127.0.0.1', port, node, apply: () => {}, random: new SeededRandom(i + 1), keepaliveMs: 0 });
    clients.push(client);
    client.start();
  }
  await done;
}
const connectMs = performance.now() - connectStart;
const rssConnected = process.memoryUsage().rss;

// One mesh-wide change; time each ACK from the start of the push batch.
generation = 2;
const ackTimes: number[] = [];
const allAcked = new Promise<void>((resolve) => {
  server.on('ack', (_status: ProxyStatus) => {
    ackTimes.push(performance.now() - pushStart);
    if (ackTimes.length === proxies) resolve();
  });
});
let batchMs = 0;
server.once('pushRun', (info) => (batchMs = info.durationMs));
const pushStart = performance.now();
server.requestPush('bench change');
server.flush();
await allAcked;
const rssPeak = process.memoryUsage().rss;
ackTimes.sort((a, b) => a - b);

const synced = server.status().filter((s) => s.state === 'SYNCED').length;
const configBytes = Buffer.byteLength(JSON.stringify(build({ id: 'x', mode: 'sidecar', workload: 'x', namespace: 'default', labels: {} }, 2)));

await Promise.all(clients.map((c) => c.close()));
await server.close();

process.stdout.write(
  JSON.stringify({
    bench: 'controlplane-push',
    proxies,
    configBytes,
    synced,
    connectAllMs: round(connectMs),
    pushBatchMs: round(batchMs),
    ackP50Ms: round(percentile(ackTimes, 50)),
    ackP99Ms: round(percentile(ackTimes, 99)),
    ackMaxMs: round(ackTimes[ackTimes.length - 1] ?? 0),
    rssBeforeMiB: round(rssBefore / 2 ** 20),
    rssConnectedMiB: round(rssConnected / 2 ** 20),
    rssPeakMiB: round(rssPeak / 2 ** 20),
    pushes: server.metrics.pushes,
    pushErrors: server.metrics.pushErrors,
  }) + '\n',
);
