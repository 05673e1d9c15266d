/**
 * Envoy's CORS filter (envoy.filters.http.cors), configured per route by Istio's corsPolicy
 * (`Route.perFilterConfig[HTTP_FILTERS.cors]`, a CorsPolicy). A preflight (OPTIONS with Origin
 * and Access-Control-Request-Method) whose origin is allowed is answered here; a non-matching
 * preflight is forwarded (Istio's default, `unmatchedPreflights: FORWARD`) or answered without
 * CORS headers (IGNORE); an allowed preflight's answer lists the exposed headers as well.
 * Responses to actual requests from an allowed origin get allow-origin,
 * expose-headers and allow-credentials on the way back (encodeHeaders), whoever answered.
 */
import { HTTP_FILTERS, type CorsPolicy } from '../../../../api/proxy-config.js';
import { compileStringMatch, type ValueMatcher } from '../../../../semantics/string-match.js';
import { FilterStatus, throwProblems, type CompiledHttpFilter, type FilterStream, type HttpFilter, type HttpFilterFactory } from '../../filter-api.js';
import type { HeaderBag } from '../../headers.js';

interface CompiledCors {
  readonly policy: CorsPolicy;
  readonly origins: readonly ValueMatcher[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
}

const NAME = HTTP_FILTERS.cors;

/** One request with an Origin on a route with a CORS policy. */
class CorsInstance implements HttpFilter {
  /** Headers for the response of an actual request from an allowed origin. */
  private add: Record<string, string> | undefined;

  constructor(
    private readonly cors: CompiledCors,
    private readonly origin: string,
  ) {}

  decodeHeaders(stream: FilterStream): FilterStatus {
    const { cors, origin } = this;
    const allowed = cors.origins.some((m) => m(origin));
    const preflight = stream.method === 'OPTIONS' && stream.headers['access-control-request-method'] !== undefined;
    const policy = cors.policy;
    if (preflight) {
      if (!allowed) {
        if (policy.unmatchedPreflights === 'IGNORE') {
          stream.localReply({ status: 200, details: 'cors_preflight_not_allowed', body: '' }, undefined, true);
          return FilterStatus.Stop;
        }
        return FilterStatus.Continue;
      }
      const headers: Record<string, string> = { 'access-control-allow-origin': origin };
      // A `*` list answers with what the preflight asked for: with credentials the Fetch
      // standard reads `*` as a literal name, and the Gateway API expects the echo either way.
      const requested = (name: string) => {
        const v = stream.headers[name];
        return typeof v === 'string' && v.length > 0 ? v : undefined;
      };
      const methods = cors.allowMethods === '*' ? (requested('access-control-request-method') ?? '*') : cors.allowMethods;
      const allowHeaders = cors.allowHeaders === '*' ? (requested('access-control-request-headers') ?? '*') : cors.allowHeaders;
      if (methods) headers['access-control-allow-methods'] = methods;
      if (allowHeaders) headers['access-control-allow-headers'] = allowHeaders;
      // Envoy's preflight answer carries expose-headers too (and the Gateway API's HTTPRouteCORS
      // expects it there); browsers read it from the actual response, which gets it below.
      if (cors.exposeHeaders) headers['access-control-expose-headers'] = cors.exposeHeaders;
      if (policy.maxAgeSeconds !== undefined) headers['access-control-max-age'] = String(policy.maxAgeSeconds);
      if (policy.allowCredentials) headers['access-control-allow-credentials'] = 'true';
      stream.localReply({ status: 200, details: 'cors_preflight', body: '' }, headers, true);
      return FilterStatus.Stop;
    }
    if (allowed) {
      const headers: Record<string, string> = { 'access-control-allow-origin': origin };
      if (cors.exposeHeaders) headers['access-control-expose-headers'] = cors.exposeHeaders;
      if (policy.allowCredentials) headers['access-control-allow-credentials'] = 'true';
      this.add = headers;
    }
    return FilterStatus.Continue;
  }

  encodeHeaders(_stream: FilterStream, _status: number, headers: HeaderBag): FilterStatus {
    if (this.add !== undefined) Object.assign(headers, this.add);
    return FilterStatus.Continue;
  }
}

/** An instance only for requests with an Origin on a route with a policy. */
const corsFilter: CompiledHttpFilter = {
  name: NAME,
  create(stream: FilterStream): HttpFilter | undefined {
    const cors = stream.route?.perFilterConfig?.get(NAME) as CompiledCors | undefined;
    if (cors === undefined) return undefined;
    const origin = stream.headers['origin'];
    if (typeof origin !== 'string' || origin.length === 0) return undefined;
    return new CorsInstance(cors, origin);
  },
};

export const corsFactory: HttpFilterFactory = {
  name: NAME,
  compile(): CompiledHttpFilter {
    return corsFilter;
  },
  compilePerRoute(config: unknown, path: string): CompiledCors {
    const problems: [string, string][] = [];
    const c = config as CorsPolicy;
    if (typeof c !== 'object' || c === null || !Array.isArray(c.allowOrigins)) {
      throwProblems([[path, 'a CORS policy needs allowOrigins, allowMethods, allowHeaders and exposeHeaders lists']]);
    }
    for (const field of ['allowMethods', 'allowHeaders', 'exposeHeaders'] as const) {
      if (!Array.isArray(c[field])) problems.push([`${path}.${field}`, 'must be a list']);
    }
    if (c.unmatchedPreflights !== undefined && c.unmatchedPreflights !== 'FORWARD' && c.unmatchedPreflights !== 'IGNORE') {
      problems.push([`${path}.unmatchedPreflights`, `must be FORWARD or IGNORE, not ${JSON.stringify(c.unmatchedPreflights)}`]);
    }
    const sink = { add: (p: string, m: string) => problems.push([p, m]) };
    const origins = c.allowOrigins.map((o, i) => compileStringMatch(o, `${path}.allowOrigins[${i}]`, sink));
    throwProblems(problems);
    return { policy: c, origins, allowMethods: c.allowMethods.join(','), allowHeaders: c.allowHeaders.join(','), exposeHeaders: c.exposeHeaders.join(',') };
  },
};
