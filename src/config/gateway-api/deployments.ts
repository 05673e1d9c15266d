/**
 * What runs for the Gateway API: a proxy per Gateway of a class Sinew controls, as Istio's
 * deployment controller creates a Deployment per Gateway (pilot/pkg/config/kube/gateway
 * deploymentcontroller.go). `sinew up` (src/mesh/gateways.ts) keeps the running proxies in
 * line with this list.
 */
import type { Resource } from '../../api/resources/meta.js';
import type { GatewaySpec } from '../../api/resources/gateway-api/types.js';
import { bindGatewayApi, GATEWAY_NAME_LABEL } from '../../semantics/gateway-api/binding.js';

/** The label naming a Gateway's class on its proxy (Istio sets it on the Deployment's pods). */
export const GATEWAY_CLASS_LABEL = 'gateway.networking.k8s.io/gateway-class-name';

export interface GatewayDeployment {
  /** `namespace/name` of the Gateway. */
  key: string;
  namespace: string;
  /** The Gateway's name. */
  gateway: string;
  /** The proxy's workload name: `<gateway>-<class>`, as Istio names the Deployment. */
  workload: string;
  className: string;
  /** The proxy's labels: the Gateway's name and class, and spec.infrastructure.labels (GEP-1762). */
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The ports of its listeners that can be served, ascending. */
  ports: number[];
}

/** The Gateways Sinew runs, oldest first. */
export function gatewayDeployments(resources: readonly Resource[]): GatewayDeployment[] {
  return bindGatewayApi(resources).gateways.map((g) => {
    const gw = g.resource as Resource<GatewaySpec>;
    const name = gw.metadata.name;
    return {
      key: g.key,
      namespace: gw.metadata.namespace,
      gateway: name,
      workload: `${name}-${g.className}`,
      className: g.className,
      labels: { ...(gw.spec.infrastructure?.labels ?? {}), [GATEWAY_NAME_LABEL]: name, [GATEWAY_CLASS_LABEL]: g.className },
      annotations: { ...(gw.spec.infrastructure?.annotations ?? {}) },
      // A listener left out only for its CA references (NoValidCACertificate) keeps its port, as a
      // certificate problem does: the port follows the listeners, not the objects they refer to
      // (`sinew up` lists Gateways, not ConfigMaps, to plan the proxies).
      ports: [...new Set(g.listeners.filter((l) => l.usable || l.accepted.reason === 'NoValidCACertificate').map((l) => l.listener.port))].sort((a, b) => a - b),
    };
  });
}
