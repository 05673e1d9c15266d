/**
 * The proxy's Prometheus endpoints (DESIGN.md ports): Envoy's own metrics at
 * `:15090/stats/prometheus`, and Istio's agent endpoint at `:15020/stats/prometheus`, which
 * merges the application's scrape (when the workload exposes one) after the proxy's so that
 * a single scrape annotation covers both. A slow or failing application endpoint never fails
 * the scrape: its part is left out, counted, and the proxy's metrics are still served.
 */
import http from 'node:http';
import { LocalHttpServer } from './local-server.js';
import type { MeshMetrics } from '../telemetry/metrics.js';

/** Prometheus' own default scrape timeout is 10 s; the app's part must come well before it. */
const APP_SCRAPE_TIMEOUT_MS = 5_000;
/** Application scrapes larger than this are left out (the merged text is held in memory). */
const MAX_APP_METRICS_BYTES = 16 * 1024 * 1024;
const TEXT_FORMAT = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsServerOptions {
  /** The metrics in force; undefined while telemetry is off or before the first config. */
  metrics: () => MeshMetrics | undefined;
  /** Set for the merged endpoint: the application's own Prometheus URL. */
  appMetricsUrl?: string;
  merged: boolean;
}

export class MetricsServer extends LocalHttpServer {
  protected readonly server: http.Server;
  /** Application scrapes that failed (unreachable, timed out, not 200, too large). */
  appScrapeFailures = 0;

  constructor(private readonly options: MetricsServerOptions) {
    super();
    this.server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' || (path !== '/stats/prometheus' && path !== '/metrics')) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics are served at /stats/prometheus\n');
        return;
      }
      this.render().then(
        ({ contentType, text }) => {
          res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
        (err: Error) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`metrics could not be rendered: ${err.message}\n`);
        },
      );
    });
  }

  /** The text this endpoint serves. */
  async render(): Promise<{ contentType: string; text: string }> {
    const metrics = this.options.metrics();
    const contentType = metrics?.contentType ?? TEXT_FORMAT;
    if (!this.options.merged || !this.options.appMetricsUrl) return { contentType, text: metrics ? await metrics.render() : '' };
    const app = await this.scrapeApp(this.options.appMetricsUrl);
    if (!metrics) return { contentType, text: app ?? '' };
    return { contentType, text: app === undefined ? await metrics.render() : await metrics.merge(app) };
  }

  private async scrapeApp(url: string): Promise<string | undefined> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(APP_SCRAPE_TIMEOUT_MS), headers: { accept: 'text/plain' } });
      const text = await res.text();
      if (res.status !== 200 || text.length > MAX_APP_METRICS_BYTES) {
        this.appScrapeFailures++;
        return undefined;
      }
      return text;
    } catch {
      this.appScrapeFailures++;
      return undefined;
    }
  }

}
