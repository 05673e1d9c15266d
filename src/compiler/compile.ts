/**
 * compileProxyConfig: (config snapshot, registry snapshot, proxy) -> ProxyConfig. Pure, like
 * Istio's ConfigGenerator (BuildListeners/BuildClusters(node, push)): no I/O, no clock; the
 * caller passes the version.
 */
import type { ProxyConfig, TelemetrySettings } from '../api/proxy-config.js';
import { deepFreeze } from '../core/freeze.js';
import { buildOutboundClusters } from './clusters.js';
import { CompileContext } from './context.js';
import { buildGateway } from './gateway.js';
import { buildSidecarInbound } from './inbound.js';
import type { CompileInput } from './inputs.js';
import { buildSidecarOutbound } from './outbound.js';

/** Istio's default trace sampling (meshConfig defaultConfig.tracing.sampling) is 1 %. */
const ISTIO_DEFAULT_SAMPLING = 1;

/** Compiles the configuration of one proxy. The result is deep-frozen. */
export function compileProxyConfig(input: CompileInput): ProxyConfig {
  const ctx = new CompileContext(input);
  const outboundClusters = buildOutboundClusters(ctx);
  const config: ProxyConfig = {
    version: input.version,
    node: input.node,
    listeners: [],
    routeConfigs: [],
    clusters: [],
    endpoints: [],
  };
  if (ctx.node.mode === 'router') {
    const gw = buildGateway(ctx);
    config.listeners.push(...gw.listeners);
    config.routeConfigs.push(...gw.routeConfigs);
  } else {
    const inbound = buildSidecarInbound(ctx);
    const outbound = buildSidecarOutbound(ctx);
    config.listeners.push(...inbound.listeners, ...outbound.listeners);
    config.routeConfigs.push(...inbound.routeConfigs, ...outbound.routeConfigs);
    config.clusters.push(...inbound.clusters);
    config.endpoints.push(...inbound.endpoints);
  }
  config.clusters.push(...outboundClusters.clusters);
  config.endpoints.push(...outboundClusters.endpoints);
  const telemetry: TelemetrySettings = { ...(ctx.mesh.telemetry ?? {}), tracingSamplingPercentage: ctx.mesh.defaultTracingSampling ?? ISTIO_DEFAULT_SAMPLING };
  config.telemetry = telemetry;
  return deepFreeze(structuredClone(config));
}
