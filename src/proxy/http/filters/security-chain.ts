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
 * mutual TLS principals and namespaces match nothing, as in Istio). They are built once per
 * request and shared by its security filters: what jwt_authn learns (`attributes.auth`) is
 * what rbac matches, as Envoy's jwt_authn writes dynamic metadata that RBAC reads.
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
import type { FilterHeadersStatus, HttpFilter, HttpFilterContext, HttpFilterFactory, NetworkFilter, NetworkFilterFactory, RequestHeaderMutation } from './contract.js';
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

/**
 * What the security filters of one request share (made by the first of them, kept in the
 * stream's `securityRequest`): the request's attributes, built once (the JWT identity is
 * written into them for rbac), the header view, and the response headers and wait they add.
 */
class SecurityRequest implements HttpFilterContext {
  readonly attributes: RequestAttributes;
  readonly requestHeaders: RequestHeaderMutation;
  /** Headers for the client's response (ext_authz's headersToDownstreamOnAllow). */
  responseHeaders: Record<string, string> | undefined = undefined;
  private controller: AbortController | undefined = undefined;

  constructor(readonly stream: FilterStream) {
    const connection = stream.connection;
    const local = stream.localAddress;
    this.attributes = {
      method: stream.method,
      path: stream.query ? `${stream.path}?${stream.query}` : stream.path,
      host: stream.authority,
      headers: stream.headers,
      sourceIp: bareIp(stream.peer),
      remoteIp: bareIp(stream.remoteAddress()),
      destinationIp: local === undefined ? undefined : bareIp(local.slice(0, local.lastIndexOf(':'))),
      destinationPort: stream.port,
      // Istio: principals and namespaces come only from a peer certificate the proxy verified.
      peerPrincipal: connection.security === 'mutual_tls' ? connection.peerUriSan : undefined,
      sni: connection.sni,
      auth: undefined,
    };
    this.requestHeaders = new StreamHeaders(this);
  }

  addResponseHeader(name: string, value: string): void {
    (this.responseHeaders ??= {})[name] = value;
  }

  setMetadata(filter: string, key: string, value: string): void {
    (this.stream.dynamicMetadata ??= {})[`${filter}:${key}`] = value;
  }

  clearRouteCache(): void {
    this.stream.clearRouteCache(this.attributes.auth?.claims);
  }

  /** Made only for the filters that wait on something. */
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  abort(): void {
    this.controller?.abort();
  }
}

/** The request's headers as they go upstream; what a filter changes, the filters after it match. */
class StreamHeaders implements RequestHeaderMutation {
  constructor(private readonly request: SecurityRequest) {}

  get(name: string): string | undefined {
    const v = this.request.stream.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  }

  set(name: string, value: string): void {
    this.request.stream.headers[name] = value;
  }

  remove(name: string): void {
    // Replaced, not deleted from (withoutFields says why); the attributes follow the new bag.
    const stream = this.request.stream;
    stream.headers = withoutFields(stream.headers, [name]);
    this.request.attributes.headers = stream.headers;
  }

  entries(): Iterable<[string, string]> {
    return headerEntries(this.request.stream.headers);
  }
}

/** One request's run of a security filter. */
class SecurityFilterInstance implements ChainFilter {
  private request: SecurityRequest | undefined = undefined;

  constructor(private readonly filter: HttpFilter) {}

  decodeHeaders(stream: FilterStream): FilterStatus {
    const request = (this.request = (stream.securityRequest ??= new SecurityRequest(stream)) as SecurityRequest);
    let status: FilterHeadersStatus | Promise<FilterHeadersStatus>;
    try {
      status = this.filter.decodeHeaders(request);
    } catch (e) {
      return failed(stream, e);
    }
    if (!(status instanceof Promise)) return settle(stream, status);
    status.then(
      (s) => {
        if (!stream.finished && settle(stream, s) === FilterStatus.Continue) stream.continueDecoding();
      },
      (e) => {
        if (!stream.finished) failed(stream, e);
      },
    );
    return FilterStatus.Stop;
  }

  encodeHeaders(_stream: FilterStream, _status: number, headers: HeaderBag): FilterStatus {
    const add = this.request?.responseHeaders;
    if (add !== undefined) Object.assign(headers, add);
    return FilterStatus.Continue;
  }

  onReset(): void {
    this.request?.abort();
  }
}

function settle(stream: FilterStream, status: FilterHeadersStatus): FilterStatus {
  if (status === 'continue') return FilterStatus.Continue;
  const { headers, ...reply } = status.stop;
  stream.localReply(reply, headers === undefined ? undefined : { ...headers });
  return FilterStatus.Stop;
}

/** A filter that threw (a bug, never a verdict): the request is refused, never let through. */
function failed(stream: FilterStream, e: unknown): FilterStatus {
  stream.runtime.logger.error('security filter failed', { error: (e as Error)?.message ?? String(e) });
  stream.localReply({ status: 500, details: 'security_filter_failed', body: 'the request could not be authorized' });
  return FilterStatus.Stop;
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
