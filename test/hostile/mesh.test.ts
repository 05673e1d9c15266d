/**
 * The hostile-input suite against a running mesh: `sinew up test/hostile/fixtures` (an
 * ingress gateway speaking HTTP/1.1 and HTTP/2, and two apps that record every request that
 * reaches them, each behind its sidecar), attacked at the gateway and at a sidecar's inbound
 * listener the way a process on the same machine could: request smuggling shapes, header
 * floods, the failed-upgrade bypass, forged identity headers, HTTP/2 rapid reset and the
 * CONTINUATION flood. Each attack must get the right answer, close its connection within its
 * timeout, and reach no app it should not; meanwhile well-behaved clients keep asking through
 * the same proxies, and every one of their requests must be served (their success rate and
 * latency are reported). At the end no proxy has restarted. The attacks that wait on timeouts
 * (slowloris, slow bodies, connection floods) run against a proxy process with short ones:
 * test/hostile/proxy.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshStatus, ReplicaStatus } from '../../src/api/mesh-status.js';
import { peerMetadataHeaders } from '../../src/telemetry/peer-metadata.js';
import { get, startMesh, until, type Mesh } from '../mesh/support.js';
import { requestSeries } from '../support/metrics.js';
import { eventually, rawConnection } from '../proxy/support/edge.js';
import { FLAG, FRAME, filler, frame, rawH2, requestBlock, rstStream } from '../proxy/support/h2-frames.js';
import type { SeenHead } from '../proxy/support/raw-app.js';
import { SMUGGLING_SHAPES } from './shapes.js';
import { describeLoad, normalClients, type LoadReport } from './support.js';

const FORGED: Record<string, string> = {
  'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/default/sa/web;URI=spiffe://cluster.local/ns/default/sa/admin',
  ...peerMetadataHeaders({ id: 'sidecar~admin-v1-0.default', mode: 'sidecar', workload: 'admin-v1', namespace: 'default', labels: { app: 'admin', version: 'v1' } }),
  'x-sinew-peer-signature': 'A'.repeat(43),
};
const forgedLines = Object.entries(FORGED).map(([k, v]) => `${k}: ${v}\r\n`).join('');
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

describe('hostile input against a running mesh', { timeout: 600_000 }, () => {
  let mesh: Mesh;
  let status: MeshStatus;
  let gateway: number;
  let web: ReplicaStatus;
  let stream: ReplicaStatus;
  let load: { stop(): Promise<LoadReport> } | undefined;
  let report: LoadReport | undefined;

  /** What reached an app, asked of the app directly. */
  const seenBy = async (replica: ReplicaStatus): Promise<SeenHead[]> => JSON.parse((await get(`http://${replica.app}/_seen`)).body) as SeenHead[];
  const targets = () => [
    { name: 'gateway', port: gateway, host: 'edge.example' },
    { name: 'web sidecar', port: portOf(web.proxy.inbound!), host: 'web' },
  ];

  before(async () => {
    mesh = await startMesh(['test/hostile/fixtures']);
    status = await mesh.status();
    gateway = portOf(status.gateways[0].replicas[0].proxy.servers?.['8080'] ?? assert.fail('the gateway serves no port 8080'));
    web = status.workloads.find((w) => w.name === 'web-v1')!.replicas[0];
    stream = status.workloads.find((w) => w.name === 'stream-v1')!.replicas[0];
    await until('the gateway to route /api', async () => ((await get(`http://127.0.0.1:${gateway}/api/ready`)).status === 200 ? true : undefined));
    load = normalClients([
      { name: 'gateway HTTP/1.1', port: gateway, host: 'edge.example', path: '/api/normal' },
      { name: 'gateway HTTP/2', port: gateway, host: 'edge.example', path: '/h2/normal', h2: true },
      { name: 'web sidecar', port: portOf(web.proxy.inbound!), host: 'web', path: '/api/normal' },
      { name: 'stream sidecar HTTP/2', port: portOf(stream.proxy.inbound!), host: 'stream', path: '/h2/normal', h2: true },
    ]);
  });

  after(async () => {
    if (load && !report) await load.stop();
    await mesh?.stop();
  });

  test(`${SMUGGLING_SHAPES.length} smuggling shapes: each refused 400 and closed; the request hidden in it reaches no app`, async () => {
    for (const target of targets()) {
      await Promise.all(
        SMUGGLING_SHAPES.map(async (shape) => {
          const c = await rawConnection(target.port);
          try {
            c.socket.write(shape.bytes);
            await eventually(() => c.isClosed(), `${target.name}, ${shape.name}: the connection to close`, 10_000);
            assert.deepEqual(c.statuses(), [400], `${target.name}, ${shape.name}: ${c.text().slice(0, 200)}`);
          } finally {
            c.socket.destroy();
          }
        }),
      );
    }
    assert.deepEqual((await seenBy(web)).filter((h) => h.path.startsWith('/api/smuggled')), []);
  });

  test('header floods: 5,000 tiny fields and one 100 KB field get 431 and reach no app', async () => {
    const floods = [`GET /api/flood-count HTTP/1.1\r\nHost: web\r\n${'a:b\r\n'.repeat(5000)}\r\n`, `GET /api/flood-size HTTP/1.1\r\nHost: web\r\nx-big: ${'z'.repeat(100_000)}\r\n\r\n`];
    for (const target of targets()) {
      for (const flood of floods) {
        const c = await rawConnection(target.port);
        try {
          c.socket.write(flood);
          await eventually(() => c.isClosed(), `${target.name}: the connection to close`, 10_000);
          assert.deepEqual(c.statuses(), [431], target.name);
        } finally {
          c.socket.destroy();
        }
      }
    }
    assert.deepEqual((await seenBy(web)).filter((h) => h.path.startsWith('/api/flood')), []);
  });

  test('the failed-upgrade bypass: after a declined upgrade the next request is routed (404 NR at the gateway), never spliced to the app', async () => {
    for (const target of targets()) {
      const c = await rawConnection(target.port);
      try {
        c.socket.write(
          `GET /ws/declined HTTP/1.1\r\nHost: ${target.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n` +
            `GET /internal/admin HTTP/1.1\r\nHost: ${target.host}\r\n${forgedLines}x-envoy-attempt-count: 99\r\n\r\n`,
        );
        await eventually(() => c.statuses().length === 2, `${target.name}: two answers`);
        assert.deepEqual(c.statuses(), target.name === 'gateway' ? [200, 404] : [200, 200], target.name);
      } finally {
        c.socket.destroy();
      }
    }
    const admin = (await seenBy(web)).filter((h) => h.path === '/internal/admin');
    // Only the sidecar routes every path to its app; what arrives there was routed.
    assert.equal(admin.length, 1, 'the gateway never let it through');
    assert.equal(admin[0].headers['x-envoy-attempt-count'], '1');
    assert.equal(admin[0].headers['x-forwarded-client-cert'], undefined);
    assert.equal(admin[0].headers['x-envoy-peer-metadata-id'], undefined);
  });

  test('forged identity headers: no app sees a client\'s certificate header, and no sidecar records the forged source', async () => {
    for (const target of targets()) {
      const res = await get(`http://127.0.0.1:${target.port}/api/forged-${target.name.replace(' ', '-')}`, { host: target.host, ...FORGED });
      assert.equal(res.status, 200);
    }
    const forged = (await seenBy(web)).filter((h) => h.path.startsWith('/api/forged'));
    assert.equal(forged.length, 2);
    for (const h of forged) {
      // The client's value never arrives: the request reached the app's sidecar either in
      // plaintext (none) or over mutual TLS from the gateway, whose sidecar-made XFCC names
      // the gateway's certificate, not the forged identity.
      const xfcc = h.headers['x-forwarded-client-cert'];
      assert.notEqual(xfcc, FORGED['x-forwarded-client-cert']);
      if (xfcc !== undefined) assert.match(String(xfcc), /;URI=spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istio-ingressgateway-service-account$/);
      assert.notEqual(h.headers['x-envoy-peer-metadata'], FORGED['x-envoy-peer-metadata']);
    }
    const series = requestSeries((await get(`http://${web.proxy.metrics}/stats/prometheus`)).body).filter((s) => s.labels.reporter === 'destination');
    assert.deepEqual(series.filter((s) => s.labels.source_workload === 'admin-v1'), []);
    assert.ok(series.some((s) => s.labels.source_workload === 'istio-ingressgateway'), 'the gateway\'s own identity is kept');
  });

  test('HTTP/2 rapid reset at the gateway and a sidecar: the connections are closed, the reset streams reach no app', async () => {
    for (const [name, port, authority] of [['gateway', gateway, 'edge.example'], ['stream sidecar', portOf(stream.proxy.inbound!), 'stream']] as const) {
      const path = `/h2/rr-${name.replace(' ', '-')}`;
      const c = await rawH2(port);
      try {
        const frames: Buffer[] = [];
        for (let i = 0; i < 2000; i++) frames.push(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1 + 2 * i, requestBlock(path, authority)), rstStream(1 + 2 * i));
        c.socket.write(Buffer.concat(frames));
        await eventually(() => c.isClosed(), `${name}: the attack connection to close`, 5_000);
      } finally {
        c.socket.destroy();
      }
      const reached = (await seenBy(stream)).filter((h) => h.path === path).length;
      assert.ok(reached < 20, `${name}: ${reached} reset streams reached the app`);
    }
  });

  test('HTTP/2 CONTINUATION flood at the gateway and a sidecar: cut off, nothing reaches an app', async () => {
    for (const [name, port, authority] of [['gateway', gateway, 'edge.example'], ['stream sidecar', portOf(stream.proxy.inbound!), 'stream']] as const) {
      const path = `/h2/cont-${name.replace(' ', '-')}`;
      const c = await rawH2(port);
      const block = frame(FRAME.CONTINUATION, 0, 1, filler(100));
      c.socket.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, requestBlock(path, authority)));
      // The attacker's pace, not a wait for a condition.
      const flood = setInterval(() => c.socket.writable && c.socket.write(block), 1);
      try {
        // Its bound: a session that stops answering is closed after the PING probe (at most
        // 30 s of quiet) and the drain timeout (5 s); nghttp2 usually ends it at once.
        await eventually(() => c.isClosed(), `${name}: the flooding connection to close`, 40_000);
      } finally {
        clearInterval(flood);
        c.socket.destroy();
      }
      assert.equal((await seenBy(stream)).filter((h) => h.path === path).length, 0, name);
    }
  });

  test('no proxy crashed or restarted, and normal clients were served throughout', async (t) => {
    report = await load!.stop();
    t.diagnostic(describeLoad(report));
    const now = await mesh.status();
    for (const replica of [...now.gateways, ...now.workloads].flatMap((w) => w.replicas)) {
      assert.equal(replica.restarts, 0, `${replica.id} restarted`);
      assert.equal(replica.ready, true, `${replica.id} ready`);
      assert.equal((await get(`http://${replica.proxy.admin}/ready`)).status, 200, `${replica.id}'s proxy answers`);
    }
    assert.ok(report.sent > 0);
    assert.equal(report.ok, report.sent, `normal clients failed: ${report.failures.join('; ')}`);
  });
});
