/**
 * SNW1014: a Service port whose targetPort a Workload it selects does not declare. Kubernetes
 * resolves targetPort against the container ports (src/semantics/target-port.ts); a Workload
 * replica is reachable only on the ports it declares, so it is no endpoint of that Service
 * port, and requests to the port never reach it (503 when no replica has the port).
 */
import type { Diagnostic } from '../../api/diagnostics.js';
import { serviceSelects } from '../../semantics/labels.js';
import { workloadTargetPort } from '../../semantics/target-port.js';
import { finding, ofKind, type Analyzer, type Service, type Workload } from './common.js';

export const analyzeServiceTargetPorts: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const workloadsByNamespace = new Map<string, Workload[]>();
  for (const w of ofKind<Workload>(resources, 'Workload')) {
    const list = workloadsByNamespace.get(w.metadata.namespace) ?? [];
    list.push(w);
    workloadsByNamespace.set(w.metadata.namespace, list);
  }
  for (const s of ofKind<Service>(resources, 'Service')) {
    if (s.spec.type === 'ExternalName') continue;
    const selected = (workloadsByNamespace.get(s.metadata.namespace) ?? []).filter((w) => serviceSelects(s.spec.selector, w.metadata.labels));
    for (const [i, port] of (s.spec.ports ?? []).entries()) {
      for (const w of selected) {
        const declared = w.spec.ports ?? [];
        if (workloadTargetPort(port.targetPort, port.port, declared) !== undefined) continue;
        const target = port.targetPort ?? port.port;
        const what = typeof target === 'string' && !/^\d+$/.test(target) ? `no port named ${target}` : `no containerPort ${target}`;
        const has = declared.length ? ` (it declares ${declared.map((p) => (p.name ? `${p.name} ${p.containerPort}` : String(p.containerPort))).join(', ')})` : ' (it declares no ports)';
        out.push(
          finding(
            s,
            'SNW1014',
            ['spec', 'ports', i, ...(port.targetPort !== undefined ? ['targetPort'] : [])],
            `Workload ${w.metadata.name} declares ${what}${has}: its replicas are not endpoints of port ${port.name ? `${port.name} ` : ''}${port.port}; declare the port in the Workload, or point targetPort at one it declares`,
          ),
        );
      }
    }
  }
  return out;
};
