/**
 * The control plane as a trace collector (the embedded mesh needs no Jaeger): the OTLP/HTTP
 * JSON receiver at `POST /v1/traces` and Zipkin v2 at `POST /api/v2/spans`, into a bounded
 * TraceStore, and the queries `sinew traces`, `sinew trace` and the dashboard read:
 * `GET /api/v1/traces?service=&operation=&tag=k:v&minDuration=&start=&end=&limit=` (newest
 * first) and `GET /api/v1/traces/<id>`, plus `GET /api/v1/services` (services that reported).
 *
 * These routes sit behind the API's gate (http-api.ts): the receivers take a proxy's push
 * credential (proxies send it as a bearer token when exporting to this collector) or the
 * operator's, the queries the operator's only. Query parameters are checked with their schema
 * (api-schemas.ts), and a malformed one is a 400 naming it, not a filter silently dropped.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TraceStore, traceQueryFromParams } from '../telemetry/trace-store.js';
import { problemsOf, queryObject, traceQuerySchema } from './api-schemas.js';

export const OTLP_TRACES_PATH = '/v1/traces';
export const ZIPKIN_SPANS_PATH = '/api/v2/spans';

/** Whether `path` is one of the span receivers, which proxies may call. */
export function isCollectorPath(path: string): boolean {
  return path === OTLP_TRACES_PATH || path === ZIPKIN_SPANS_PATH;
}

/** Handles the trace routes; returns false for any other request (the caller answers it). */
export function createTraceApiHandler(store: TraceStore): (req: IncomingMessage, res: ServerResponse, url: URL) => boolean {
  return (req, res, url) => {
    const path = url.pathname;
    if (isCollectorPath(path)) {
      if (req.method !== 'POST') {
        send(res, 405, { error: `${path} accepts POST` }, { allow: 'POST' });
        return true;
      }
      if (path === OTLP_TRACES_PATH) store.handleOtlp(req, res);
      else store.handleZipkin(req, res);
      return true;
    }
    if (req.method !== 'GET') return false;
    if (path === '/api/v1/traces') {
      const checked = traceQuerySchema.safeParse(queryObject(url.searchParams));
      if (!checked.success) {
        const problems = problemsOf(checked.error);
        send(res, 400, { error: `invalid trace query: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems });
        return true;
      }
      send(res, 200, store.query(traceQueryFromParams(url.searchParams)));
      return true;
    }
    if (path === '/api/v1/services') {
      send(res, 200, store.services());
      return true;
    }
    const one = /^\/api\/v1\/traces\/([^/]+)$/.exec(path);
    if (one) {
      const trace = store.get(decodeURIComponent(one[1]!));
      if (trace) send(res, 200, trace);
      else send(res, 404, { error: `no trace ${one[1]} (traces are kept in memory, the oldest go first)` });
      return true;
    }
    return false;
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
