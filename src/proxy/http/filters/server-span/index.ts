/**
 * The SERVER span of an inbound sidecar or a gateway (Envoy's connection manager starts it
 * with the request headers). Inbound, the app gets headers naming this span as its parent; a
 * gateway's client span (the router's) becomes this span's child and sets the upstream's
 * headers itself. Health checks between proxies are not traced, as Envoy's health_check filter
 * marks them. The span ends with the request (the connection manager finishes it with the
 * request's outcome), and it is listed after the peer-metadata filter, whose proven peer
 * tells a health check apart.
 */
import { HTTP_FILTERS } from '../../../../api/proxy-config.js';
import { isPeerHealthCheck } from '../../../../telemetry/events.js';
import { hasTraceHeaders } from '../../../../telemetry/propagation.js';
import { withoutTraceHeaders } from '../../../../telemetry/proxy-telemetry.js';
import { FilterStatus, type CompiledHttpFilter, type FilterStream, type HttpFilter, type HttpFilterFactory } from '../../filter-api.js';

/** What a server span reads when the request carries no trace context. */
const NO_HEADERS: Readonly<Record<string, undefined>> = Object.freeze({});

const serverSpan: HttpFilter = {
  decodeHeaders(stream: FilterStream): FilterStatus {
    const tracer = stream.runtime.telemetry?.tracer;
    if (tracer === undefined || isPeerHealthCheck(stream.direction, stream.method, stream.userAgent, stream.peerMetadata)) return FilterStatus.Continue;
    const incoming = hasTraceHeaders(stream.headers);
    const span = tracer.startServerSpan(incoming ? stream.headers : NO_HEADERS, stream);
    stream.serverSpan = span;
    if (incoming) stream.headers = withoutTraceHeaders(stream.headers);
    if (stream.direction === 'inbound') stream.proxyHeaderLines += span.headerLines();
    return FilterStatus.Continue;
  },
};

export const serverSpanFactory: HttpFilterFactory = {
  name: HTTP_FILTERS.serverSpan,
  compile(_config, ctx): CompiledHttpFilter {
    // An outbound sidecar's span is the router's client span.
    const outbound = ctx.direction === 'outbound';
    return {
      name: HTTP_FILTERS.serverSpan,
      create: (stream) => (outbound || stream.runtime.telemetry?.tracer === undefined ? undefined : serverSpan),
    };
  },
};
