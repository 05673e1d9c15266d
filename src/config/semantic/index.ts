/** The semantic validator of each kind, by its key (the Gateway API's Gateway is `Gateway.gateway.networking.k8s.io`). */
import type { SemanticValidator } from './context.js';
import { validateVirtualService } from './virtual-service.js';
import { validateDestinationRule } from './destination-rule.js';
import { validateGateway } from './gateway.js';
import { validateSidecar } from './sidecar.js';
import { validateServiceEntry } from './service-entry.js';
import { validateWorkloadEntry, validateWorkloadGroup } from './workload-entry.js';
import { validatePeerAuthentication } from './peer-authentication.js';
import { validateAuthorizationPolicy } from './authorization-policy.js';
import { validateRequestAuthentication } from './request-authentication.js';
import { validateTelemetry } from './telemetry.js';
import { validateService, validateNamespace } from './kubernetes.js';
import { validateWorkload } from './workload.js';
import { gatewayApiValidators } from './gateway-api.js';
import { validateSecret } from './secret.js';

export type { SemanticContext, SemanticValidator } from './context.js';

export const semanticValidators: Readonly<Record<string, SemanticValidator>> = Object.freeze({
  VirtualService: validateVirtualService,
  DestinationRule: validateDestinationRule,
  Gateway: validateGateway,
  Sidecar: validateSidecar,
  ServiceEntry: validateServiceEntry,
  WorkloadEntry: validateWorkloadEntry,
  WorkloadGroup: validateWorkloadGroup,
  PeerAuthentication: validatePeerAuthentication,
  AuthorizationPolicy: validateAuthorizationPolicy,
  RequestAuthentication: validateRequestAuthentication,
  Telemetry: validateTelemetry,
  Service: validateService,
  Namespace: validateNamespace,
  Workload: validateWorkload,
  Secret: validateSecret,
  GatewayClass: gatewayApiValidators.GatewayClass,
  'Gateway.gateway.networking.k8s.io': gatewayApiValidators.Gateway,
  HTTPRoute: gatewayApiValidators.HTTPRoute,
  GRPCRoute: gatewayApiValidators.GRPCRoute,
  TLSRoute: gatewayApiValidators.TLSRoute,
  TCPRoute: gatewayApiValidators.TCPRoute,
  ReferenceGrant: gatewayApiValidators.ReferenceGrant,
  BackendTLSPolicy: gatewayApiValidators.BackendTLSPolicy,
});
