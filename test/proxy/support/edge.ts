/**
 * One proxy config with the three kinds of HTTP listener a request can meet, each routing to
 * the same app, so that a hostile case runs at the gateway and at a sidecar alike:
 *
 *   gateway   the ingress gateway (direction `gateway`): host `app`, paths /ws and /api only
 *   outbound  a sidecar's outbound listener (the app's HTTP_PROXY): the same routes
 *   inbound   a sidecar's inbound listener: every path to its app, as Istio's inbound routes
 *
 * A path outside /ws and /api (`/internal/admin`) therefore gets 404 NR at the first two and
 * is routed to the app at the third.
 */
import net from 'node:net';
import type { HttpConnectionManager, ProxyConfig } from '../../../src/api/proxy-config.js';
import { cluster, endpoint, httpListener, proxyConfig, route, routeTo, table, vhost } from './config.js';

export const APP = 'outbound|80||app.default.svc.cluster.local';
export const EDGE_LISTENERS = ['gateway', 'outbound', 'inbound'] as const;
export type EdgeListener = (typeof EDGE_LISTENERS)[number];

export function edgeConfig(appPort: number, http: Partial<HttpConnectionManager> = {}, extra: Partial<ProxyConfig> = {}): ProxyConfig {
  const routes = [route('ws', { path: { prefix: '/ws' } }, routeTo(APP)), route('api', { path: { prefix: '/api' } }, routeTo(APP))];
  return {
    ...proxyConfig({
      listeners: [
        httpListener('gateway', { routeConfigName: 'edge', ...http }, { direction: 'gateway' }),
        httpListener('outbound', { routeConfigName: 'edge', acceptAbsoluteUri: true, ...http }, { direction: 'outbound' }),
        httpListener('inbound', { routeConfigName: 'inbound', ...http }, { direction: 'inbound' }),
      ],
      routeConfigs: [
        table('edge', [vhost('app', ['app', 'app:80'], routes)]),
        table('inbound', [vhost('inbound', ['*'], [route('default', { path: { prefix: '/' } }, routeTo(APP))])]),
      ],
      clusters: [cluster(APP)],
      endpoints: [{ clusterName: APP, endpoints: [endpoint(appPort)] }],
    }),
    ...extra,
  };
}

/** Resolves once `cond` holds, looking after every turn of the event loop; fails after `ms` (never hangs). */
export async function eventually(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A raw client connection that collects what it reads. */
export interface RawConnection {
  readonly socket: net.Socket;
  /** Everything read so far, as latin1. */
  text(): string;
  /** Statuses of the responses read so far (the app's bodies never contain a status line). */
  statuses(): number[];
  isClosed(): boolean;
}

export async function rawConnection(port: number): Promise<RawConnection> {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  let isClosed = false;
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  socket.on('error', () => {});
  socket.on('close', () => (isClosed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    text: () => got,
    statuses: () => [...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])),
    isClosed: () => isClosed,
  };
}
