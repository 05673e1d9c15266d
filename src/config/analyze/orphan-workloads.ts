/** SNW1009: a Workload that no Service selects. */
import type { Diagnostic } from '../../api/diagnostics.js';
import { serviceSelects } from '../../semantics/labels.js';
import { finding, ofKind, type Analyzer, type Service, type Workload } from './common.js';

export const analyzeOrphanWorkloads: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  // Services by namespace and by one label of their selector: a Service can only select a
  // Workload that carries that label, so each Workload is checked against few Services.
  const byLabel = new Map<string, Service[]>();
  for (const s of ofKind<Service>(resources, 'Service')) {
    const first = Object.entries(s.spec.selector ?? {})[0];
    if (!first) continue;
    const key = `${s.metadata.namespace}|${first[0]}=${first[1]}`;
    const list = byLabel.get(key);
    if (list) list.push(s);
    else byLabel.set(key, [s]);
  }
  for (const w of ofKind<Workload>(resources, 'Workload')) {
    const labels = w.metadata.labels ?? {};
    const candidates = Object.entries(labels).flatMap(([k, v]) => byLabel.get(`${w.metadata.namespace}|${k}=${v}`) ?? []);
    if (candidates.some((s) => serviceSelects(s.spec.selector, labels))) continue;
    const shown = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || 'none';
    out.push(
      finding(w, 'SNW1009', ['metadata', 'labels'], `no Service in namespace ${w.metadata.namespace} selects this Workload (labels: ${shown}); other workloads cannot reach it through the mesh`),
    );
  }
  return out;
};
