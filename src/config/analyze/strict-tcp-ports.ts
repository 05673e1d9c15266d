/**
 * SNW1019: a STRICT PeerAuthentication covering a port that only carries TCP (or TLS
 * passthrough, Mongo, Redis, MySQL). Istio's sidecars terminate mutual TLS on such ports; a
 * Sinew sidecar terminates it on HTTP ports only so far (compiler/inbound.ts), and STRICT
 * admits no plaintext, so the port admits no connection at all: every client, sidecar or not,
 * is closed. Reported on the policy field that makes the port STRICT, once per policy and
 * port, naming the Service port and workload, so the limitation is never silent. (Cross-resource,
 * so `sinew analyze` and the console's validations report it; `validate` looks at one resource
 * at a time.)
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import type { FieldPath } from '../../core/path.js';
import { workloadTargetPort } from '../../semantics/target-port.js';
import { peerModeForPort } from '../../semantics/peer-authentication.js';
import { isTcpProtocol, parseProtocol } from '../semantic/rules.js';
import { finding, nameOf, ofKind, type Analyzer, type Service } from './common.js';
import { PeerPolicyIndex } from './peer-policies.js';

/** The Service port's protocol as Istio reads it: appProtocol, else the port name's prefix. */
const protocolOf = (port: { name?: string; appProtocol?: string }) => parseProtocol(port.appProtocol ?? (port.name ?? '').split('-')[0]);

export const analyzeStrictTcpPorts: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const services = ofKind<Service>(resources, 'Service').filter((s) => s.spec.type !== 'ExternalName' && (s.spec.ports ?? []).some((p) => isTcpProtocol(protocolOf(p))));
  if (services.length === 0) return out;
  const policies = new PeerPolicyIndex(resources);
  const reported = new Set<string>();
  for (const service of services) {
    const behind = policies.behind(service);
    for (const port of service.spec.ports ?? []) {
      const protocol = protocolOf(port);
      if (!isTcpProtocol(protocol)) continue;
      for (const { workload, composed } of behind) {
        const target = port.targetPort ?? port.port;
        const containerPort = workload ? workloadTargetPort(port.targetPort, port.port, workload.spec.ports ?? []) : typeof target === 'number' || /^\d+$/.test(String(target)) ? Number(target) : undefined;
        if (containerPort === undefined || peerModeForPort(composed, containerPort) !== 'STRICT') continue;
        // The field that made the port STRICT: the workload policy's portLevelMtls entry, else the deciding policy's mode.
        const portLevel = composed.ports.has(containerPort) && composed.from.workload !== undefined;
        const policyName = portLevel ? composed.from.workload! : composed.decidedBy!;
        const policy = policies.byName.get(policyName);
        if (!policy) continue;
        const path: FieldPath = portLevel ? ['spec', 'portLevelMtls', String(containerPort), 'mode'] : ['spec', 'mtls', 'mode'];
        const key = `${policyName}|${containerPort}|${nameOf(service)}|${port.port}`;
        if (reported.has(key)) continue;
        reported.add(key);
        const who = workload ? `Workload ${workload.metadata.name}` : 'its workloads';
        out.push(
          finding(
            policy,
            'SNW1019',
            path,
            `STRICT covers port ${port.name ? `${port.name} ` : ''}${port.port} of ${nameOf(service)} (${protocol}, containerPort ${containerPort} of ${who}): sidecars do not terminate mutual TLS on TCP ports yet, so that port admits no connection at all; give ${who} a PeerAuthentication with portLevelMtls {${containerPort}: {mode: PERMISSIVE}} (or DISABLE) until then`,
          ),
        );
      }
    }
  }
  return out;
};
