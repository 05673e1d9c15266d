/**
 * The console's control-plane side, as the daemon starts it: the metrics scraper over every
 * registered proxy and the console's HTTP server, sharing the mesh's token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WorkloadRegistration } from '../../api/mesh-status.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { TraceStore } from '../../telemetry/trace-store.js';
import type { Inventory } from './inventory.js';
import { MetricsScraper, type ScrapeTarget } from './scraper.js';
import { startConsoleServer, type ConsoleServer } from './server.js';

export interface ConsoleOptions {
  host: string;
  port: number;
  /** The control plane's API token (controlplane/credentials.ts): the console's login and its bearer credential. */
  token: string;
  clock: Clock;
  logger: Logger;
  scrapeIntervalMs?: number;
  traces: TraceStore;
  controlPlaneApi: (req: IncomingMessage, res: ServerResponse) => void;
  registrations: () => Iterable<WorkloadRegistration>;
  proxyIdOf: (registration: WorkloadRegistration, replicaId: string) => string;
  inventory: () => Inventory;
  staticDir?: string;
}

export interface Console {
  /** `host:port`. */
  readonly address: string;
  readonly token: string;
  readonly scraper: MetricsScraper;
  readonly server: ConsoleServer;
  close(): Promise<void>;
}

export async function startConsole(o: ConsoleOptions): Promise<Console> {
  const token = o.token;
  const scraper = new MetricsScraper({
    clock: o.clock,
    intervalMs: o.scrapeIntervalMs,
    logger: o.logger.child('scraper'),
    targets: () => {
      const targets: ScrapeTarget[] = [];
      for (const r of o.registrations()) for (const rep of r.replicas) if (rep.proxy.metrics) targets.push({ id: o.proxyIdOf(r, rep.id), address: rep.proxy.metrics });
      return targets;
    },
  });
  const server = await startConsoleServer({
    host: o.host,
    port: o.port,
    token,
    clock: o.clock,
    scraper,
    inventory: o.inventory,
    traces: o.traces,
    controlPlaneApi: o.controlPlaneApi,
    staticDir: o.staticDir,
    logger: o.logger,
  });
  scraper.start();
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    address: `${host}:${server.address.port}`,
    token,
    scraper,
    server,
    async close() {
      await scraper.stop();
      await server.close();
    },
  };
}
