/** What `sinew up` prints once the mesh is up: what runs where, what is not ready and why, the URLs to open. */
import type { MeshStatus } from '../api/mesh-status.js';
import type { Resource } from '../api/resources/meta.js';
import { gatewayServerPorts } from './gateway.js';
import type { StoredResource } from './control-plane-client.js';

/** `token` is the control plane's API token: the console URL carries it once, to log the browser in. */
export function renderSummary(status: MeshStatus, host: string, gatewayPort: number, resources: readonly Resource[], token: string): string {
  const all = [...status.gateways, ...status.workloads].flatMap((w) => w.replicas.map((r) => ({ workload: `${w.namespace}/${w.name}`, replica: r })));
  const notReady = all.filter(({ replica }) => !replica.ready);
  const lines = [''];
  if (notReady.length === 0) lines.push('✔ the mesh is up');
  else lines.push(`⚠ the mesh is up, but ${notReady.length} of ${all.length} replicas ${notReady.length === 1 ? 'is' : 'are'} not ready (retrying; the rest serves)`);
  lines.push('');
  const rows = all.map(({ workload, replica: r }) => [workload, r.id, r.ready ? 'ready' : 'not ready', r.app ?? '-', r.proxy.inbound ?? '-', r.proxy.outbound ?? '-', r.proxy.admin, r.proxy.metrics ?? '-']);
  const header = ['WORKLOAD', 'REPLICA', 'STATUS', 'APP', 'SIDECAR IN', 'SIDECAR OUT', 'ADMIN', 'METRICS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) lines.push('  ' + row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  if (notReady.length) {
    lines.push('', 'Not ready:');
    for (const { replica } of notReady) lines.push(`  ${replica.id}: ${replica.reason ?? 'starting'}`);
  }
  lines.push('');
  const gatewayHost = host === '127.0.0.1' ? 'localhost' : host;
  const paths = exposedPaths(resources);
  lines.push('Open:');
  for (const p of paths.length ? paths : ['/']) lines.push(`  http://${gatewayHost}:${gatewayPort}${p}`);
  const servers = status.gateways[0]?.replicas[0]?.proxy.servers ?? {};
  const others = gatewayServerPorts(resources).filter((port) => servers[String(port)] && servers[String(port)] !== `${host}:${gatewayPort}`);
  if (others.length) lines.push(`Other gateway ports: ${others.map((port) => `${port} -> ${servers[String(port)]}`).join(', ')}`);
  lines.push(`Control plane API: http://${status.controlPlane.api}   metrics: http://${status.controlPlane.monitoring}/metrics`);
  if (status.controlPlane.console) lines.push(`Console: http://${status.controlPlane.console.replace(/^127\.0\.0\.1:/, 'localhost:')}/?token=${token}`);
  lines.push('Try: sinew status · sinew apply -f <file> · sinew exec <workload> -- curl http://<service>:<port>/ · Ctrl-C or sinew down to stop');
  lines.push('');
  return lines.join('\n');
}

/** Exact paths that gateway-bound VirtualServices expose (for the URLs to print). */
function exposedPaths(resources: readonly Resource[]): string[] {
  const paths: string[] = [];
  for (const r of resources) {
    if (r.kind !== 'VirtualService') continue;
    const spec = r.spec as { gateways?: string[]; http?: { match?: { uri?: { exact?: string } }[] }[] };
    if (!spec.gateways?.some((g) => g !== 'mesh')) continue;
    for (const rule of spec.http ?? []) for (const m of rule.match ?? []) if (m.uri?.exact && !/log(in|out)/.test(m.uri.exact)) paths.push(m.uri.exact);
  }
  return [...new Set(paths)];
}

/**
 * The line that says which resources in force did not come from these manifests: config
 * applied during an earlier run survives `sinew down` (the control plane keeps it in the
 * state directory), and a start that did not say so looked like a clean one.
 */
export function leftoverConfigLine(inForce: readonly StoredResource[], manifests: readonly Resource[]): string | undefined {
  const key = (kind: string, namespace: string | undefined, name: string) => `${kind}/${namespace ?? ''}/${name}`;
  const fromManifests = new Set(manifests.map((r) => key(r.kind, r.metadata.namespace, r.metadata.name)));
  const extra = inForce.filter((r) => !fromManifests.has(key(r.kind, r.metadata.namespace, r.metadata.name)));
  if (extra.length === 0) return undefined;
  const named = extra.slice(0, 4).map((r) => `${r.kind} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`);
  const more = extra.length > named.length ? `, and ${extra.length - named.length} more` : '';
  const count = extra.length === 1 ? '1 resource from the last run is' : `${extra.length} resources from the last run are`;
  return `${count} still in force (${named.join(', ')}${more}); "sinew up --fresh" starts clean`;
}
