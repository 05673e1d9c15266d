/**
 * The console's port (DESIGN.md: 20001): the web console's static files, its JSON API
 * (`/console/api/v1/...`, src/api/console.ts lists the routes) and, on the same port and
 * behind the same credential, the control plane's own API (`/api/v1/...`: apply, delete,
 * resources, status, traces), so the console's writes take `sinew apply`'s path.
 *
 *   GET /?token=<token>   sets the session cookie, redirects to / (./auth.ts)
 *   GET /                 the console (index.html); `/assets/...` its scripts and styles
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { GRAPH_TYPES, type ActionRequest, type GraphType } from '../../api/console.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import { installPath } from '../../core/install-root.js';
import { analyze } from '../../config/analyze/index.js';
import { traceQueryFromParams, type StoredTrace, type TraceStore } from '../../telemetry/trace-store.js';
import { ActionError, listActions, previewAction, undoPlan } from './actions.js';
import { ConsoleAuth } from './auth.js';
import { dashboard, DASHBOARD_NAMES } from './dashboards.js';
import { buildGraph, GraphMemo } from './graph.js';
import type { Inventory } from './inventory.js';
import type { MetricsScraper } from './scraper.js';
import { validateForConsole } from './validation.js';
import { buildDetail, buildOverview, configItem } from './views.js';

export interface ConsoleServerOptions {
  host: string;
  /** Default 20001; 0 picks a free port. */
  port?: number;
  token: string;
  clock: Clock;
  scraper: MetricsScraper;
  inventory: () => Inventory;
  traces: TraceStore;
  /** The control plane's API handler, served under `/api/v1/` on this port too. */
  controlPlaneApi: (req: IncomingMessage, res: ServerResponse) => void;
  /** The built console (default: dist/console of this installation). */
  staticDir?: string;
  logger?: Logger;
}

export interface ConsoleServer {
  server: Server;
  address: AddressInfo;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** dist/console of this installation, when it has been built. */
export function defaultStaticDir(): string | undefined {
  const dir = installPath('dist', 'console');
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}

export async function startConsoleServer(o: ConsoleServerOptions): Promise<ConsoleServer> {
  const logger = o.logger ?? silentLogger;
  const staticDir = o.staticDir ?? defaultStaticDir();
  let auth: ConsoleAuth | undefined;
  const memo = new GraphMemo();

  const api = async (req: IncomingMessage, url: URL): Promise<unknown> => {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent).slice(3);
    const [collection, ...rest] = parts;
    const now = o.clock.now();
    const windowOf = () => parseWindow(url.searchParams.get('window'));
    const get = req.method === 'GET';
    if (collection === 'overview' && get) return { ...buildOverview(o.scraper.window, o.inventory(), { window: windowOf(), now, memo }), scrape: o.scraper.status() };
    if (collection === 'graph' && get) {
      const type = (url.searchParams.get('type') ?? 'versionedApp') as GraphType;
      if (!GRAPH_TYPES.includes(type)) throw new HttpError(400, `unknown graph type "${type}"; one of ${GRAPH_TYPES.join(', ')}`);
      const namespaces = url.searchParams.getAll('namespace').flatMap((n) => n.split(',')).filter(Boolean);
      return { ...buildGraph(o.scraper.window, o.inventory(), { type, window: windowOf(), now, namespaces, memo }), scrape: o.scraper.status() };
    }
    if (collection === 'detail' && get && rest.length === 3) {
      const [kind, namespace, name] = rest;
      if (kind !== 'service' && kind !== 'workload' && kind !== 'app') throw new HttpError(400, `unknown detail kind "${kind}"; one of service, workload, app`);
      const detail = buildDetail(o.scraper.window, o.inventory(), { kind, namespace, name, window: windowOf(), now, stepFloorMs: o.scraper.intervalMs });
      if (!detail) throw new HttpError(404, `no ${kind} ${namespace}/${name} in the mesh`);
      return detail;
    }
    if (collection === 'traces' && get) {
      if (rest.length === 1) {
        const trace = o.traces.get(rest[0]);
        if (!trace) throw new HttpError(404, `no trace ${rest[0]} (traces are kept in memory, the oldest go first)`);
        return trace;
      }
      return searchTraces(o.traces, url.searchParams);
    }
    if (collection === 'trace-services' && get) return o.traces.services();
    const inventory = () => o.inventory();
    if (collection === 'config' && get) {
      const inv = inventory();
      const findings = analyze(inv.resources);
      return { revision: inv.configRevision, items: inv.resources.map((r) => configItem(r, findings)), findings };
    }
    if (collection === 'validate' && req.method === 'POST') {
      const text = await readBody(req);
      return validateForConsole(text, inventory().resources, url.searchParams.get('namespace') ?? 'default');
    }
    if (collection === 'actions') {
      const inv = inventory();
      if (rest.length === 0 && get) return listActions(inv.resources);
      if (rest[0] === 'preview' && req.method === 'POST') {
        const request = parseJson(await readBody(req)) as ActionRequest;
        return previewAction(request, { resources: inv.resources, services: inv.services, now });
      }
      if (rest[0] === 'undo' && req.method === 'POST') {
        const { id } = parseJson(await readBody(req)) as { id?: string };
        if (typeof id !== 'string') throw new HttpError(400, 'name the action to undo: {"id": "<action id>"}');
        return undoPlan(id, inv.resources);
      }
    }
    if (collection === 'dashboards' && get && rest.length === 1) {
      const name = rest[0].replace(/\.json$/, '');
      if (!DASHBOARD_NAMES.includes(name as (typeof DASHBOARD_NAMES)[number])) throw new HttpError(404, `no dashboard "${name}"; one of ${DASHBOARD_NAMES.join(', ')}`);
      return dashboard(name as (typeof DASHBOARD_NAMES)[number]);
    }
    throw new HttpError(404, `no console API route ${req.method} ${url.pathname}`);
  };

