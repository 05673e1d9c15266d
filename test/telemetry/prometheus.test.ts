/**
 * A real Prometheus scrapes the merged metrics endpoint (proxy metrics + an application's,
 * with a malformed application line that would fail the whole scrape if it got through) and
 * answers `sum(istio_requests_total{reporter="destination"})` with the exact count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import { MeshMetrics } from '../../src/telemetry/metrics.js';
import { decodePeerMetadata, encodePeerMetadata } from '../../src/telemetry/peer-metadata.js';
import type { TelemetryRequestEvent } from '../../src/telemetry/events.js';
import { prometheusMissing, startPrometheus, type Prometheus } from '../support/prometheus.js';

const node: ProxyNode = { id: 'sidecar~reviews-v1-0.default', mode: 'sidecar', workload: 'reviews-v1', namespace: 'default', labels: { app: 'reviews', version: 'v1' } };
const client: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };

function inbound(status: number): TelemetryRequestEvent {
  return {
    listener: 'virtualInbound', direction: 'inbound', requestId: 'r', method: 'GET', authority: 'reviews:9080', path: '/', protocol: 'HTTP/1.1',
    cluster: 'inbound|9080||', status, flags: '-', downstreamPeer: '127.0.0.1:1', attempts: 1, requestBytes: 0, responseBytes: 10, startTime: 0, durationMs: 3,
  };
}

test('a real Prometheus scrapes the merged endpoint and reports the exact request count', { skip: prometheusMissing(), timeout: 28_000 }, async () => {
  const metrics = new MeshMetrics();
  const remote = decodePeerMetadata(encodePeerMetadata(client));
  for (let i = 0; i < 5; i++) metrics.recordRequest(inbound(200), { local: node, remote, mtls: true });
  for (let i = 0; i < 2; i++) metrics.recordRequest(inbound(503), { local: node, remote, mtls: true });
  // The source-reporter series must not be counted by the query.
  metrics.recordRequest({ ...inbound(200), direction: 'outbound' }, { local: node });
  const appText = '# TYPE app_orders_total counter\napp_orders_total{shop="a"} 41\nthis line is not prometheus text\n';

  const scrapes = new EventEmitter();
  const target = http.createServer(async (req, res) => {
    const body = await metrics.merge(appText);
    res.setHeader('content-type', metrics.contentType);
    res.end(body, () => scrapes.emit('scrape'));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  const targetPort = (target.address() as AddressInfo).port;

  let prom: Prometheus | undefined;
  try {
    prom = await startPrometheus([{ name: 'sinew', targets: [{ address: `127.0.0.1:${targetPort}` }] }]);

    // Event-driven: after each scrape we serve, ask Prometheus; the value is there once a scrape is ingested.
    let total: number | undefined;
    let app: number | undefined;
    const deadline = Date.now() + 22_000;
    while (Date.now() < deadline) {
      await Promise.race([once(scrapes, 'scrape'), prom.exited]);
      total = await prom.query('sum(istio_requests_total{reporter="destination"})');
      app = await prom.query('app_orders_total');
      if (total !== undefined && app !== undefined) break;
    }
    assert.equal(total, 7, `Prometheus never reported the count; its log:\n${prom.log()}`);
    assert.equal(app, 41, 'the application metric survived the merge');
    assert.equal(await prom.query('sum(istio_requests_total{reporter="destination",response_code="503",source_workload="productpage-v1",connection_security_policy="mutual_tls"})'), 2);
    assert.equal(await prom.query('up{job="sinew"}'), 1, 'the scrape succeeded as a whole');
  } finally {
    await prom?.stop();
    target.closeAllConnections();
    await new Promise<void>((r) => target.close(() => r()));
  }
});
