/**
 * The same cluster over HTTP/2 (STYLE.md 17: integration tests per protocol): an `http2`
 * cluster speaks h2c (prior knowledge) to a plaintext upstream, multiplexing requests on one
 * connection, and round robin, leases and stats behave as over HTTP/1.1.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { SeededRandom } from '../../src/core/random.js';
import { countBy, echoCluster, sendVia } from './upstream-fixtures.js';

async function startH2(name: string) {
  let sessions = 0;
  const server = http2.createServer();
  server.on('session', () => sessions++);
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'x-proto': 'h2', 'x-path': String(headers[':path']) });
    stream.end(name);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    sessions: () => sessions,
    endpoint: () => ({ address: { host: '127.0.0.1', port }, labels: {}, health: 'HEALTHY' as const }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('HTTP/2 upstream', () => {
  test('h2c cluster: round robin over two HTTP/2 servers, one connection each', async () => {
    const servers = await Promise.all([startH2('h2-a'), startH2('h2-b')]);
    const m = createClusterManager({ random: new SeededRandom(4) });
    m.update([echoCluster('h2', { protocol: 'http2' })], [{ clusterName: 'h2', endpoints: servers.map((s) => s.endpoint()) }]);
    const cluster = m.get('h2')!;
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const got = cluster.acquire({});
        assert.ok(got.ok);
        return sendVia(got.lease, '/x');
      }),
    );
    const counts = countBy(results.map((r) => r.body));
    assert.equal(counts.get('h2-a'), 10);
    assert.equal(counts.get('h2-b'), 10);
    assert.ok(results.every((r) => r.status === 200));
    for (const s of servers) assert.equal(s.sessions(), 1, `${s.name}: requests share one HTTP/2 connection`);
    assert.equal(m.stats()[0].activeRequests, 0);
    await m.close();
    await Promise.all(servers.map((s) => s.close()));
  });
});