  const serveStatic = async (res: ServerResponse, path: string): Promise<void> => {
    if (!staticDir) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
      res.end('the console was not built: run "npm run build" in the sinew checkout, then reload\n');
      return;
    }
    const relative = path === '/' || !extname(path) ? 'index.html' : normalize(path).replace(/^([/\\])+/, '');
    const file = join(staticDir, relative);
    if (!file.startsWith(staticDir + sep)) throw new HttpError(404, 'not found');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      throw new HttpError(404, `no file ${path}`);
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      // Vite names assets by content hash; index.html must be fetched anew.
      'cache-control': relative.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(body);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://console');
    const isApi = url.pathname.startsWith('/console/api/') || url.pathname.startsWith('/api/');
    // The login link: exchange ?token= for the cookie and drop the token from the address.
    if (!isApi && url.searchParams.has('token') && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!auth!.tokenMatches(url.searchParams.get('token'))) return sendText(res, 401, 'that token is not the mesh\'s token; open the console URL "sinew up" printed\n');
      url.searchParams.delete('token');
      res.writeHead(303, { location: url.pathname + url.search, 'set-cookie': auth!.sessionCookie(), 'cache-control': 'no-store', ...SECURITY_HEADERS });
      res.end();
      return;
    }
    const allowed = auth!.check(req);
    if (!allowed.ok) {
      const headers: Record<string, string> = allowed.status === 401 ? { 'www-authenticate': 'Bearer realm="sinew"' } : {};
      if (isApi) return sendJson(res, allowed.status, { error: allowed.reason }, headers);
      return sendText(res, allowed.status, `${allowed.reason}\n`, headers);
    }
    if (url.pathname.startsWith('/api/v1/')) return o.controlPlaneApi(req, res);
    const work = url.pathname.startsWith('/console/api/v1/')
      ? api(req, url).then((body) => sendJson(res, 200, body))
      : req.method === 'GET' || req.method === 'HEAD'
        ? serveStatic(res, url.pathname)
        : Promise.reject(new HttpError(405, `${req.method} is not served here`));
    work.catch((err: unknown) => {
      if (err instanceof HttpError) return isApi ? sendJson(res, err.status, { error: err.message }) : sendText(res, err.status, err.message + '\n');
      if (err instanceof ActionError) return sendJson(res, 422, { error: err.message });
      logger.error('console request failed', { path: url.pathname, error: (err as Error).message });
      sendJson(res, 500, { error: `internal error: ${(err as Error).message}` });
    });
  });
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 20001, o.host, () => resolve(server.address() as AddressInfo));
  });
  auth = new ConsoleAuth(o.token, o.host, address.port);
  return {
    server,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `60`, `300`, `1800` (seconds) or `1m`, `5m`, `30m`; default 1 minute; at most 30 minutes. */
export function parseWindow(v: string | null): number {
  if (!v) return 60;
  const m = /^(\d+)(s|m)?$/.exec(v.trim());
  if (!m) throw new HttpError(400, `window "${v}" is not a duration like 60, 5m or 30m`);
  const seconds = Number(m[1]) * (m[2] === 'm' ? 60 : 1);
  if (seconds < 10 || seconds > 1800) throw new HttpError(400, `window must be from 10 s to 30 m (the samples the control plane keeps), not ${v}`);
  return seconds;
}

/**
 * The trace store's query (service, operation, tags, minDuration, start, end, limit), plus the
 * traces of one graph edge: `from`/`to` (trace service names, `<app>.<namespace>`) and `host`
 * (the service's FQDN) select traces with a client span of `from` calling `host` whose child
 * is a span of `to`; any of the three may be left out.
 */
function searchTraces(store: TraceStore, params: URLSearchParams): StoredTrace[] {
  const from = params.get('from') || undefined;
  const to = params.get('to') || undefined;
  const host = params.get('host') || undefined;
  const query = traceQueryFromParams(params);
  if (!from && !to && !host) return store.query(query);
  const limit = query.limit ?? 20;
  const candidates = store.query({ ...query, service: query.service ?? to ?? from, limit: 1000 });
  const out: StoredTrace[] = [];
  for (const t of candidates) {
    if (out.length >= limit) break;
    const byId = new Map(t.spans.map((s) => [s.spanId, s]));
    const hit = t.spans.some((child) => {
      if (to && child.service !== to) return false;
      const parent = child.parentSpanId ? byId.get(child.parentSpanId) : undefined;
      if (!from && !host) return true;
      if (!parent) return false;
      if (from && parent.service !== from) return false;
      return !host || (parent.tags['upstream_cluster'] ?? '').endsWith(`|${host}`);
    });
    if (hit) out.push(t);
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, `request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...SECURITY_HEADERS, ...headers });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...SECURITY_HEADERS, ...headers });
  res.end(text);
}
