/**
 * The console's metrics: the exposition parser, the bounded sample window (increases across
 * counter resets, series born between scrapes, retention) and histogram quantiles, and the
 * scraper reading real proxies' endpoints (HTTP servers on port 0) on a manual clock.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../../src/core/clock.js';
import { histogramQuantile, increase, SampleWindow } from '../../src/controlplane/console/sample-window.js';
import { MetricsScraper, parseIstioMetrics } from '../../src/controlplane/console/scraper.js';
import { MeshMetrics } from '../../src/telemetry/metrics.js';

const family = (name: string, type: string, lines: string[]) => [`# HELP ${name} x`, `# TYPE ${name} ${type}`, ...lines].join('\n') + '\n';

describe('parseIstioMetrics', () => {
  test('histogram series of different label sets stay apart, with their labels (parse-prometheus-text-format merged them)', () => {
    const text = family('istio_request_duration_milliseconds', 'histogram', [
      'istio_request_duration_milliseconds_bucket{reporter="source",destination_workload="a",le="5"} 1',
      'istio_request_duration_milliseconds_bucket{reporter="source",destination_workload="a",le="+Inf"} 3',
      'istio_request_duration_milliseconds_sum{reporter="source",destination_workload="a"} 30',
      'istio_request_duration_milliseconds_count{reporter="source",destination_workload="a"} 3',
      'istio_request_duration_milliseconds_bucket{reporter="source",destination_workload="b",le="5"} 4',
      'istio_request_duration_milliseconds_bucket{reporter="source",destination_workload="b",le="+Inf"} 5',
      'istio_request_duration_milliseconds_sum{reporter="source",destination_workload="b"} 9',
      'istio_request_duration_milliseconds_count{reporter="source",destination_workload="b"} 5',
    ]);
    const series = parseIstioMetrics(text);
    assert.deepEqual(
      series.map((s) => [s.family, s.labels.destination_workload, s.bounds, s.value]),
      [
        ['duration', 'a', [5], [3, 1]],
        ['duration', 'b', [5], [5, 4]],
      ],
    );
  });

  test('escaped label values, other families and malformed lines', () => {
    const text = [
      family('istio_requests_total', 'counter', ['istio_requests_total{reporter="source",response_code="200",destination_service="a\\"b\\\\c\\nd"} 7 1700000000000']),
      family('envoy_cluster_upstream_rq_retry', 'counter', ['envoy_cluster_upstream_rq_retry{cluster_name="x"} 2']),
      'istio_tcp_sent_bytes_total{reporter="source" 5',
      'istio_tcp_received_bytes_total{reporter="destination",unknown_label="dropped"} 1e3',
    ].join('\n');
    assert.deepEqual(parseIstioMetrics(text), [
      { family: 'requests', labels: { reporter: 'source', response_code: '200', destination_service: 'a"b\\c\nd' }, value: [7] },
      { family: 'tcpReceived', labels: { reporter: 'destination' }, value: [1000] },
    ]);
  });

  test('reads what a proxy serves', async () => {
    const metrics = new MeshMetrics();
    const local = { id: 'sidecar~a-0.default', mode: 'sidecar' as const, workload: 'a-v1', namespace: 'default', labels: { app: 'a', version: 'v1' } };
    metrics.recordRequest(
      { direction: 'outbound', method: 'GET', status: 503, flags: 'UH', durationMs: 12, requestBytes: 0, responseBytes: 10, protocol: 'http', serviceHost: 'b.default.svc.cluster.local', mtls: false } as never,
      { local },
    );
    const series = parseIstioMetrics(await metrics.registry.metrics());
    const requests = series.find((s) => s.family === 'requests');
    assert.equal(requests?.labels.response_code, '503');
    assert.equal(requests?.labels.response_flags, 'UH');
    assert.equal(requests?.labels.source_workload, 'a-v1');
    assert.deepEqual(requests?.value, [1]);
    const duration = series.find((s) => s.family === 'duration');
    assert.equal(duration?.value[0], 1);
    assert.ok(duration!.bounds!.length > 10);
  });
});

describe('SampleWindow', () => {
  const counter = (v: number) => [{ family: 'requests' as const, labels: { reporter: 'source' }, value: [v] }];
  const only = (w: SampleWindow) => [...w.series()][0];

  test('an increase is the difference between the samples at the window ends', () => {
    const w = new SampleWindow(60_000);
    for (const [t, v] of [[0, 10], [5000, 14], [10_000, 20], [15_000, 31]]) w.record('p', t, counter(v));
    assert.deepEqual(increase(only(w), 5000, 15_000), [17]);
    assert.deepEqual(increase(only(w), 0, 10_000), [10]);
    // The first sample of a series present at the target's first scrape is only a baseline.
    assert.deepEqual(increase(only(w), -5000, 5000), [4]);
    assert.equal(increase(only(w), 15_000, 20_000), undefined);
  });

  test('a counter reset (the proxy restarted) counts the new value from zero', () => {
    const w = new SampleWindow(60_000);
    for (const [t, v] of [[0, 100], [5000, 120], [10_000, 3], [15_000, 8]]) w.record('p', t, counter(v));
    assert.deepEqual(increase(only(w), 0, 15_000), [20 + 3 + 5]);
  });

  test('a series that appears after its target\'s first scrape started at zero', () => {
    const w = new SampleWindow(60_000);
    w.record('p', 0, counter(1));
    w.record('p', 5000, [...counter(2), { family: 'requests', labels: { reporter: 'destination' }, value: [6] }]);
    const born = [...w.series()].find((s) => s.labels.reporter === 'destination')!;
    assert.deepEqual(increase(born, 0, 5000), [6]);
  });

  test('histogram vectors: every bucket grows by its own difference', () => {
    const w = new SampleWindow(60_000);
    w.record('p', 0, [{ family: 'duration', labels: {}, bounds: [1, 10], value: [2, 1, 2] }]);
    w.record('p', 5000, [{ family: 'duration', labels: {}, bounds: [1, 10], value: [7, 2, 6] }]);
    assert.deepEqual(increase(only(w), 0, 5000), [5, 1, 4]);
  });

  test('older samples are thinned to one per 30 s; increases over any window stay exact, across resets too', () => {
    const w = new SampleWindow(31 * 60_000);
    // 40 minutes of scrapes every 5 s, 3 requests each; the proxy restarts at minute 20.
    let total = 0;
    let counter = 0;
    const totals = new Map<number, number>();
    for (let t = 0; t <= 40 * 60_000; t += 5000) {
      if (t === 20 * 60_000) counter = 0;
      else if (t > 0) {
        counter += 3;
        total += 3;
      }
      totals.set(t, total);
      w.record('p', t, [{ family: 'requests', labels: { reporter: 'source' }, value: [counter] }]);
    }
    const s = only(w);
    assert.ok(s.length < 6 * 12 + 26 * 2 + 6, `${s.length} samples kept`);
    const now = 40 * 60_000;
    // The restart's scrape counted nothing of its own: the counter went back to 0.
    for (const minutes of [1, 5, 30]) assert.deepEqual(increase(s, now - minutes * 60_000, now), [totals.get(now)! - totals.get(now - minutes * 60_000)!], `${minutes} m`);
  });

  test('keeps only the retention, plus one older sample as the oldest window\'s baseline', () => {
    const w = new SampleWindow(10_000);
    for (let t = 0; t <= 60_000; t += 5000) w.record('p', t, counter(t / 1000));
    assert.deepEqual(only(w).times, [50_000, 55_000, 60_000]);
    assert.deepEqual(increase(only(w), 50_000, 60_000), [10]);
    w.record('p', 100_000, []);
    assert.equal(w.size().series, 0, 'a series not seen for a whole retention goes');
  });
});

test('histogramQuantile interpolates inside the bucket, as Prometheus does', () => {
  // 10 observations: 4 under 10 ms, 4 in (10, 20], 2 in (20, 40].
  const bounds = [10, 20, 40];
  const cumulative = [4, 8, 10];
  assert.equal(histogramQuantile(0.5, bounds, cumulative, 10), 12.5);
  assert.equal(histogramQuantile(0.2, bounds, cumulative, 10), 5);
  assert.equal(histogramQuantile(0.95, bounds, cumulative, 10), 35);
  assert.equal(histogramQuantile(0.99, bounds, [4, 8, 9], 10), 40, 'in the +Inf bucket: the highest finite bound');
  assert.equal(histogramQuantile(0.5, bounds, [0, 0, 0], 0), undefined);
});

describe('MetricsScraper over real endpoints', () => {
  const servers: Server[] = [];
  after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

  async function endpoint(body: () => string, status = () => 200): Promise<string> {
    const server = createServer((req, res) => {
      assert.equal(req.url, '/stats/prometheus');
      res.writeHead(status(), { 'content-type': 'text/plain' }).end(body());
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  test('each round stamps samples with the clock; a failing target keeps what it had and is counted', async () => {
    let count = 5;
    let up = true;
    const a = await endpoint(() => family('istio_requests_total', 'counter', [`istio_requests_total{reporter="source"} ${count}`]), () => (up ? 200 : 500));
    const clock = new ManualClock(1_000_000);
    const scraper = new MetricsScraper({ clock, targets: () => [{ id: 'a', address: a }, { id: 'gone', address: '127.0.0.1:1' }] });
    await scraper.scrapeOnce();
    clock.advance(5000);
    count = 9;
    await scraper.scrapeOnce();
    const series = [...scraper.window.series()];
    assert.equal(series.length, 1);
    assert.deepEqual(series[0].times, [1_000_000, 1_005_000]);
    assert.deepEqual(increase(series[0], 1_000_000, 1_005_000), [4]);
    assert.deepEqual(scraper.status(), { targets: 2, failing: 1, lastAt: 1_005_000, intervalMs: 5000 });
    up = false;
    clock.advance(5000);
    await scraper.scrapeOnce();
    assert.equal(scraper.status().failing, 2);
    assert.deepEqual([...scraper.window.series()][0].times, [1_000_000, 1_005_000]);
  });

  test('start() scrapes on the interval of the injected clock until stop()', async () => {
    let scrapes = 0;
    const a = await endpoint(() => {
      scrapes++;
      return '';
    });
    const clock = new ManualClock(0);
    const scraper = new MetricsScraper({ clock, intervalMs: 1000, targets: () => [{ id: 'a', address: a }] });
    scraper.start();
    const until = async (n: number) => {
      for (let i = 0; i < 200 && scrapes < n; i++) await new Promise((r) => setImmediate(r));
      // The next timer is armed once the round's fetch settles.
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    };
    await until(1);
    clock.advance(1000);
    await until(2);
    clock.advance(1000);
    await until(3);
    await scraper.stop();
    clock.advance(5000);
    await until(4);
    assert.equal(scrapes, 3);
  });
});
