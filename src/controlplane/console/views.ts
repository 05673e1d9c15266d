/**
 * The overview (one card per namespace) and the detail pages (a service, workload or app:
 * inbound and outbound charts, the config that applies, its proxies), computed from the
 * sample window and the inventory. The charts are the panels of Istio's Service and Workload
 * dashboards: request rate, error rate (non-5xx success rate's complement) and p50/p95/p99
 * latency, plus TCP bytes received and sent.
 */
import type { ConfigItem, Detail, DetailKind, NamespaceOverview, Overview, TrafficCharts, ProxyStatusRow } from '../../api/console.js';
import { ACTION_LABEL } from '../../api/console.js';
import type { Diagnostic } from '../../api/diagnostics.js';
import type { Resource } from '../../api/resources/meta.js';
import { manifestOf } from '../../api/resources/index.js';
import { stringify } from 'yaml';
import { analyze } from '../../config/analyze/index.js';
import { buildGraph, counted, isError, type GraphMemo } from './graph.js';
import { ConfigIndex } from './config-index.js';
import { appOf, healthOf, worst, type Inventory } from './inventory.js';
import { histogramQuantile, increase, type SampleWindow, type Series } from './sample-window.js';

// === overview ===

export function buildOverview(window: SampleWindow, inventory: Inventory, options: { window: number; now: number; memo?: GraphMemo }): Overview {
  const wl = buildGraph(window, inventory, { type: 'workload', window: options.window, now: options.now, memo: options.memo });
  const svc = buildGraph(window, inventory, { type: 'service', window: options.window, now: options.now, memo: options.memo });
  const findings = analyze(inventory.resources);
  const namespaces = new Map<string, NamespaceOverview>();
  const nsOf = (name: string) => {
    let ns = namespaces.get(name);
    if (!ns) namespaces.set(name, (ns = { name, health: 'na', workloads: [], services: [], validations: { errors: 0, warnings: 0 }, proxies: { synced: 0, total: 0 } }));
    return ns;
  };
  for (const w of inventory.workloads) {
    const ns = nsOf(w.namespace);
    const node = wl.nodes.find((n) => (n.kind === 'workload' || n.kind === 'gateway') && n.namespace === w.namespace && n.workload === w.name);
    const ready = w.replicas.filter((r) => r.ready).length;
    // The graph judged its traffic (and readiness); with no traffic, readiness alone.
    const health = worst(node?.health ?? 'na', healthOf(undefined, { ready, total: w.replicas.length }));
    ns.workloads.push({ name: w.name, ready, replicas: w.replicas.length, health, errorPercent: node?.errorPercent ?? 0, inboundRate: node?.inboundRate ?? 0 });
    ns.proxies.total += w.replicas.length;
    ns.proxies.synced += w.replicas.filter((r) => r.sync === 'SYNCED').length;
    ns.health = worst(ns.health, health);
  }
  for (const s of inventory.services) {
    if (s.source !== 'Service') continue;
    const ns = nsOf(s.namespace);
    const node = svc.nodes.find((n) => n.kind === 'service' && n.namespace === s.namespace && n.service === s.name);
    const health = node?.health ?? 'na';
    ns.services.push({ name: s.name, health, errorPercent: node?.errorPercent ?? 0, inboundRate: node?.inboundRate ?? 0 });
    ns.health = worst(ns.health, health);
  }
  for (const d of findings) {
    const ns = nsOf(d.resource?.namespace || 'default');
    if (d.level === 'error') ns.validations.errors++;
    else if (d.level === 'warning') ns.validations.warnings++;
  }
  for (const ns of namespaces.values()) {
    ns.workloads.sort((a, b) => (a.name < b.name ? -1 : 1));
    ns.services.sort((a, b) => (a.name < b.name ? -1 : 1));
  }
  return {
    at: options.now,
    window: options.window,
    namespaces: [...namespaces.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    configRevision: inventory.configRevision,
    scrape: { targets: 0, failing: 0, intervalMs: 0 },
  };
}

// === config items ===

export function configItem(r: Resource, findings: readonly Diagnostic[]): ConfigItem {
  const ns = r.metadata.namespace ?? '';
  return {
    kind: r.kind,
    namespace: ns,
    name: r.metadata.name,
    apiVersion: r.apiVersion,
    // Secrets' values never leave the control plane (manifestOf's redaction).
    yaml: stringify(manifestOf(r, { redact: true })),
    findings: findings.filter((d) => d.resource?.kind === r.kind && d.resource.name === r.metadata.name && (d.resource.namespace ?? '') === ns),
    action: r.metadata.labels?.[ACTION_LABEL],
  };
}

// === detail pages ===

type Filter = (l: Readonly<Record<string, string>>) => boolean;

export interface DetailOptions {
  kind: DetailKind;
  namespace: string;
  name: string;
  window: number;
  now: number;
  /** The scrape interval: no chart step is finer than it. */
  stepFloorMs: number;
}

/** A detail page, or undefined when nothing of that kind and name is known. */
export function buildDetail(window: SampleWindow, inventory: Inventory, o: DetailOptions): Detail | undefined {
  const { kind, namespace: ns, name } = o;
  const workloads = inventory.workloads.filter((w) => w.namespace === ns && (kind === 'workload' ? w.name === name : kind === 'app' ? appOf(w.labels, w.name) === name : false));
  const service = inventory.services.find((s) => s.source === 'Service' && s.namespace === ns && s.name === name);
  let behind = workloads;
  let hosts: string[] = [];
  if (kind === 'service') {
    if (!service) return undefined;
    hosts = [service.hostname];
    const names = new Set(Object.values(service.endpoints).flatMap((eps) => eps.map((e) => e.workload && `${e.workload.namespace}/${e.workload.name}`)));
    behind = inventory.workloads.filter((w) => names.has(`${w.namespace}/${w.name}`));
  } else {
    if (workloads.length === 0) return undefined;
    const names = new Set(workloads.map((w) => `${w.namespace}/${w.name}`));
    hosts = inventory.services.filter((s) => Object.values(s.endpoints).some((eps) => eps.some((e) => e.workload && names.has(`${e.workload.namespace}/${e.workload.name}`)))).map((s) => s.hostname);
  }
  const behindNames = new Set(behind.map((w) => `${w.namespace}/${w.name}`));
  const inbound: Filter =
    kind === 'service'
      ? (l) => l.destination_service_name === name && l.destination_service_namespace === ns
      : kind === 'workload'
        ? (l) => l.destination_workload === name && l.destination_workload_namespace === ns
        : (l) => l.destination_canonical_service === name && l.destination_workload_namespace === ns;
  const outbound: Filter = (l) => l.reporter === 'source' && behindNames.has(`${l.source_workload_namespace}/${l.source_workload}`);

  const index = new ConfigIndex(inventory.resources);
  const findings = analyze(inventory.resources);
  const applying = new Set<Resource>(hosts.flatMap((h) => index.forHost(h)));
  // Policies selecting the workloads (AuthorizationPolicy, PeerAuthentication, Sidecar, Telemetry, ...).
  for (const r of inventory.resources) {
    const selector = (r.spec as { selector?: { matchLabels?: Record<string, string> }; workloadSelector?: { labels?: Record<string, string> } } | undefined);
    const labels = selector?.selector?.matchLabels ?? selector?.workloadSelector?.labels;
    if (!labels || r.metadata.namespace !== ns) continue;
    if (behind.some((w) => Object.entries(labels).every(([k, v]) => w.labels[k] === v))) applying.add(r);
  }

  const proxies: ProxyStatusRow[] = behind.flatMap((w) => w.replicas.map((r) => ({ id: r.id, workload: w.name, ready: r.ready, sync: r.sync, configVersion: r.configVersion })));
  const inCharts = charts(window, inbound, o);
  // Health over the whole window, as the graph and overview judge it.
  let requests = 0;
  let errors = 0;
  let clientErrors = 0;
  for (const s of window.series('requests')) {
    if (!counted(s.labels) || !inbound(s.labels)) continue;
    const inc = increase(s, o.now - o.window * 1000, o.now)?.[0] ?? 0;
    requests += inc;
    if (isError(s.labels)) errors += inc;
    else if (s.labels.response_code?.startsWith('4')) clientErrors += inc;
  }
  const ready = proxies.filter((p) => p.ready).length;
  const traffic = requests > 0 ? { requests, errorPercent: (100 * errors) / requests, clientErrorPercent: (100 * clientErrors) / requests } : undefined;
  const health = healthOf(traffic, kind === 'service' ? undefined : { ready, total: proxies.length });
  const related =
    kind === 'service'
      ? behind.map((w) => ({ kind: 'workload' as const, namespace: w.namespace, name: w.name }))
      : inventory.services.filter((s) => hosts.includes(s.hostname) && s.source === 'Service').map((s) => ({ kind: 'service' as const, namespace: s.namespace, name: s.name }));
  const apps = new Set((kind === 'service' ? behind : workloads).map((w) => appOf(w.labels, w.name)));
  return {
    kind,
    namespace: ns,
    name,
    window: o.window,
    health,
    versions: [...new Set(behind.map((w) => w.labels.version).filter((v): v is string => !!v))].sort(),
    inbound: inCharts,
    outbound: charts(window, outbound, o),
    related,
    traceServices: [...apps].map((a) => `${a}.${ns}`),
    config: [...applying].map((r) => configItem(r, findings)),
    proxies,
  };
}

/** The charts of the counted series that pass `filter`, one point per step over the window. */
function charts(window: SampleWindow, filter: Filter, o: DetailOptions): TrafficCharts {
  const stepMs = Math.max(o.stepFloorMs, Math.floor((o.window * 1000) / 60));
  const steps = Math.max(1, Math.floor((o.window * 1000) / stepMs));
  const start = o.now - steps * stepMs;
  const pick = (family: Series['family']) => [...window.series(family)].filter((s) => counted(s.labels) && filter(s.labels));
  const requests = pick('requests');
  const durations = pick('duration');
  const received = pick('tcpReceived');
  const sent = pick('tcpSent');
  const out: TrafficCharts = { requestRate: [], errorPercent: [], p50: [], p95: [], p99: [], tcpReceived: [], tcpSent: [] };
  for (let k = 1; k <= steps; k++) {
    const to = start + k * stepMs;
    const from = to - stepMs;
    let total = 0;
    let errors = 0;
    let seen = false;
    for (const s of requests) {
      const inc = increase(s, from, to);
      if (!inc) continue;
      seen = true;
      total += inc[0];
      if (isError(s.labels)) errors += inc[0];
    }
    out.requestRate.push([to, seen ? round(total / (stepMs / 1000)) : null]);
    out.errorPercent.push([to, seen && total > 0 ? round((100 * errors) / total) : seen ? 0 : null]);
    let bounds: readonly number[] | undefined;
    let sum: number[] | undefined;
    for (const s of durations) {
      const inc = increase(s, from, to);
      if (!inc || !s.bounds) continue;
      if (!sum || bounds?.length !== s.bounds.length) {
        bounds = s.bounds;
        sum = new Array<number>(inc.length).fill(0);
      }
      for (let i = 0; i < inc.length; i++) sum[i] += inc[i];
    }
    for (const [q, field] of [[0.5, 'p50'], [0.95, 'p95'], [0.99, 'p99']] as const) {
      const v = sum && bounds ? histogramQuantile(q, bounds, sum.slice(1), sum[0]) : undefined;
      out[field].push([to, v === undefined ? null : round(v)]);
    }
    const bytes = (list: Series[]): number | null => {
      let any = false;
      let b = 0;
      for (const s of list) {
        const inc = increase(s, from, to);
        if (!inc) continue;
        any = true;
        b += inc[0];
      }
      return any ? round(b / (stepMs / 1000)) : null;
    };
    out.tcpReceived.push([to, bytes(received)]);
    out.tcpSent.push([to, bytes(sent)]);
  }
  return out;
}

const round = (v: number) => Math.round(v * 1000) / 1000;
