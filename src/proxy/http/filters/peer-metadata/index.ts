/**
 * Istio's metadata exchange between sidecars (its peer_metadata HTTP filter), proven with the
 * mesh key (peer-identity.ts) until mutual TLS carries workload identity:
 *
 * - inbound, the caller's `x-envoy-peer-metadata(-id)` are trusted only with a valid proof;
 *   a caller that proved its own gets this proxy's on the reply (local replies too), one
 *   outside the mesh learns nothing. The app never sees any of it (the connection manager
 *   strips the fields from every inbound request, with or without this filter).
 * - outbound and at gateways, the upstream request to a mesh destination carries this proxy's
 *   (the router adds them once the cluster is known: passthrough destinations get none), and
 *   the upstream sidecar's answer is read from the response head.
 *
 * Without telemetry there is nothing to label, so the filter does nothing.
 */
import { HTTP_FILTERS } from '../../../../api/proxy-config.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../../../../telemetry/peer-metadata.js';
import { PEER_SIGNATURE_HEADER } from '../../../peer-identity.js';
import { FilterStatus, type CompiledHttpFilter, type FilterStream, type HttpFilter, type HttpFilterFactory } from '../../filter-api.js';
import type { HeaderBag } from '../../headers.js';

/** Stateless: everything it learns is recorded on the stream, so one instance serves all. */
const inbound: HttpFilter = {
  decodeHeaders(stream: FilterStream): FilterStatus {
    const peer = stream.runtime.peers.verify(stream.downstreamHeaders as HeaderBag);
    if (peer !== undefined) {
      stream.peerMetadata = peer;
      stream.peerProven = true;
    }
    return FilterStatus.Continue;
  },
  encodeHeaders(stream: FilterStream, _status: number, headers: HeaderBag): FilterStatus {
    if (!stream.peerProven) return FilterStatus.Continue;
    const rt = stream.runtime;
    // Sinew's HTTP/1.1 codec takes them as the ready lines they already are (no checks per field).
    if (stream.addResponseLines(rt.peerHeaderLines)) return FilterStatus.Continue;
    const local = rt.telemetry!.localPeerHeaders;
    headers[PEER_METADATA_ID_HEADER] = local[PEER_METADATA_ID_HEADER];
    headers[PEER_METADATA_HEADER] = local[PEER_METADATA_HEADER];
    const proof = rt.peers.proofHeaders[PEER_SIGNATURE_HEADER];
    if (proof !== undefined) headers[PEER_SIGNATURE_HEADER] = proof;
    return FilterStatus.Continue;
  },
};

const outbound: HttpFilter = {
  decodeHeaders(stream: FilterStream): FilterStatus {
    stream.sendPeerMetadata = true;
    return FilterStatus.Continue;
  },
  encodeHeaders(stream: FilterStream, _status: number, _headers: HeaderBag, upstream: Readonly<HeaderBag> | undefined): FilterStatus {
    // The router keeps the upstream's exchange fields from the client; they are read here.
    if (upstream !== undefined) stream.peerMetadata = stream.runtime.peers.verify(upstream as HeaderBag);
    return FilterStatus.Continue;
  },
};

export const peerMetadataFactory: HttpFilterFactory = {
  name: HTTP_FILTERS.peerMetadata,
  compile(_config, ctx): CompiledHttpFilter {
    const instance = ctx.direction === 'inbound' ? inbound : outbound;
    return {
      name: HTTP_FILTERS.peerMetadata,
      create: (stream) => (stream.runtime.telemetry === undefined ? undefined : instance),
    };
  },
};
