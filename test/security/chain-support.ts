/**
 * A request through a listener's security filters, as the connection manager will send it:
 * headers in a map the filters may change, response headers collected, the filters' verdict.
 */
import type { Listener } from '../../src/api/proxy-config.js';
import type { FilterHeadersStatus, HttpFilter, HttpFilterContext, HttpFilterFactory } from '../../src/proxy/http/filters/contract.js';
import type { RequestAttributes } from '../../src/security/attributes.js';

export interface ChainResult {
  status: number;
  body?: string;
  details?: string;
  /** The request headers the upstream would get (when it went on). */
  upstreamHeaders: Record<string, string>;
  responseHeaders: Record<string, string>;
  attributes: RequestAttributes;
  metadata: Record<string, string>;
}

export async function through(filters: readonly HttpFilter[], req: { method?: string; path?: string; host?: string; headers?: Record<string, string> } & Partial<RequestAttributes>): Promise<ChainResult> {
  const headers = new Map(Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const responseHeaders: Record<string, string> = {};
  const metadata: Record<string, string> = {};
  const attributes: RequestAttributes = {
    sourceIp: '127.0.0.1',
    ...req,
    method: req.method ?? 'GET',
    path: req.path ?? '/',
    host: req.host ?? 'httpbin.foo:8000',
    // A live view: a filter that changes a header changes what the filters after it read.
    headers: new Proxy({}, { get: (_, n) => (typeof n === 'string' ? headers.get(n) : undefined) }),
  };
  const ctx: HttpFilterContext = {
    attributes,
    requestHeaders: {
      get: (n) => headers.get(n),
      set: (n, v) => void headers.set(n, v),
      remove: (n) => void headers.delete(n),
      entries: () => headers.entries(),
    },
    addResponseHeader: (n, v) => void (responseHeaders[n] = v),
    setMetadata: (f, k, v) => void (metadata[`${f}:${k}`] = v),
    signal: new AbortController().signal,
    // Without a connection manager there is no route to choose again.
    clearRouteCache: () => undefined,
  };
  const status = await decodeHeadersThrough(filters, ctx);
  if (status === 'continue') return { status: 200, upstreamHeaders: Object.fromEntries(headers), responseHeaders, attributes, metadata };
  return { status: status.stop.status, body: status.stop.body, details: status.stop.details, upstreamHeaders: {}, responseHeaders: { ...responseHeaders, ...(status.stop.headers ?? {}) }, attributes, metadata };
}

const SECURITY_FILTERS = new Set(['sinew.filters.http.jwt_authn', 'sinew.filters.http.ext_authz', 'sinew.filters.http.rbac']);

/** The security filters of a listener's chain (`http.filters`), in order, with their configs. */
export function securityFiltersOf(listener: Listener | undefined): { name: string; config: Record<string, unknown> }[] {
  return (listener?.http?.filters ?? []).filter((f) => SECURITY_FILTERS.has(f.name)).map((f) => ({ name: f.name, config: f.config as Record<string, unknown> }));
}

/** Compiles a list of security filters by name (their contract, without the proxy). */
export function compileHttpFilters(list: readonly { name: string; config: unknown }[], factories: ReadonlyMap<string, HttpFilterFactory>): HttpFilter[] {
  return list.map(({ name, config }) => {
    const factory = factories.get(name);
    if (!factory) throw new TypeError(`unknown HTTP filter ${name}`);
    try {
      return factory.compile(config);
    } catch (e) {
      throw new TypeError(`HTTP filter ${name}: ${(e as Error).message}`);
    }
  });
}

/** A request's headers through `filters` in order, as the connection manager chains them; the first stop ends it. */
export function decodeHeadersThrough(filters: readonly HttpFilter[], ctx: HttpFilterContext, from = 0): FilterHeadersStatus | Promise<FilterHeadersStatus> {
  for (let i = from; i < filters.length; i++) {
    const status = filters[i].decodeHeaders(ctx);
    if (status instanceof Promise) return status.then((s) => (s === 'continue' ? decodeHeadersThrough(filters, ctx, i + 1) : s));
    if (status !== 'continue') return status;
  }
  return 'continue';
}
