/**
 * The security filters in the connection manager's filter chain (filter-api.ts):
 * `sinew.filters.http.jwt_authn`, `...ext_authz` and `...rbac` are written against the narrow
 * contract of contract.ts (a request's attributes in, go on or stop with a reply out), and
 * this module makes each of them a factory of the chain. The compiler lists them after the
 * telemetry filters and before cors, fault and the router, in Istio's order (jwt_authn, then
 * CUSTOM, then DENY/ALLOW), so a denied request is neither delayed nor aborted by a fault.
 *
 * Per request, the filter's attributes come from the stream: method, the normalised path and
 * query, authority, the request headers as they will go upstream (live: a header jwt_authn or
 * ext_authz sets is what rbac matches), the peer and original client addresses, the local
 * address, the SNI and the peer's SPIFFE ID, only when the peer proved a certificate (without
 * mutual TLS principals and namespaces match nothing, as in Istio). What jwt_authn learns
 * travels to rbac in the stream's `requestAuth` (Envoy's dynamic metadata).
 *
 * A filter that answers at once costs no turn of the event loop; one that waits (a JWKS
 * fetch, an ext_authz call) returns Stop and resumes the chain with `continueDecoding`, or
 * answers with the chain's local reply. A client that leaves aborts the wait.
 */
import type { NamedFilterConfig } from '../../../api/proxy-config.js';
import type { RequestAttributes } from '../../../security/attributes.js';
import { FilterConfigError, FilterStatus, type CompiledHttpFilter, type FilterStream, type HttpFilter as ChainFilter, type HttpFilterFactory as ChainFilterFactory } from '../filter-api.js';
import type { HeaderBag } from '../headers.js';
import { withoutFields } from '../../../core/header-lines.js';
import type { FilterHeadersStatus, HttpFilter, HttpFilterContext, HttpFilterFactory, NetworkFilter, NetworkFilterFactory } from './contract.js';
import { createExtAuthzFilterFactory, type ExtAuthzDependencies } from './ext-authz/index.js';
import { createJwtAuthnFilterFactory, type JwtAuthnFilterDependencies } from './jwt-authn/index.js';
import { createNetworkRbacFilterFactory, createRbacFilterFactory, type RbacDependencies } from './rbac/index.js';

export interface SecurityFilterDependencies {
  jwt: JwtAuthnFilterDependencies;
  extAuthz: ExtAuthzDependencies;
  rbac?: RbacDependencies;
}

/** The three security filter factories (contract.ts), by the names the compiler uses. */
export function securityFilterFactories(deps: SecurityFilterDependencies): Map<string, HttpFilterFactory> {
  const factories = [createJwtAuthnFilterFactory(deps.jwt), createExtAuthzFilterFactory(deps.extAuthz), createRbacFilterFactory(deps.rbac)];
  return new Map(factories.map((f) => [f.name, f]));
}

/** The three as factories of the connection manager's chain (filters/registry.ts registers them). */
export function securityChainFactories(deps: SecurityFilterDependencies): ChainFilterFactory[] {
  return [...securityFilterFactories(deps).values()].map(chainFactory);
}

/** The network filters a TCP listener may list in `networkFilters`, by name. */
export function networkFilterFactories(deps: RbacDependencies = {}): ReadonlyMap<string, NetworkFilterFactory> {
  const rbac = createNetworkRbacFilterFactory(deps);
  return new Map([[rbac.name, rbac]]);
}

/** Builds a TCP listener's network filters; each problem is `[path, message]`. */
export function compileNetworkFilters(list: readonly NamedFilterConfig[], factories: ReadonlyMap<string, NetworkFilterFactory>, path: string, problems: { add(path: string, message: string): void }): NetworkFilter[] {
  const out: NetworkFilter[] = [];
  list.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    const factory = typeof entry?.name === 'string' ? factories.get(entry.name) : undefined;
    if (factory === undefined) {
      problems.add(`${at}.name`, `no network filter named ${JSON.stringify(entry?.name)} (this proxy has ${[...factories.keys()].join(', ')})`);
      return;
    }
    try {
      out.push(factory.compile(entry.config));
    } catch (e) {
      problems.add(`${at}.config`, (e as Error).message);
    }
  });
  return out;
}

function chainFactory(security: HttpFilterFactory): ChainFilterFactory {
  return {
    name: security.name,
    compile(config, ctx): CompiledHttpFilter {
      let filter: HttpFilter;
      try {
        filter = security.compile(config);
      } catch (e) {
        throw new FilterConfigError(configProblems(e, ctx.path));
      }
      return { name: security.name, create: () => new SecurityFilterInstance(filter) };
    },
  };
}

