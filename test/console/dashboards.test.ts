/**
 * Istio's standard dashboards rebuilt for Sinew (src/controlplane/console/dashboards.ts):
 * docs/grafana/ holds what the generator writes; every query names only the metrics and labels
 * Sinew's proxies serve; and a real Prometheus, scraping two proxies' metrics (a productpage
 * sidecar and a reviews sidecar, requests and a TCP stream between them, reviews calling ratings), accepts every
 * query and every template variable and answers each HTTP panel with data.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import { dashboard, DASHBOARD_NAMES } from '../../src/controlplane/console/dashboards.js';
import { HTTP_LABELS, MeshMetrics, TCP_LABELS } from '../../src/telemetry/metrics.js';
import { decodePeerMetadata, encodePeerMetadata } from '../../src/telemetry/peer-metadata.js';
import type { TelemetryRequestEvent, TelemetryTcpEvent } from '../../src/telemetry/events.js';
import { dashboardFile, dashboardText } from '../../scripts/dashboards.js';
import { prometheusMissing, startPrometheus } from '../support/prometheus.js';

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}
interface Variable {
  name: string;
  type: string;
  definition?: string;
}

const panels = (name: (typeof DASHBOARD_NAMES)[number]) => (dashboard(name).panels as Panel[]).filter((p) => p.type !== 'row');
const variables = (name: (typeof DASHBOARD_NAMES)[number]) => ((dashboard(name).templating as { list: Variable[] }).list).filter((v) => v.type === 'query');

/** Template variables as a Grafana user would pick them for the Bookinfo pair below. */
const PICKED: Record<string, string> = {
  service: 'reviews.default.svc.cluster.local',
  srcns: '.*',
  srcwl: '.*',
  dstns: '.*',
  dstwl: '.*',
  namespace: 'default',
  workload: 'reviews-v1',
  dstsvc: '.*',
};
const substitute = (expr: string) => expr.replace(/\$(\w+)/g, (_, v: string) => PICKED[v] ?? assert.fail(`unknown variable $${v}`));

const SERVED_METRICS = new Set(['istio_requests_total', 'istio_request_duration_milliseconds_bucket', 'istio_request_bytes_bucket', 'istio_response_bytes_bucket', 'istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total', 'istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total']);
const SERVED_LABELS = new Set<string>([...HTTP_LABELS, ...TCP_LABELS, 'le']);

