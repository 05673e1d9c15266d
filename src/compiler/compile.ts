/**
 * compileProxyConfig: (config snapshot, registry snapshot, proxy) -> ProxyConfig. Pure, like
 * Istio's ConfigGenerator (BuildListeners/BuildClusters(node, push)): no I/O, no clock; the
 * caller passes the version.
 *
 * At fleet size most of a sidecar's config is its outbound side (a route table per port, a
 * cluster and endpoints per service), and that part is the same for every sidecar of one
 * proxy class (`proxyClassKey`). `compileSharedOutbound` builds it once; passing it to
 * `compileProxyConfig` for each sidecar of the class gives the same config as compiling
 * each whole, with the shared objects referenced rather than copied (Istio likewise caches
 * CDS/RDS output per SidecarScope across proxies, pilot/pkg/model/xds_cache.go). Within it,
 * each service's part can be kept across builds and classes (outbound-cache.ts), so a
 * change rebuilds only the services it touches.
 */
import type { Cluster, ClusterLoadAssignment, ProxyConfig, RouteConfiguration } from '../api/proxy-config.js';
import { deepFreeze } from '../core/freeze.js';
import { clientCredentialSecrets } from './client-credentials.js';
import { backendTlsSecrets } from './gateway-api/backend-tls.js';
import { buildOutboundClusters, joinClusters } from './clusters.js';
import { CompileContext } from './context.js';
import { buildGateway } from './gateway.js';
import { buildGatewayApiGateway } from './gateway-api/gateway.js';
import { compileTelemetry } from './telemetry.js';
import { buildSidecarInbound } from './inbound.js';
import { addSecurityFilters } from './security-filters.js';
import type { CompileInput } from './inputs.js';
import { buildServiceOutbound, type OutboundCache } from './outbound-cache.js';
import { buildOutboundListeners, buildOutboundRouteConfigs, joinRouteConfigs, meshVirtualServices } from './outbound.js';

/** The secret that carries the mesh key (MeshSettings.meshKey) to every proxy. */
export const MESH_KEY_SECRET = 'sinew-mesh-key';

/** The outbound part of a sidecar's config shared by its proxy class; deep-frozen. */
export interface SharedOutbound {
  /** The `proxyClassKey` it was built for. */
  readonly classKey: string;
  /**
   * The class's outbound traffic policy (its Sidecar's, else the mesh's): the one class
   * setting a sidecar's own part (its capture listener's fallback) depends on.
   */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  readonly routeConfigs: readonly RouteConfiguration[];
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterLoadAssignment[];
}

/**
 * Builds the outbound route tables, clusters and endpoints of a sidecar. Any sidecar whose
 * `proxyClassKey` equals this input's, compiled against the same snapshots and mesh
 * settings, may use the result. Throws for gateways (they have no class).
 *
 * With `cache` (kept by the caller across builds and classes) each service's part is
 * reused where what it was built from is unchanged (outbound-cache.ts); the result is the
 * same as without it. The cache is used with frozen snapshots only.
 */
export function compileSharedOutbound(input: CompileInput, classKey: string, cache?: OutboundCache): SharedOutbound {
  const ctx = new CompileContext(input);
  if (ctx.node.mode !== 'sidecar') throw new TypeError('compileSharedOutbound: only sidecars share outbound config');
  // The result may point into the snapshots (endpoint labels, for one). Freezing what is
  // already frozen changes nothing, so frozen snapshots are shared as they are; anything
  // else is copied first, so that freezing the result never freezes the caller's objects.
  const snapshotsFrozen = Object.isFrozen(input.registry) && Object.isFrozen(input.config.resources) && input.config.resources.every((r) => Object.isFrozen(r));
  const useCache = cache !== undefined && snapshotsFrozen;
  if (useCache) cache.begin(input.config.resources, input.registry, ctx);
  const vsFor = meshVirtualServices(ctx);
  const perService = ctx.visibleServices().map((service) =>
    useCache ? cache.serviceOutbound(ctx, classKey, service, vsFor(service)) : buildServiceOutbound(ctx, service, vsFor(service)),
  );
  const routeConfigs = joinRouteConfigs(ctx, perService.map((p) => p.virtualHosts));
  const clusters = joinClusters(perService.map((p) => p.clusters));
  const shared: SharedOutbound = {
    classKey,
    outboundTrafficPolicy: ctx.outboundTrafficPolicy,
    routeConfigs,
    clusters: clusters.clusters,
    endpoints: clusters.endpoints,
  };
  return deepFreeze(snapshotsFrozen ? shared : structuredClone(shared));
}