/** A refused config's problems, each at its field (a zod error lists them all), else one. */
function configProblems(e: unknown, path: string): [string, string][] {
  const issues = (e as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
  if (!Array.isArray(issues) || issues.length === 0) return [[path, (e as Error)?.message ?? String(e)]];
  return issues.map((i) => [[path, ...i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`))].join('').replace(/\.\[/g, '['), i.message]);
}

/** One request's run of a security filter. */
class SecurityFilterInstance implements ChainFilter {
  /** Aborted when the request ends early, so that a JWKS fetch or a check is given up. */
  private waiting: AbortController | undefined = undefined;
  /** Headers for the client's response (ext_authz's headersToDownstreamOnAllow). */
  private responseHeaders: Record<string, string> | undefined = undefined;

  constructor(private readonly filter: HttpFilter) {}

  decodeHeaders(stream: FilterStream): FilterStatus {
    const ctx = this.context(stream);
    let status: FilterHeadersStatus | Promise<FilterHeadersStatus>;
    try {
      status = this.filter.decodeHeaders(ctx);
    } catch (e) {
      return this.failed(stream, e);
    }
    if (!(status instanceof Promise)) return this.settle(stream, ctx, status);
    status.then(
      (s) => {
        this.waiting = undefined;
        if (stream.finished) return;
        if (this.settle(stream, ctx, s) === FilterStatus.Continue) stream.continueDecoding();
      },
      (e) => {
        this.waiting = undefined;
        if (!stream.finished) this.failed(stream, e);
      },
    );
    return FilterStatus.Stop;
  }

  encodeHeaders(_stream: FilterStream, _status: number, headers: HeaderBag): FilterStatus {
    if (this.responseHeaders !== undefined) Object.assign(headers, this.responseHeaders);
    return FilterStatus.Continue;
  }

  onReset(): void {
    this.waiting?.abort();
  }

  private settle(stream: FilterStream, ctx: HttpFilterContext, status: FilterHeadersStatus): FilterStatus {
    if (ctx.attributes.auth !== undefined) stream.requestAuth = ctx.attributes.auth;
    if (status === 'continue') return FilterStatus.Continue;
    const { headers, ...reply } = status.stop;
    stream.localReply(reply, headers === undefined ? undefined : { ...headers });
    return FilterStatus.Stop;
  }

  /** A filter that threw (a bug, never a verdict): the request is refused, never let through. */
  private failed(stream: FilterStream, e: unknown): FilterStatus {
    stream.runtime.logger.error('security filter failed', { error: (e as Error)?.message ?? String(e) });
    stream.localReply({ status: 500, details: 'security_filter_failed', body: 'the request could not be authorized' });
    return FilterStatus.Stop;
  }

  private context(stream: FilterStream): HttpFilterContext {
    const self = this;
    const connection = stream.connection;
    const local = stream.localAddress;
    const attributes: RequestAttributes = {
      method: stream.method,
      path: stream.query ? `${stream.path}?${stream.query}` : stream.path,
      host: stream.authority,
      // Read when matched: a header an earlier filter set (or removed) is what is matched.
      get headers() {
        return stream.headers;
      },
      sourceIp: bareIp(stream.peer),
      remoteIp: bareIp(stream.remoteAddress()),
      ...(local !== undefined ? { destinationIp: bareIp(local.slice(0, local.lastIndexOf(':'))) } : {}),
      destinationPort: stream.port,
      // Istio: principals and namespaces come only from a peer certificate the proxy verified.
      ...(connection.security === 'mutual_tls' && connection.peerUriSan !== undefined ? { peerPrincipal: connection.peerUriSan } : {}),
      ...(connection.sni !== undefined ? { sni: connection.sni } : {}),
      ...(stream.requestAuth !== undefined ? { auth: stream.requestAuth } : {}),
    };
    return {
      attributes,
      requestHeaders: {
        get: (name) => {
          const v = stream.headers[name];
          return Array.isArray(v) ? v.join(',') : v;
        },
        set: (name, value) => void (stream.headers[name] = value),
        // Replaced, not deleted from (withoutFields says why).
        remove: (name) => void (stream.headers = withoutFields(stream.headers, [name])),
        entries: () => headerEntries(stream.headers),
      },
      addResponseHeader: (name, value) => void ((this.responseHeaders ??= {})[name] = value),
      setMetadata: (filter, key, value) => void ((stream.dynamicMetadata ??= {})[`${filter}:${key}`] = value),
      get signal() {
        return (self.waiting ??= new AbortController()).signal;
      },
    };
  }
}

function* headerEntries(headers: HeaderBag): Iterable<[string, string]> {
  for (const name in headers) {
    const v = headers[name];
    if (v !== undefined) yield [name, Array.isArray(v) ? v.join(',') : v];
  }
}

/** An IPv4 peer as node gives it on a dual-stack socket (`::ffff:10.0.0.1`) in its own form. */
function bareIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** For unit tests and the in-process benchmark: compiles a list of security filters by name. */
export function compileHttpFilters(list: readonly NamedFilterConfig[], factories: ReadonlyMap<string, HttpFilterFactory>): HttpFilter[] {
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

/** For unit tests and the in-process benchmark: a request's headers through `filters` in order; the first stop ends it. */
export function decodeHeadersThrough(filters: readonly HttpFilter[], ctx: HttpFilterContext, from = 0): FilterHeadersStatus | Promise<FilterHeadersStatus> {
  for (let i = from; i < filters.length; i++) {
    const status = filters[i].decodeHeaders(ctx);
    if (status instanceof Promise) return status.then((s) => (s === 'continue' ? decodeHeadersThrough(filters, ctx, i + 1) : s));
    if (status !== 'continue') return status;
  }
  return 'continue';
}
