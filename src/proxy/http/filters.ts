/**
 * The route's HTTP filters, run in order before the router (Envoy's decoder filter chain:
 * cors, then fault, then router). Each returns Continue, or Stop when it answered the request
 * itself or will resume the chain later (Envoy's FilterHeadersStatus::StopIteration). Filters
 * do not know each other; they only see the stream.
 */
import { ResponseFlag } from '../../api/response-flags.js';
import type { HttpStream } from './stream.js';

export const enum FilterStatus {
  Continue,
  Stop,
}

/** Runs cors then fault, then `next` (the router) unless a filter stopped the chain. */
export function runFilters(stream: HttpStream, next: () => void): void {
  if (corsFilter(stream) === FilterStatus.Stop) return;
  if (faultFilter(stream, next) === FilterStatus.Stop) return;
  next();
}

// === cors ===

/**
 * Envoy's CORS filter: a preflight (OPTIONS with Origin and Access-Control-Request-Method) whose
 * origin is allowed is answered here; a non-matching preflight is forwarded (Istio's default,
 * `unmatchedPreflights: FORWARD`) or answered without CORS headers (IGNORE). Actual requests
 * from an allowed origin get allow-origin / expose-headers / allow-credentials on the response.
 */
function corsFilter(stream: HttpStream): FilterStatus {
  const cors = stream.route?.cors;
  if (!cors) return FilterStatus.Continue;
  const origin = stream.headers['origin'];
  if (typeof origin !== 'string' || origin.length === 0) return FilterStatus.Continue;
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
    if (cors.allowMethods) headers['access-control-allow-methods'] = cors.allowMethods;
    if (cors.allowHeaders) headers['access-control-allow-headers'] = cors.allowHeaders;
    if (policy.maxAgeSeconds !== undefined) headers['access-control-max-age'] = String(policy.maxAgeSeconds);
    if (policy.allowCredentials) headers['access-control-allow-credentials'] = 'true';
    stream.localReply({ status: 200, details: 'cors_preflight', body: '' }, headers, true);
    return FilterStatus.Stop;
  }
  if (allowed) {
    const headers: Record<string, string> = { 'access-control-allow-origin': origin };
    if (cors.exposeHeaders) headers['access-control-expose-headers'] = cors.exposeHeaders;
    if (policy.allowCredentials) headers['access-control-allow-credentials'] = 'true';
    stream.extraResponseHeaders = { ...stream.extraResponseHeaders, ...headers };
  }
  return FilterStatus.Continue;
}

// === fault ===

/**
 * Envoy's fault filter as Istio configures it: the delay is drawn first, then the abort; either
 * one turns off retries and the route timeout for this request (DESIGN.md behaviour 6).
 */
function faultFilter(stream: HttpStream, next: () => void): FilterStatus {
  const fault = stream.route?.fault;
  if (!fault) return FilterStatus.Continue;
  const random = stream.runtime.random;
  const delay = fault.delay && fault.delay.percentage > 0 && random.next() * 100 < fault.delay.percentage ? fault.delay.fixedDelayMs : -1;
  const abort = () => {
    const a = fault.abort;
    if (a && a.percentage > 0 && random.next() * 100 < a.percentage) {
      stream.faultInjected = true;
      stream.runtime.stats.inc('fault_aborts_injected');
      if (a.grpcStatus !== undefined) {
        // A gRPC abort is always a trailers-only gRPC answer (HTTP 200 + grpc-status).
        stream.addFlag(ResponseFlag.FaultInjected);
        stream.localReply({ status: 200, flag: ResponseFlag.FaultInjected, details: 'fault_filter_abort', body: 'fault filter abort', grpcStatus: a.grpcStatus });
      } else {
        stream.localReply({ status: a.httpStatus ?? 503, flag: ResponseFlag.FaultInjected, details: 'fault_filter_abort', body: 'fault filter abort' });
      }
      return true;
    }
    return false;
  };
  if (delay < 0) return abort() ? FilterStatus.Stop : FilterStatus.Continue;
  stream.faultInjected = true;
  stream.addFlag(ResponseFlag.DelayInjected);
  stream.runtime.stats.inc('fault_delays_injected');
  stream.runtime.clock.setTimeout(() => {
    if (stream.finished) return;
    if (!abort()) next();
  }, delay);
  return FilterStatus.Stop;
}
