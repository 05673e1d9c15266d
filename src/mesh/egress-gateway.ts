/**
 * The embedded egress gateway: Istio's `istio-egressgateway` (the demo profile's, or
 * `istioctl install --set components.egressGateways[0].enabled=true`), a second gateway
 * proxy in istio-system that Gateways select with `istio: egressgateway`, and that the mesh
 * reaches through its Service, `istio-egressgateway.istio-system.svc.cluster.local`, as
 * istio.io's egress gateway tasks route to it (`gateways: [mesh, istio-egressgateway]`).
 *
 * `sinew up` runs it when the manifests hold a Gateway that selects it, or with
 * `--egress-gateway`. Its server ports listen on free local ports; what Istio's install
 * writes as Kubernetes objects is applied as config: the Service (ports 80 and 443, as
 * Istio's chart, and any other server port of a Gateway that selects it) and a WorkloadEntry
 * standing for its pod, whose named ports map each Service port to where the proxy listens.
 */
import type { WorkloadRegistration } from '../api/mesh-status.js';
import type { ProxyNode } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import { validateText } from '../config/validate.js';
import { proxyIdOf } from '../controlplane/daemon.js';
import { allocatePort } from './supervisor.js';

export const EGRESS_GATEWAY_NAME = 'istio-egressgateway';
export const EGRESS_GATEWAY_NAMESPACE = 'istio-system';
const LABELS = { istio: 'egressgateway', app: EGRESS_GATEWAY_NAME };
const SERVICE_ACCOUNT = 'istio-egressgateway-service-account';
/**
 * The ports of Istio's istio-egressgateway Service, named as its chart names them
 * (manifests/charts/gateways/istio-egress values: `http2` 80, `https` 443): sidecars speak
 * HTTP/2 to port 80, which the gateway's HTTP servers take beside HTTP/1.1 (codec AUTO), and
 * the egress tasks' Gateways (`number: 80, name: http, protocol: HTTP`) and routes (`port:
 * 80`) bind to them unchanged.
 */
const EGRESS_SERVICE_PORTS: readonly { name: string; port: number }[] = [
  { name: 'http2', port: 80 },
  { name: 'https', port: 443 },
];

export interface EgressGatewayPlan {
  node: ProxyNode;
  admin: number;
  metrics: number;
  registration: WorkloadRegistration;
  /** The Service and the WorkloadEntry that make the gateway reachable from the mesh. */
  resources: Resource[];
}

/** Whether an Istio Gateway in `resources` selects the egress gateway. */
export function selectsEgressGateway(resources: readonly Resource[]): boolean {
  return resources.some((r) => r.kind === 'Gateway' && r.group === 'networking.istio.io' && (r.spec as { selector?: Record<string, string> }).selector?.istio === LABELS.istio);
}

/** Server ports of the Gateways that select the egress gateway. */
function egressServerPorts(resources: readonly Resource[]): number[] {
  const out: number[] = [];
  for (const r of resources) {
    if (r.kind !== 'Gateway' || r.group !== 'networking.istio.io') continue;
    const spec = r.spec as { selector?: Record<string, string>; servers?: { port?: { number?: number } }[] };
    if (spec.selector?.istio !== LABELS.istio) continue;
    for (const server of spec.servers ?? []) if (server.port?.number !== undefined) out.push(server.port.number);
  }
  return out;
}

/** Ports, identity, registration and the config that puts the egress gateway in the registry. */
export async function planEgressGateway(resources: readonly Resource[], host: string): Promise<EgressGatewayPlan> {
  const servicePorts = [...EGRESS_SERVICE_PORTS];
  for (const port of egressServerPorts(resources)) if (!servicePorts.some((p) => p.port === port)) servicePorts.push({ name: `tcp-${port}`, port });
  const listen: Record<string, { inbound: number; app: number }> = {};
  for (const { port } of servicePorts) {
    const local = await allocatePort(host);
    listen[String(port)] = { inbound: local, app: local };
  }
  const admin = await allocatePort(host);
  const metrics = await allocatePort(host);
  const node: ProxyNode = {
    id: proxyIdOf({ kind: 'gateway', namespace: EGRESS_GATEWAY_NAMESPACE }, EGRESS_GATEWAY_NAME),
    mode: 'router',
    workload: EGRESS_GATEWAY_NAME,
    namespace: EGRESS_GATEWAY_NAMESPACE,
    labels: { ...LABELS },
    serviceAccount: SERVICE_ACCOUNT,
  };
  const registration: WorkloadRegistration = {
    kind: 'gateway',
    name: EGRESS_GATEWAY_NAME,
    namespace: EGRESS_GATEWAY_NAMESPACE,
    labels: node.labels,
    serviceAccount: SERVICE_ACCOUNT,
    replicas: [
      {
        id: EGRESS_GATEWAY_NAME,
        host,
        ports: listen,
        ready: false,
        reason: 'starting',
        restarts: 0,
        proxy: {
          inbound: `${host}:${listen['80'].inbound}`,
          admin: `${host}:${admin}`,
          metrics: `${host}:${metrics}`,
          servers: Object.fromEntries(Object.entries(listen).map(([port, p]) => [port, `${host}:${p.inbound}`])),
        },
      },
    ],
  };
  const yaml = `# What Istio's install creates for its egress gateway, written by sinew up.
apiVersion: v1
kind: Service
metadata:
  name: ${EGRESS_GATEWAY_NAME}
  namespace: ${EGRESS_GATEWAY_NAMESPACE}
  labels: ${JSON.stringify(LABELS)}
spec:
  selector: ${JSON.stringify({ istio: LABELS.istio })}
  ports: ${JSON.stringify(servicePorts.map((p) => ({ name: p.name, port: p.port })))}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${EGRESS_GATEWAY_NAME}
  namespace: ${EGRESS_GATEWAY_NAMESPACE}
  labels: ${JSON.stringify(LABELS)}
spec:
  address: ${host}
  labels: ${JSON.stringify(LABELS)}
  serviceAccount: ${SERVICE_ACCOUNT}
  ports: ${JSON.stringify(Object.fromEntries(servicePorts.map((p) => [p.name, listen[String(p.port)].inbound])))}
`;
  const validated = validateText('<sinew up: the egress gateway>', yaml);
  const errors = validated.diagnostics.filter((d) => d.level === 'error');
  if (errors.length) throw new Error(`the egress gateway's Service and WorkloadEntry are invalid: ${errors.map((d) => d.message).join('; ')}`);
  return { node, admin, metrics, registration, resources: validated.resources };
}
