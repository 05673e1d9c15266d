/**
 * The admin port (Istio's 15000): /ready, /config_dump, /clusters, /stats, /stats/prometheus
 * (the same text as the metrics port, for convenience), /certs (the workload certificate and
 * the trust bundle, as Envoy's /certs: identities, serials and validity, never a key). Read-only; it binds
 * to loopback unless told otherwise.
 */
import http from 'node:http';
import { LocalHttpServer } from './local-server.js';
import type { ClusterManager } from './upstream/types.js';
import type { ProxyStats } from './events.js';
import type { Snapshot } from './runtime.js';

export interface AdminSource {
  current(): Snapshot | undefined;
  stats: ProxyStats;
  clusterManager: ClusterManager;
  /** Extra gauges for /stats (open connections and the like). */
  gauges(): Record<string, number>;
  /** Prometheus text of the proxy's metrics (what the metrics port serves). */
  prometheus?(): Promise<{ contentType: string; text: string }>;
  /** The proxy's certificates, without keys (secrets/mesh-secrets.ts describe()). */
  certificates?(): unknown;
  /** What the proxy still waits for before it can serve its config (the workload certificate), if anything. */
  waitingFor?(): string | undefined;
}

/** The config as /config_dump shows it: private keys redacted, as Envoy's config dump does. */
function redacted(config: Snapshot['config']): unknown {
  if (!config.secrets?.some((s) => s.privateKeyPem !== undefined)) return config;
  return { ...config, secrets: config.secrets.map((s) => (s.privateKeyPem === undefined ? s : { ...s, privateKeyPem: '[redacted]' })) };
}

export class AdminServer extends LocalHttpServer {
  protected readonly server: http.Server;

  constructor(private readonly source: AdminSource) {
    super();
    this.server = http.createServer((req, res) => this.handle(req, res));
  }


  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const snapshot = this.source.current();
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const text = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    switch (path) {
      case '/ready':
      case '/healthz/ready': {
        if (!snapshot) return text(503, 'no configuration applied yet\n');
        const waiting = this.source.waitingFor?.();
        return waiting ? text(503, `waiting for ${waiting}\n`) : text(200, 'LIVE\n');
      }
      case '/config_dump':
        return snapshot ? json(200, { version: snapshot.version, config: redacted(snapshot.config) }) : json(503, { error: 'no configuration applied yet' });
      case '/certs':
        return this.source.certificates ? json(200, this.source.certificates()) : json(200, { secrets: [] });
      case '/clusters':
        return json(200, this.source.clusterManager.stats());
      case '/stats': {
        const gauges = Object.entries(this.source.gauges()).map(([k, v]) => `${k}: ${v}`).join('\n');
        return text(200, this.source.stats.render() + (gauges ? gauges + '\n' : '') + `config_version: ${snapshot?.version ?? ''}\n`);
      }
      case '/stats/prometheus': {
        const render = this.source.prometheus;
        if (!render) return text(404, 'telemetry is off\n');
        render().then(
          (m) => {
            res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.text) });
            res.end(m.text);
          },
          (err: Error) => text(500, `metrics could not be rendered: ${err.message}\n`),
        );
        return;
      }
      default:
        return text(404, 'admin endpoints: /ready /config_dump /certs /clusters /stats /stats/prometheus\n');
    }
  }
}
