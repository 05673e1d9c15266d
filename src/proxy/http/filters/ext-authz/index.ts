/**
 * `sinew.filters.http.ext_authz`: CUSTOM AuthorizationPolicy, Envoy's ext_authz filter with an
 * HTTP authorization service (Istio's `envoyExtAuthzHttp` provider).
 *
 * For a request one of the CUSTOM policies matches, the filter sends a check to the authorizer:
 * the request's method, the provider's pathPrefix plus the request's path, Envoy's always-sent
 * headers (Host, Authorization) plus the ones the provider includes, and no body. A 200 allows
 * the request (headersToUpstreamOnAllow are copied into it, headersToDownstreamOnAllow into the
 * response); any other status denies it with the authorizer's status and body, flag UAEX and
 * details `ext_authz_denied`. An authorizer that cannot be reached in time fails closed
 * (statusOnError, `ext_authz_error`) unless the provider says failOpen. A request no CUSTOM
 * policy matches is not checked. Dry-run CUSTOM policies are not called.
 */
import { request as httpRequest } from 'node:http';
import type { Address } from '../../../../api/proxy-config.js';
import { ResponseFlag } from '../../../../api/response-flags.js';
import type { Logger } from '../../../../core/logger.js';
import { compilePolicies } from '../../../../security/evaluator.js';
import { extAuthzConfigSchema, headerPatternMatcher } from '../../../../security/ext-authz-config.js';
import type { FilterStats, HttpFilterFactory } from '../contract.js';

export const EXT_AUTHZ_HTTP_FILTER = 'sinew.filters.http.ext_authz';

export interface CheckRequest {
  /** The mesh cluster to send it through, and the authority it is addressed to. */
  cluster: string;
  host: string;
  port: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
}

export interface CheckResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface ExtAuthzDependencies {
  /** Sends a check to the authorizer; rejects when it cannot be reached or takes longer than `timeoutMs`. */
  check(request: CheckRequest): Promise<CheckResponse>;
  stats?: FilterStats;
  logger?: Logger;
}

/** The most of an authorizer's reply body read (a deny page, not a download). */
const MAX_CHECK_BODY_BYTES = 64 * 1024;

/**
 * A `check` that connects to the address `resolve` gives for the cluster, with node's HTTP
 * client. The proxy should pass one that goes through its cluster manager (load balancing,
 * mTLS to the authorizer); this serves where the authorizer's address is known.
 */
export function directCheck(resolve: (cluster: string) => Address | undefined): ExtAuthzDependencies['check'] {
  return (req) =>
    new Promise<CheckResponse>((resolvePromise, reject) => {
      const address = resolve(req.cluster);
      if (!address) return reject(new Error(`no address for ${req.cluster}`));
      const outgoing = httpRequest({ host: address.host, port: address.port, method: req.method, path: req.path, headers: { ...req.headers, host: `${req.host}:${req.port}`, 'content-length': '0' }, signal: AbortSignal.any([req.signal, AbortSignal.timeout(req.timeoutMs)]) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_CHECK_BODY_BYTES) chunks.push(c);
        });
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
}

export function createExtAuthzFilterFactory(deps: ExtAuthzDependencies): HttpFilterFactory {
  return {
    name: EXT_AUTHZ_HTTP_FILTER,
    compile(raw) {
      const config = extAuthzConfigSchema.parse(raw);
      const policies = compilePolicies(config.policies).filter((p) => !p.dryRun);
      const provider = config.provider;
      const included = headerPatternMatcher(['authorization', ...(provider.includeRequestHeadersInCheck ?? [])]);
      const toUpstream = provider.headersToUpstreamOnAllow ? headerPatternMatcher(provider.headersToUpstreamOnAllow) : () => false;
      const toDownstreamOnAllow = provider.headersToDownstreamOnAllow ? headerPatternMatcher(provider.headersToDownstreamOnAllow) : () => false;
      const toDownstreamOnDeny = provider.headersToDownstreamOnDeny ? headerPatternMatcher(provider.headersToDownstreamOnDeny) : (name: string) => name !== 'host';
      const port = config.destinationPort;
      return {
        async decodeHeaders(ctx) {
          const attributes = port === undefined ? ctx.attributes : { ...ctx.attributes, destinationPort: port };
          if (!policies.some((p) => p.matches(attributes))) return 'continue';
          const headers: Record<string, string> = {};
          for (const [name, value] of ctx.requestHeaders.entries()) if (included(name)) headers[name] = value;
          Object.assign(headers, provider.includeAdditionalHeadersInCheck ?? {});
          let response: CheckResponse;
          try {
            response = await deps.check({
              cluster: provider.cluster,
              host: provider.host,
              port: provider.port,
              method: ctx.attributes.method ?? 'GET',
              path: (provider.pathPrefix ?? '') + (ctx.attributes.path ?? '/'),
              headers,
              timeoutMs: provider.timeoutMs,
              signal: ctx.signal,
            });
          } catch (e) {
            deps.stats?.inc('http.ext_authz.error');
            deps.logger?.debug('ext_authz check failed', { provider: provider.name, error: (e as Error).message });
            if (provider.failOpen) {
              deps.stats?.inc('http.ext_authz.failure_mode_allowed');
              return 'continue';
            }
            return { stop: { status: provider.statusOnError, flag: ResponseFlag.UnauthorizedExternalService, details: 'ext_authz_error', body: '' } };
          }
          const each = (fn: (name: string, value: string) => void, pick: (name: string) => boolean) => {
            for (const [name, value] of Object.entries(response.headers)) {
              if (value === undefined || !pick(name)) continue;
              fn(name, Array.isArray(value) ? value.join(', ') : value);
            }
          };
          if (response.status === 200) {
            deps.stats?.inc('http.ext_authz.ok');
            each((n, v) => ctx.requestHeaders.set(n, v), toUpstream);
            each((n, v) => ctx.addResponseHeader(n, v), toDownstreamOnAllow);
            return 'continue';
          }
          deps.stats?.inc('http.ext_authz.denied');
          const denyHeaders: Record<string, string> = {};
          each((n, v) => (denyHeaders[n] = v), (n) => toDownstreamOnDeny(n) && !HOP_BY_HOP.has(n));
          return { stop: { status: response.status, flag: ResponseFlag.UnauthorizedExternalService, details: 'ext_authz_denied', body: response.body, headers: denyHeaders } };
        },
      };
    },
  };
}

/** Headers that describe the authorizer's own message, never copied into the client's reply. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date', 'server', 'host', 'upgrade', 'te', 'trailer', 'proxy-connection']);
