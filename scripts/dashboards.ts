/**
 * Writes Istio's standard dashboards (Mesh, Service, Workload), as rebuilt for Sinew's metrics
 * in src/controlplane/console/dashboards.ts, to docs/grafana/ for Grafana's import.
 * `npm run dashboards`; test/console/dashboards.test.ts checks the files are current.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboard, DASHBOARD_NAMES } from '../src/controlplane/console/dashboards.js';

export const DASHBOARD_DIR = join(import.meta.dirname, '..', 'docs', 'grafana');
export const dashboardFile = (name: string) => join(DASHBOARD_DIR, `istio-${name}-dashboard.json`);
export const dashboardText = (name: (typeof DASHBOARD_NAMES)[number]) => JSON.stringify(dashboard(name), null, 2) + '\n';

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  for (const name of DASHBOARD_NAMES) {
    writeFileSync(dashboardFile(name), dashboardText(name));
    process.stdout.write(`wrote ${dashboardFile(name)}\n`);
  }
}
