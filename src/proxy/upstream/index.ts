/** The upstream layer's public surface for the rest of the proxy (router, admin, telemetry). */
export { createClusterManager, type ClusterManagerOptions, type UpstreamClusterManager, type UpstreamEvent } from './cluster-manager.js';
export { hashString } from './hash.js';
export type * from './types.js';