/**
 * Compiles the configuration of one proxy. The result is deep-frozen. With `shared` (built
 * by `compileSharedOutbound` for this proxy's class) the outbound part is taken from it.
 */
export function compileProxyConfig(input: CompileInput, shared?: SharedOutbound): ProxyConfig {
  const ctx = new CompileContext(input);
  const config: ProxyConfig = {
    version: input.version,
    node: input.node,
    listeners: [],
    routeConfigs: [],
    clusters: [],
    endpoints: [],
  };
  let outbound: { routeConfigs: readonly RouteConfiguration[]; clusters: readonly Cluster[]; endpoints: readonly ClusterLoadAssignment[] } | undefined;
  if (ctx.node.mode === 'router') {
    // A Gateway API Gateway's own proxy serves that Gateway; other gateway proxies the Istio
    // Gateways that select them.
    const own = ctx.gatewayApiGateway();
    const gw = own ? buildGatewayApiGateway(ctx, ctx.gatewayApi, own) : buildGateway(ctx);
    config.listeners.push(...gw.listeners);
    config.routeConfigs.push(...gw.routeConfigs);
    if (gw.secrets?.length) config.secrets = [...gw.secrets];
  } else {
    const inbound = buildSidecarInbound(ctx);
    config.listeners.push(...inbound.listeners, ...buildOutboundListeners(ctx));
    config.routeConfigs.push(...inbound.routeConfigs);
    config.clusters.push(...inbound.clusters);
    config.endpoints.push(...inbound.endpoints);
    if (shared) outbound = shared;
    else {
      const routeConfigs = buildOutboundRouteConfigs(ctx);
      config.routeConfigs.push(...routeConfigs);
    }
  }
  addSecurityFilters(ctx, input, config.listeners);
  if (!outbound) {
    const outboundClusters = buildOutboundClusters(ctx);
    config.clusters.push(...outboundClusters.clusters);
    config.endpoints.push(...outboundClusters.endpoints);
  }
  // DestinationRule credentialName: the client credentials and roots its clusters originate TLS with.
  const credentials = clientCredentialSecrets(ctx, config.secrets ?? []);
  if (credentials.length) config.secrets = [...(config.secrets ?? []), ...credentials];
  // Gateways: the CA bundles of the BackendTLSPolicies their clusters verify backends with.
  const backendCas = backendTlsSecrets(ctx, config.clusters);
  if (backendCas.length) config.secrets = [...(config.secrets ?? []), ...backendCas];
  config.telemetry = compileTelemetry(input);
  const meshKey = ctx.mesh.meshKey;
  if (meshKey !== undefined) {
    // Every proxy, sidecar or gateway, signs and checks the metadata exchange with it.
    // Beside a gateway's credentials, never in their place.
    config.secrets = [...(config.secrets ?? []), { name: MESH_KEY_SECRET, genericSecret: meshKey }];
    config.peerMetadataKey = MESH_KEY_SECRET;
  }
  // The proxy's own part is cloned (it must share nothing with the caller's inputs); the
  // shared part is already a frozen copy, and deepFreeze stops at frozen objects, so it
  // costs nothing per proxy.
  const own = structuredClone(config);
  if (outbound) {
    // Freeze the proxy's own items first and the joined arrays shallowly, so that freezing
    // the whole never walks the thousands of shared items.
    own.routeConfigs = Object.freeze([...deepFreeze(own.routeConfigs), ...outbound.routeConfigs]) as RouteConfiguration[];
    own.clusters = Object.freeze([...deepFreeze(own.clusters), ...outbound.clusters]) as Cluster[];
    own.endpoints = Object.freeze([...deepFreeze(own.endpoints), ...outbound.endpoints]) as ClusterLoadAssignment[];
  }
  return deepFreeze(own);
}