describe('the Grafana dashboards', () => {
  test('docs/grafana/ holds what the generator writes (npm run dashboards)', () => {
    for (const name of DASHBOARD_NAMES) assert.equal(readFileSync(dashboardFile(name), 'utf8'), dashboardText(name), `${dashboardFile(name)} is stale: run npm run dashboards`);
  });

  test('Istio\'s panels, over metrics and labels Sinew serves only', () => {
    assert.deepEqual(panels('mesh').map((p) => p.title).slice(0, 4), ['Global Request Volume', 'Global Success Rate (non-5xx responses)', '4xxs', '5xxs']);
    assert.ok(panels('service').some((p) => p.title === 'Incoming Requests By Source And Response Code'));
    assert.ok(panels('workload').some((p) => p.title === 'Outgoing Requests By Destination And Response Code'));
    for (const name of DASHBOARD_NAMES) {
      const exprs = [...panels(name).flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...variables(name).map((v) => v.definition!)];
      for (const expr of exprs) {
        for (const [, metric] of expr.matchAll(/\b(istio_\w+|envoy_\w+|sinew_\w+)\b/g)) assert.ok(SERVED_METRICS.has(metric), `${name}: ${metric} is not served (${expr})`);
        const labels = [...expr.matchAll(/\b(\w+)\s*(?:=~|!~|!=|=)\s*"/g)].map((m) => m[1]).concat([...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((s) => s.trim())));
        for (const label of labels) assert.ok(SERVED_LABELS.has(label), `${name}: label ${label} is not served (${expr})`);
      }
    }
  });

  test('a real Prometheus accepts every query and answers the HTTP panels', { skip: prometheusMissing(), timeout: 60_000 }, async () => {
    const productpage: ProxyNode = { id: 'sidecar~productpage-v1-0.default', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default', labels: { app: 'productpage', version: 'v1' } };
    const reviews: ProxyNode = { id: 'sidecar~reviews-v1-0.default', mode: 'sidecar', workload: 'reviews-v1', namespace: 'default', labels: { app: 'reviews', version: 'v1' } };
    const request = (direction: string, status: number): TelemetryRequestEvent => ({
      listener: direction === 'inbound' ? 'virtualInbound' : 'virtualOutbound', direction, requestId: 'r', method: 'GET', authority: 'reviews:9080', destinationService: 'reviews.default.svc.cluster.local', path: '/reviews/0', protocol: 'HTTP/1.1',
      cluster: direction === 'inbound' ? 'inbound|9080||' : 'outbound|9080||reviews.default.svc.cluster.local', status, flags: '-', downstreamPeer: '127.0.0.1:1', attempts: 1, requestBytes: 10, responseBytes: 300, startTime: 0, durationMs: 7,
    });
    const tcp = (direction: string): TelemetryTcpEvent => ({ destinationService: 'reviews.default.svc.cluster.local', listener: direction === 'inbound' ? 'virtualInbound' : 'virtualOutbound', direction, cluster: direction === 'inbound' ? 'inbound|9080||' : 'outbound|9080||reviews.default.svc.cluster.local', flags: '-', downstreamPeer: '127.0.0.1:1', bytesReceived: 100, bytesSent: 200, durationMs: 5 });
    const source = new MeshMetrics();
    const destination = new MeshMetrics();
    const ratings: ProxyNode = { id: 'sidecar~ratings-v1-0.default', mode: 'sidecar', workload: 'ratings-v1', namespace: 'default', labels: { app: 'ratings', version: 'v1' } };
    const toRatings = decodePeerMetadata(encodePeerMetadata(ratings));
    const fromProductpage = decodePeerMetadata(encodePeerMetadata(productpage));
    const toReviews = decodePeerMetadata(encodePeerMetadata(reviews));
    const record = () => {
      for (const status of [200, 200, 503]) {
        source.recordRequest(request('outbound', status), { local: productpage, remote: toReviews });
        destination.recordRequest(request('inbound', status), { local: reviews, remote: fromProductpage });
        // reviews calls ratings: the workload dashboard's outbound panels.
        destination.recordRequest({ ...request('outbound', status), destinationService: 'ratings.default.svc.cluster.local', cluster: 'outbound|9080||ratings.default.svc.cluster.local' }, { local: reviews, remote: toRatings });
      }
      source.recordTcp(tcp('outbound'), { local: productpage, remote: toReviews });
      destination.recordTcp(tcp('inbound'), { local: reviews, remote: fromProductpage });
    };
    record();
    let scrapes = 0;
    const serve = (metrics: MeshMetrics) =>
      http.createServer((_req, res) => {
        // Traffic keeps flowing between scrapes, so rates are above zero.
        record();
        void metrics.registry.metrics().then((body) => {
          res.setHeader('content-type', metrics.registry.contentType);
          res.end(body, () => scrapes++);
        });
      });
    const servers = [serve(source), serve(destination)];
    for (const s of servers) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const prom = await startPrometheus([{ name: 'sinew', targets: servers.map((s) => ({ address: `127.0.0.1:${(s.address() as AddressInfo).port}` })) }]);
    try {
      // rate() needs two samples of each series: wait for three scrapes of each target.
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline && !((await prom.query('count(count_over_time(istio_requests_total[1m]) >= 3)')) === 6)) {
        await Promise.race([new Promise((r) => setTimeout(r, 200)), prom.exited]);
      }
      assert.ok(scrapes >= 6, `Prometheus scraped ${scrapes} times; its log:\n${prom.log()}`);
      for (const name of DASHBOARD_NAMES) {
        for (const v of variables(name)) {
          const selector = /^label_values\((.*), (\w+)\)$/.exec(v.definition!)!;
          const inner = selector[1].startsWith('istio_') ? substitute(selector[1]) : selector[1];
          const values = new Set((await prom.vector(inner)).map((s) => s.metric[selector[2]]));
          assert.ok(values.size > 0, `${name}: variable ${v.name} has no values (${inner})`);
        }
        for (const p of panels(name)) {
          for (const t of p.targets ?? []) {
            const result = await prom.vector(substitute(t.expr)); // throws if Prometheus rejects it
            if (!/istio_tcp_/.test(t.expr)) assert.ok(result.length > 0, `${name} / ${p.title}: no data for ${substitute(t.expr)}`);
          }
        }
      }
      const success = await prom.query(substitute(panels('service').find((p) => p.title === 'Server Success Rate (non-5xx responses)')!.targets![0].expr));
      assert.ok(success !== undefined && Math.abs(success - 2 / 3) < 0.01, `success rate ${success}, expected 2 of 3`);
    } finally {
      await prom.stop();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  });
});
