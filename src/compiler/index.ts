/**
 * The config compiler (Istio's pilot networking core): a pure function from configuration,
 * registry and proxy to ProxyConfig, and `explainRequest` to trace a request through it.
 *
 *   context.ts     what one proxy sees (exportTo, Sidecar egress, DestinationRule lookup)
 *   outbound.ts    sidecar capture listener, route table per port, virtual host per service
 *   inbound.ts     sidecar inbound listeners and `inbound|<port>||` clusters
 *   gateway.ts     gateway listeners and virtual hosts from bound VirtualServices
 *   http-routes.ts VirtualService rules -> routes (matches, actions, Istio defaults, delegation)
 *   clusters.ts    outbound clusters and endpoints; policy.ts DestinationRule merging/defaults
 *   outbound-cache.ts  per-service outbound parts kept across builds and proxy classes
 *   explain.ts     a request through a compiled config, by the proxy's own matcher (src/semantics)
 */
export { compileProxyConfig, compileSharedOutbound } from './compile.js';
export { credentialSources } from './client-credentials.js';
export { compileTelemetry } from './telemetry.js';
export type { SharedOutbound } from './compile.js';
export { OutboundCache } from './outbound-cache.js';
export { proxyClassKey } from './context.js';
export { explainRequest } from './explain.js';
export type { ExplainRequest, Explanation, ExplainOutcome } from './explain.js';
export { DEFAULT_MESH } from './inputs.js';
export type { CompileInput, ConfigSnapshot, MeshSettings, InboundPort, ProxyPorts, OutboundTrafficPolicyMode } from './inputs.js';
export { STICKY_CANARY_ANNOTATION } from './http-routes.js';
export { OUTBOUND_LISTENER, ALLOW_ANY_ROUTE, BLOCK_ALL_ROUTE } from './outbound.js';
