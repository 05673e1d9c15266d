/**
 * Joins what the control plane knows at run time (the replicas the runner registered, with
 * their ports) to the pure compiler's inputs: it finds the proxy's own registration, turns
 * it into the compiler's port layout, and compiles.
 */
import type { Address, ProxyConfig, ProxyNode } from '../api/proxy-config.js';
import type { Resource } from '../api/resources/meta.js';
import type { RegistrySnapshot } from '../api/registry-snapshot.js';
import type { WorkloadRegistration } from '../api/mesh-status.js';
import { compileProxyConfig } from '../compiler/index.js';
import { DEFAULT_MESH, type MeshSettings, type ProxyPorts } from '../compiler/index.js';
import { SinewError } from '../core/errors.js';

export type { MeshSettings } from '../compiler/index.js';

/** `host:port` -> Address. */
export function parseAddress(value: string): Address {
  const i = value.lastIndexOf(':');
  return { host: value.slice(0, i), port: Number(value.slice(i + 1)) };
}

/**
 * Where a gateway listens for a Gateway server port that the runner did not map: Istio's
 * gateway Service maps the privileged ports to unprivileged ones the same way (80 -> 8080,
 * 443 -> 8443); ports from 1024 up listen as they are.
 */
export function defaultGatewayListenPort(serverPort: number): number {
  return serverPort < 1024 ? serverPort + 8000 : serverPort;
}

export class ProxyConfigBuilder {
  readonly mesh: MeshSettings;

  constructor(mesh: Partial<MeshSettings> = {}) {
    this.mesh = { ...DEFAULT_MESH, ...mesh };
  }

  build(node: ProxyNode, resources: readonly Resource[], registry: RegistrySnapshot, registrations: ReadonlyMap<string, WorkloadRegistration>, configRevision: string): ProxyConfig {
    const kind = node.mode === 'router' ? 'gateway' : 'workload';
    const registration = registrations.get(`${kind}/${node.namespace}/${node.workload}`);
    const ports = registration ? portsOf(node, registration, resources) : undefined;
    if (node.mode === 'sidecar' && !ports) {
      throw new SinewError('SNW_ERR_UNKNOWN_PROXY', `no registered replica for proxy ${node.id}; register its workload first`);
    }
    return compileProxyConfig({
      version: `${configRevision}.${registry.revision}`,
      config: { resources },
      registry,
      node,
      mesh: this.mesh,
      ports,
    });
  }
}

function portsOf(node: ProxyNode, registration: WorkloadRegistration, resources: readonly Resource[]): ProxyPorts | undefined {
  if (registration.kind === 'gateway') {
    const replica = registration.replicas[0];
    const host = replica?.host ?? '127.0.0.1';
    const gateway: Record<number, Address> = {};
    for (const r of resources) {
      if (r.kind !== 'Gateway') continue;
      for (const server of (r.spec as { servers?: { port?: { number?: number } }[] }).servers ?? []) {
        const port = server.port?.number;
        if (port !== undefined) gateway[port] = { host, port: defaultGatewayListenPort(port) };
      }
    }
    for (const [serverPort, mapped] of Object.entries(replica?.ports ?? {})) gateway[Number(serverPort)] = { host, port: mapped.inbound };
    return { gateway };
  }
  const replica = registration.replicas.find((r) => `sidecar~${r.id}.${registration.namespace}` === node.id);
  if (!replica) return undefined;
  return {
    outbound: replica.proxy.outbound ? parseAddress(replica.proxy.outbound) : undefined,
    inbound: Object.entries(replica.ports).map(([containerPort, p]) => ({
      containerPort: Number(containerPort),
      listen: { host: replica.host, port: p.inbound },
      app: { host: replica.host, port: p.app },
    })),
  };
}
