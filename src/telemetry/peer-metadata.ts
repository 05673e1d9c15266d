/**
 * Istio's metadata exchange: sidecars tell each other who they are so that both ends of a
 * request can fill the `source_*` and `destination_*` metric labels. Istio's
 * `istio.metadata_exchange` filter sends `x-envoy-peer-metadata` (base64 of a protobuf Struct
 * holding the node's WORKLOAD_NAME, NAMESPACE, LABELS, CLUSTER_ID, SERVICE_ACCOUNT, ...) and
 * `x-envoy-peer-metadata-id` (the node id) on the upstream request, and the inbound sidecar
 * answers with its own pair on the response. Sinew keeps the two header names and the flow but
 * encodes base64 JSON instead of a protobuf Struct.
 *
 * The headers come from the network, so decoding is bounded and never throws: garbage yields
 * `undefined`, oversized fields are dropped, unknown fields are ignored.
 */
import type { ProxyNode } from '../api/proxy-config.js';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** Header values larger than this are ignored (Envoy's default header limit is 60 KiB total). */
export const MAX_PEER_METADATA_BYTES = 4096;
const MAX_FIELD_CHARS = 253;

/** What one proxy tells its peer about its workload. Every field is optional on the wire. */
export interface PeerMetadata {
  /** The node id, e.g. `sidecar~reviews-v1-0.default`. */
  id?: string;
  workload?: string;
  namespace?: string;
  app?: string;
  version?: string;
  canonicalService?: string;
  canonicalRevision?: string;
  serviceAccount?: string;
  /** SPIFFE identity, `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`. */
  principal?: string;
  /** Istio's CLUSTER_ID (`Kubernetes` by default in Istio). */
  cluster?: string;
  meshId?: string;
}

export interface LocalIdentityOptions {
  /** Istio's CLUSTER_ID; Istio's default is `Kubernetes`. */
  cluster?: string;
  /** Trust domain for the SPIFFE principal; Istio's default is `cluster.local`. */
  trustDomain?: string;
  meshId?: string;
}

const FIELDS: readonly (keyof PeerMetadata)[] = [
  'id', 'workload', 'namespace', 'app', 'version', 'canonicalService', 'canonicalRevision',
  'serviceAccount', 'principal', 'cluster', 'meshId',
];

/**
 * The local node's metadata, with Istio's fallbacks for the canonical labels
 * (`service.istio.io/canonical-name` -> `app.kubernetes.io/name` -> `app` -> workload name;
 * `service.istio.io/canonical-revision` -> `app.kubernetes.io/version` -> `version` -> `latest`).
 */
export function peerMetadataFromNode(node: ProxyNode, options: LocalIdentityOptions = {}): PeerMetadata {
  const labels = node.labels ?? {};
  const app = labels['app'] ?? labels['app.kubernetes.io/name'];
  const version = labels['version'] ?? labels['app.kubernetes.io/version'];
  const canonicalService =
    node.canonicalService ?? labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels['app'] ?? node.workload;
  const canonicalRevision =
    node.canonicalRevision ?? labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels['version'] ?? 'latest';
  const md: PeerMetadata = {
    id: node.id,
    workload: node.workload,
    namespace: node.namespace,
    canonicalService,
    canonicalRevision,
    cluster: options.cluster ?? 'Kubernetes',
  };
  if (app !== undefined) md.app = app;
  if (version !== undefined) md.version = version;
  if (node.serviceAccount) {
    md.serviceAccount = node.serviceAccount;
    md.principal = `spiffe://${options.trustDomain ?? 'cluster.local'}/ns/${node.namespace}/sa/${node.serviceAccount}`;
  }
  if (options.meshId) md.meshId = options.meshId;
  return md;
}

/** The `x-envoy-peer-metadata` value for a node (or for metadata already built). */
export function encodePeerMetadata(node: ProxyNode | PeerMetadata, options: LocalIdentityOptions = {}): string {
  const md = isProxyNode(node) ? peerMetadataFromNode(node, options) : node;
  const clean: Record<string, string> = {};
  for (const f of FIELDS) {
    const v = md[f];
    if (typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD_CHARS) clean[f] = v;
  }
  return Buffer.from(JSON.stringify(clean), 'utf8').toString('base64');
}

/** Both headers, ready to set on an upstream request or on a response. */
export function peerMetadataHeaders(node: ProxyNode, options: LocalIdentityOptions = {}): Record<string, string> {
  return { [PEER_METADATA_HEADER]: encodePeerMetadata(node, options), [PEER_METADATA_ID_HEADER]: node.id };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes a header value; `undefined` for anything absent, oversized or malformed. Never throws. */
export function decodePeerMetadata(value: string | string[] | undefined): PeerMetadata | undefined {
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PEER_METADATA_BYTES) return undefined;
  const trimmed = value.trim();
  if (trimmed.length % 4 === 1 || !BASE64.test(trimmed)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(trimmed, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const out: PeerMetadata = {};
  let any = false;
  for (const f of FIELDS) {
    const v = (parsed as Record<string, unknown>)[f];
    // Control characters would let a peer forge extra lines in access logs or metric text.
    if (typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD_CHARS && !/[\u0000-\u001f\u007f]/.test(v)) {
      out[f] = v;
      any = true;
    }
  }
  return any ? out : undefined;
}

function isProxyNode(x: ProxyNode | PeerMetadata): x is ProxyNode {
  return typeof (x as ProxyNode).mode === 'string' && typeof (x as ProxyNode).labels === 'object';
}
