/**
 * A synthetic mesh for the console benchmark: `services` Services over `namespaces`
 * namespaces, each with one to three versions (a Workload each, one replica), an ingress
 * gateway calling the first services, and every service calling the next two, as scraped
 * samples in a SampleWindow (one target per replica, a scrape every 5 s over `minutes`),
 * with a VirtualService and a DestinationRule for every fifth service. Seeded, so every run
 * builds the same mesh.
 */
import type { RegistryService } from '../src/api/registry-snapshot.js';
import type { Resource } from '../src/api/resources/meta.js';
import { SeededRandom, randomInt } from '../src/core/random.js';
import type { Inventory, InventoryWorkload } from '../src/controlplane/console/inventory.js';
import type { SampleWindow, ScrapedSeries } from '../src/controlplane/console/sample-window.js';
import { REQUEST_DURATION_BUCKETS } from '../src/telemetry/metrics.js';

export interface SyntheticMesh {
  inventory: Inventory;
  /** Fills `window` with `minutes` of scrapes ending at `now`. */
  fill(window: SampleWindow, now: number): void;
}

export function syntheticMesh(services: number, namespaces = 10, minutes = 5, seed = 42): SyntheticMesh {
  const random = new SeededRandom(seed);
  const registry: RegistryService[] = [];
  const workloads: InventoryWorkload[] = [];
  const resources: Resource[] = [];
  const versionsOf: string[][] = [];
  for (let i = 0; i < services; i++) {
    const ns = `ns-${i % namespaces}`;
    const name = `svc-${i}`;
    const versions = ['v1', 'v2', 'v3'].slice(0, 1 + randomInt(random, 3));
    versionsOf.push(versions);
    const endpoints = versions.map((v) => ({ address: '127.0.0.1', port: 10000 + i, labels: { app: name, version: v }, health: 'HEALTHY' as const, workload: { name: `${name}-${v}`, namespace: ns } }));
    registry.push({ hostname: `${name}.${ns}.svc.cluster.local`, namespace: ns, name, source: 'Service', ports: [{ port: 9080, protocol: 'HTTP', name: 'http' }], resolution: 'EDS', location: 'MESH_INTERNAL', labels: { app: name }, endpoints: { '9080': endpoints } });
    for (const v of versions) workloads.push({ name: `${name}-${v}`, namespace: ns, labels: { app: name, version: v }, kind: 'workload', replicas: [{ id: `${name}-${v}-0`, ready: true, sync: 'SYNCED' }] });
    if (i % 5 === 0) {
      const meta = { name, namespace: ns };
      resources.push({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: meta, spec: { hosts: [name], http: [{ route: versions.map((v) => ({ destination: { host: name, subset: v }, weight: Math.floor(100 / versions.length) + (v === 'v1' ? 100 % versions.length : 0) })), timeout: '2s' }] } } as Resource);
      resources.push({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: meta, spec: { host: name, subsets: versions.map((v) => ({ name: v, labels: { version: v } })), trafficPolicy: { outlierDetection: { consecutive5xxErrors: 5 } } } } as Resource);
    }
  }
  workloads.push({ name: 'istio-ingressgateway', namespace: 'istio-system', labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' }, kind: 'gateway', replicas: [{ id: 'istio-ingressgateway', ready: true, sync: 'SYNCED' }] });

  // Calls: the gateway -> the first `namespaces` services; service i (every version) -> i+1, i+2.
  interface Call { from: { workload: string; ns: string; app: string; version: string }; to: number; rps: number }
  const calls: Call[] = [];
  for (let i = 0; i < Math.min(namespaces, services); i++) calls.push({ from: { workload: 'istio-ingressgateway', ns: 'istio-system', app: 'istio-ingressgateway', version: 'latest' }, to: i, rps: 20 });
  for (let i = 0; i < services; i++) {
    for (const v of versionsOf[i]) for (const to of [i + 1, i + 2]) if (to < services) calls.push({ from: { workload: `svc-${i}-${v}`, ns: `ns-${i % namespaces}`, app: `svc-${i}`, version: v }, to, rps: 1 + randomInt(random, 10) });
  }

  const fill = (window: SampleWindow, now: number) => {
    const scrapes = (minutes * 60) / 5;
    const start = now - scrapes * 5000;
    // Per source workload (one proxy): its outbound series, as reporter=source.
    const byProxy = new Map<string, Call[]>();
    for (const c of calls) byProxy.set(c.from.workload, [...(byProxy.get(c.from.workload) ?? []), c]);
    for (let k = 0; k <= scrapes; k++) {
      const at = start + k * 5000;
      const elapsed = k * 5;
      for (const [proxy, list] of byProxy) {
        const scraped: ScrapedSeries[] = [];
        for (const c of list) {
          const dstNs = `ns-${c.to % namespaces}`;
          const versions = versionsOf[c.to];
          for (const [vi, v] of versions.entries()) {
            const share = 1 / versions.length;
            const labels = (code: string): Record<string, string> => ({
              reporter: 'source',
              source_workload: c.from.workload,
              source_workload_namespace: c.from.ns,
              source_app: c.from.app,
              source_version: c.from.version,
              source_canonical_service: c.from.app,
              destination_workload: `svc-${c.to}-${v}`,
              destination_workload_namespace: dstNs,
              destination_app: `svc-${c.to}`,
              destination_version: v,
              destination_service: `svc-${c.to}.${dstNs}.svc.cluster.local`,
              destination_service_name: `svc-${c.to}`,
              destination_service_namespace: dstNs,
              destination_canonical_service: `svc-${c.to}`,
              request_protocol: 'http',
              response_code: code,
              grpc_response_status: '',
              response_flags: '-',
              connection_security_policy: 'unknown',
            });
            const ok = Math.round(c.rps * share * elapsed);
            const failed = Math.round(c.rps * share * elapsed * (vi === 2 ? 0.05 : 0.001));
            scraped.push({ family: 'requests', labels: labels('200'), value: [ok] });
            scraped.push({ family: 'requests', labels: labels('503'), value: [failed] });
            const buckets = REQUEST_DURATION_BUCKETS.map((b) => Math.round(ok * Math.min(1, b / (20 + vi * 30))));
            scraped.push({ family: 'duration', labels: labels('200'), bounds: REQUEST_DURATION_BUCKETS, value: [ok, ...buckets] });
          }
        }
        window.record(`sidecar~${proxy}`, at, scraped);
      }
    }
  };
  return { inventory: { services: registry, workloads, resources, configRevision: 1 }, fill };
}
