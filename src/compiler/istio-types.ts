/**
 * The Istio networking spec types the compiler reads, from src/api/resources (named as in
 * Istio's API, istio.io/api networking/v1). Resources reach the compiler validated and frozen.
 */
export type {
  Destination,
  HTTPMatchRequest,
  HTTPRedirect,
  HTTPDirectResponse,
  HTTPRewrite,
  HTTPRetry,
  HTTPFaultInjection,
  HTTPMirrorPolicy,
  HTTPRoute,
  HTTPRouteDestination,
  L4MatchAttributes,
  TCPRoute,
  VirtualServiceSpec,
  CorsPolicy as CorsPolicySpec,
  HeaderOperations as HeaderOperationsSpec,
  HTTPHeaders as HeadersSpec,
} from '../api/resources/virtual-service.js';
export type {
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetection as OutlierDetectionSpec,
  ClientTLSSettings,
  PortTrafficPolicy,
  TrafficPolicy,
  Subset,
  DestinationRuleSpec,
} from '../api/resources/destination-rule.js';
export type { Server, ServerTLSSettings, GatewaySpec } from '../api/resources/gateway.js';
export type { IstioEgressListener, SidecarSpec } from '../api/resources/sidecar.js';
export type { StringMatchSpec } from '../api/resources/common.js';
