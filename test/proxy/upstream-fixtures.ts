/**
 * Shared fixtures for the upstream tests: real HTTP servers on port 0 that answer with their
 * name, can hold responses until told, flip status codes, and count connections.
 */
import http from 'node:http';
import { once, EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Cluster, Endpoint } from '../../src/api/proxy-config.js';
import type { UpstreamCluster, UpstreamLease, PickContext } from '../../src/proxy/upstream/types.js';
import { requestVia } from './support/dispatch.js';

export interface EchoServer {
  name: string;
  port: number;
  endpoint(extra?: Partial<Endpoint>): Endpoint;
  /** Status for the next responses (and health checks on /ready). */
  status: number;
  /** Hold every response until releaseHeld() (or only paths starting with /hold when 'hold-path'). */
  holding: boolean | 'hold-path';
  held: http.ServerResponse[];
  hits: number;
  connections: number;
  maxConcurrent: number;
  events: EventEmitter;
  releaseHeld(): void;
  close(): Promise<void>;
}

export async function startEcho(name: string): Promise<EchoServer> {
  const events = new EventEmitter();
  let concurrent = 0;
  const state: EchoServer = {
    name,
    port: 0,
    status: 200,
    holding: false,
    held: [],
    hits: 0,
    connections: 0,
    maxConcurrent: 0,
    events,
    endpoint: (extra = {}) => ({ address: { host: '127.0.0.1', port: state.port }, labels: { app: 'echo', version: name }, health: 'HEALTHY', ...extra }),
    releaseHeld() {
      const held = state.held.splice(0);
      for (const res of held) res.end(name);
    },
    async close() {
      state.releaseHeld();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    if (req.url === '/ready') {
      res.statusCode = state.status;
      res.end('ready');
      return;
    }
    state.hits++;
    concurrent++;
    state.maxConcurrent = Math.max(state.maxConcurrent, concurrent);
    res.on('close', () => concurrent--);
    res.statusCode = state.status;
    res.setHeader('x-served-by', name);
    const hold = state.holding === true || (state.holding === 'hold-path' && (req.url ?? '').startsWith('/hold'));
    if (hold) {
      state.held.push(res);
      events.emit('held', req.url);
      return;
    }
    res.end(name);
  });
  server.on('connection', () => state.connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as AddressInfo).port;
  return state;
}

export function echoCluster(name: string, extra: Partial<Cluster> = {}): Cluster {
  return { name, kind: 'eds', protocol: 'http1', connectTimeoutMs: 2000, lb: { policy: 'ROUND_ROBIN' }, ...extra };
}

/** Sends GET through a lease's dispatcher, reads the body and releases with the outcome. */
export async function sendVia(lease: UpstreamLease, path = '/'): Promise<{ status: number; body: string }> {
  try {
    const res = await requestVia(lease.dispatcher, { path });
    lease.release({ status: res.statusCode });
    return { status: res.statusCode, body: res.body };
  } catch (err) {
    lease.release({ failure: 'connect-failure' });
    throw err;
  }
}

/** Acquires from the cluster and sends; fails the test on UH/UO. */
export async function send(cluster: UpstreamCluster, ctx: PickContext = {}, path = '/'): Promise<{ status: number; body: string }> {
  const got = cluster.acquire(ctx);
  if (!got.ok) throw new Error(`acquire failed: ${got.flag} ${got.detail}`);
  return sendVia(got.lease, path);
}

export function countBy<T>(items: readonly T[]): Map<T, number> {
  const out = new Map<T, number>();
  for (const item of items) out.set(item, (out.get(item) ?? 0) + 1);
  return out;
}
