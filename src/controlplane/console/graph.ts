/**
 * The traffic graph, built the way Kiali builds it from Prometheus, but from the control
 * plane's own window of scraped samples (./sample-window.ts):
 *
 * - Requests are counted once: as the calling proxy reports them (`reporter="source"`), and
 *   as the called proxy reports them only when the caller had no proxy
 *   (`reporter="destination", source_workload="unknown"`), which Kiali draws from an
 *   "unknown" node.
 * - App, versioned-app and workload graphs put a service node between a caller and the
 *   workloads behind the service (Kiali's "inject service nodes", its default), so a weighted
 *   split shows as the service's outgoing edges. The service graph has service nodes only;
 *   a caller is drawn as the service of its canonical name when there is one.
 * - An edge carries the window's request rate, error percent (5xx, or no response at all),
 *   latency percentiles from `istio_request_duration_milliseconds` and its share of the
 *   caller's traffic of that protocol; TCP edges carry bytes per second
 *   (`istio_tcp_sent_bytes_total` + `istio_tcp_received_bytes_total`).
 * - Only what carried traffic in the window is drawn.
 */
import type { Graph, GraphEdge, GraphNode, GraphNodeKind, GraphType, Health } from '../../api/console.js';
import { ConfigIndex } from './config-index.js';
import { appOf, healthOf, versionOf, type Inventory } from './inventory.js';
import { histogramQuantile, increase, type SampleWindow, type Series } from './sample-window.js';

const UNKNOWN = 'unknown';

export interface GraphOptions {
  type: GraphType;
  /** Seconds. */
  window: number;
  now: number;
  /** Only nodes of these namespaces and their direct peers; all when absent. */
  namespaces?: readonly string[];
  memo?: GraphMemo;
}

interface EdgeAccumulator {
  source: string;
  target: string;
  protocol: 'http' | 'grpc' | 'tcp';
  requests: number;
  errors: number;
  clientErrors: number;
  bytes: number;
  /** By response code (a Map: codes as object keys are array indexes, and 503 would size an array). */
  responses: Map<string, number>;
  bounds?: readonly number[];
  /** [count, cumulative buckets...] summed over the window. */
  durations?: number[];
}

/** Whether a series counts toward the graph (see the module comment). */
export function counted(labels: Readonly<Record<string, string>>): boolean {
  return labels.reporter === 'source' || (labels.reporter === 'destination' && (labels.source_workload ?? UNKNOWN) === UNKNOWN);
}

/** Whether a request failed: a 5xx, or no response code at all (the proxy gave up). */
export function isError(labels: Readonly<Record<string, string>>): boolean {
  const code = Number(labels.response_code);
  if (!(code > 0) || code >= 500) return true;
  return labels.request_protocol === 'grpc' && labels.grpc_response_status !== undefined && labels.grpc_response_status !== '0' && labels.grpc_response_status !== '';
}

/** Builds the graph of one type over one window. */
export function buildGraph(window: SampleWindow, inventory: Inventory, options: GraphOptions): Graph {
  const builder = new GraphBuilder(inventory, options.type, options.memo ?? new GraphMemo());
  const from = options.now - options.window * 1000;
  let seen = 0;
  for (const family of ['requests', 'duration', 'tcpSent', 'tcpReceived'] as const) {
    for (const s of window.series(family)) {
      seen++;
      if (!counted(s.labels)) continue;
      const inc = increase(s, from, options.now);
      if (!inc || !(inc[0] > 0)) continue;
      builder.add(s, inc);
    }
  }
  builder.forgetGoneSeries(seen);
  return builder.finish(options);
}

interface Route {
  hops: { id: string; source: string; target: string }[];
  protocol: EdgeAccumulator['protocol'];
  error: boolean;
  clientError: boolean;
  code: string;
}

/**
 * What one graph build can reuse for the next: each series' route and each node's template,
 * per context. The console server keeps one; without it every build starts afresh.
 */
export class GraphMemo {
  /** By context (graph type, gateways, services, config revision); the oldest go past 16. */
  readonly contexts = new Map<string, GraphContext>();
}

interface GraphContext {
  templates: Map<string, GraphNode>;
  /** A Map, not a WeakMap (ephemerons slowed every collection); pruned after a build (see buildGraph). */
  routes: Map<Series, Route>;
}

class GraphBuilder {
  private readonly nodes = new Map<string, GraphNode>();
  private readonly edges = new Map<string, EdgeAccumulator>();
  private readonly gateways = new Set<string>();
  private readonly serviceEntryHosts = new Set<string>();
  private readonly serviceNames = new Set<string>();
  private readonly config: ConfigIndex;
  /**
   * What decides a series' nodes besides its labels: the graph type, the gateways, the
   * services and the config (badges). Series routes and node templates are reused while it
   * stays the same, so a graph request does little more than add up increases.
   */
  private readonly templates: Map<string, GraphNode>;
  private readonly routes: Map<Series, Route>;

  constructor(private readonly inventory: Inventory, private readonly type: GraphType, memo: GraphMemo) {
    for (const w of inventory.workloads) {
      if (w.kind === 'gateway') this.gateways.add(`${w.namespace}/${w.name}`);
    }
    for (const s of inventory.services) {
      if (s.source === 'ServiceEntry') this.serviceEntryHosts.add(s.hostname);
      else this.serviceNames.add(`${s.namespace}/${s.name}`);
    }
    this.config = new ConfigIndex(inventory.resources);
    const context = `${type}|${inventory.configRevision}|${[...this.gateways].join(',')}|${[...this.serviceNames].join(',')}|${[...this.serviceEntryHosts].join(',')}`;
    let cached = memo.contexts.get(context);
    if (!cached) {
      cached = { templates: new Map(), routes: new Map() };
      memo.contexts.set(context, cached);
      // Bounded: one context per graph type is what a steady mesh needs.
      if (memo.contexts.size > 16) memo.contexts.delete(memo.contexts.keys().next().value!);
    }
    this.templates = cached.templates;
    this.routes = cached.routes;
  }

  add(s: Series, inc: number[]): void {
    let route = this.routes.get(s);
    if (!route) {
      route = this.route(s);
      this.routes.set(s, route);
    }
    for (const hop of route.hops) {
      let acc = this.edges.get(hop.id);
      if (!acc) {
        this.ensureNode(hop.source);
        this.ensureNode(hop.target);
        this.edges.set(hop.id, (acc = { source: hop.source, target: hop.target, protocol: route.protocol, requests: 0, errors: 0, clientErrors: 0, bytes: 0, responses: new Map() }));
      }
      if (s.family === 'requests') {
        acc.requests += inc[0];
        if (route.error) acc.errors += inc[0];
        else if (route.clientError) acc.clientErrors += inc[0];
        acc.responses.set(route.code, (acc.responses.get(route.code) ?? 0) + inc[0]);
      } else if (s.family === 'duration' && s.bounds) {
        if (!acc.durations || acc.bounds?.length !== s.bounds.length) {
          acc.bounds = s.bounds;
          acc.durations = new Array<number>(inc.length).fill(0);
        }
        for (let i = 0; i < inc.length; i++) acc.durations[i] += inc[i];
      } else acc.bytes += inc[0];
    }
  }

  /** Which edges a series feeds in this graph, from its labels (cached per series and context). */
  private route(s: Series): Route {
    const l = s.labels;
    const protocol: EdgeAccumulator['protocol'] = s.family === 'tcpSent' || s.family === 'tcpReceived' ? 'tcp' : l.request_protocol === 'grpc' ? 'grpc' : 'http';
    const source = this.sourceNode(l);
    const service = this.serviceNode(l);
    const dest = this.destinationNode(l);
    const pairs: [string, string][] = [];
    if (this.type === 'service') {
      if (service) pairs.push([source, service]);
      else if (dest) pairs.push([source, dest]);
    } else {
      if (service) {
        pairs.push([source, service]);
        if (dest) pairs.push([service, dest]);
      } else if (dest) pairs.push([source, dest]);
    }
    const hops = pairs.filter(([a, b]) => a !== b).map(([a, b]) => ({ id: `${a}>${b}${protocol === 'tcp' ? '#tcp' : ''}`, source: a, target: b }));
    const code = l.response_code ?? '0';
    return { hops, protocol, error: isError(l), clientError: code.startsWith('4'), code };
  }

  /** Series leave the window (their proxy or peer went away): start afresh once many routes are stale. */
  forgetGoneSeries(seriesInWindow: number): void {
    if (this.routes.size > 2 * seriesInWindow + 1000) this.routes.clear();
  }

  private ensureNode(id: string): void {
    if (this.nodes.has(id)) return;
    const template = this.templates.get(id)!;
    this.nodes.set(id, { ...template, badges: template.badges });
  }

  /** Registers the node `id` (made once per context) and returns its id. */
  private node(id: string, make: () => Omit<GraphNode, 'id' | 'health' | 'inboundRate' | 'errorPercent' | 'badges'> & { badges?: GraphNode['badges'] }): string {
    if (!this.templates.has(id)) this.templates.set(id, { badges: {}, ...make(), id, health: 'na', inboundRate: 0, errorPercent: 0 } as GraphNode);
    this.ensureNode(id);
    return id;
  }

  private sourceNode(l: Readonly<Record<string, string>>): string {
    const workload = l.source_workload ?? UNKNOWN;
    const ns = l.source_workload_namespace ?? UNKNOWN;
    if (workload === UNKNOWN) return this.node('unknown', () => ({ kind: 'unknown', namespace: '', label: 'unknown' }));
    const app = l.source_canonical_service && l.source_canonical_service !== UNKNOWN ? l.source_canonical_service : l.source_app && l.source_app !== UNKNOWN ? l.source_app : workload;
    const version = l.source_version && l.source_version !== UNKNOWN ? l.source_version : undefined;
    return this.workloadSideNode(ns, workload, app, version, true);
  }

  private destinationNode(l: Readonly<Record<string, string>>): string | undefined {
    const workload = l.destination_workload ?? UNKNOWN;
    if (workload === UNKNOWN) return undefined;
    const ns = l.destination_workload_namespace ?? UNKNOWN;
    const app = l.destination_canonical_service && l.destination_canonical_service !== UNKNOWN ? l.destination_canonical_service : l.destination_app && l.destination_app !== UNKNOWN ? l.destination_app : workload;
    const version = l.destination_version && l.destination_version !== UNKNOWN ? l.destination_version : undefined;
    return this.workloadSideNode(ns, workload, app, version, false);
  }

  /** The node a workload appears as in this graph type. */
  private workloadSideNode(ns: string, workload: string, app: string, version: string | undefined, asSource: boolean): string {
    if (this.gateways.has(`${ns}/${workload}`)) {
      return this.node(`gw:${ns}/${workload}`, () => ({ kind: 'gateway', namespace: ns, label: workload, workload, app }));
    }
    switch (this.type) {
      case 'workload':
        return this.node(`wl:${ns}/${workload}`, () => ({ kind: 'workload', namespace: ns, label: workload, workload, app, version }));
      case 'app':
        return this.node(`app:${ns}/${app}`, () => ({ kind: 'app', namespace: ns, label: app, app }));
      case 'versionedApp': {
        const v = version ?? 'latest';
        return this.node(`vapp:${ns}/${app}/${v}`, () => ({ kind: 'versionedApp', namespace: ns, label: `${app} ${v}`, app, version: v, workload }));
      }
      case 'service':
        // A caller is drawn as the service of its name when one exists, else as its workload.
        if (asSource && this.serviceNames.has(`${ns}/${app}`)) return this.serviceNodeFor(ns, app, `${app}.${ns}.svc.cluster.local`);
        return this.node(`wl:${ns}/${workload}`, () => ({ kind: 'workload', namespace: ns, label: workload, workload, app, version }));
    }
  }

  private serviceNode(l: Readonly<Record<string, string>>): string | undefined {
    const host = l.destination_service ?? UNKNOWN;
    const name = l.destination_service_name ?? UNKNOWN;
    if (host === UNKNOWN && name === UNKNOWN) return undefined;
    if (name === 'PassthroughCluster' || name === 'BlackHoleCluster') {
      return this.node(`svc:${name}`, () => ({ kind: 'unknown', namespace: '', label: name, service: name }));
    }
    const ns = l.destination_service_namespace && l.destination_service_namespace !== UNKNOWN ? l.destination_service_namespace : '';
    return this.serviceNodeFor(ns, name === UNKNOWN ? host : name, host);
  }

  private serviceNodeFor(ns: string, name: string, host: string): string {
    const external = this.serviceEntryHosts.has(host);
    return this.node(`svc:${ns}/${name}`, () => ({
      kind: (external ? 'serviceEntry' : 'service') as GraphNodeKind,
      namespace: ns,
      label: name,
      service: name,
      badges: this.config.badges(host),
    }));
  }

  finish(options: GraphOptions): Graph {
    const seconds = options.window;
    const edges: GraphEdge[] = [];
    const outTotals = new Map<string, number>();
    for (const e of this.edges.values()) {
      const key = `${e.source}|${e.protocol === 'tcp' ? 'tcp' : 'http'}`;
      outTotals.set(key, (outTotals.get(key) ?? 0) + (e.protocol === 'tcp' ? e.bytes : e.requests));
    }
    const inbound = new Map<string, { requests: number; errors: number; clientErrors: number; bytes: number }>();
    for (const [id, e] of this.edges) {
      const amount = e.protocol === 'tcp' ? e.bytes : e.requests;
      if (!(amount > 0)) continue;
      const total = outTotals.get(`${e.source}|${e.protocol === 'tcp' ? 'tcp' : 'http'}`) ?? amount;
      const edge: GraphEdge = {
        id,
        source: e.source,
        target: e.target,
        protocol: e.protocol,
        rate: round(amount / seconds, 4),
        errorPercent: e.protocol === 'tcp' || e.requests === 0 ? 0 : round((100 * e.errors) / e.requests, 2),
        sharePercent: round((100 * amount) / total, 1),
      };
      if (e.protocol !== 'tcp') {
        edge.responses = {};
        for (const [code, n] of e.responses) edge.responses[code] = Math.round(n);
      }
      if (e.durations && e.bounds) {
        const [count, ...cumulative] = e.durations;
        for (const [q, field] of [[0.5, 'p50'], [0.95, 'p95'], [0.99, 'p99']] as const) {
          const v = histogramQuantile(q, e.bounds, cumulative, count);
          if (v !== undefined) edge[field] = round(v, 2);
        }
      }
      edges.push(edge);
      const into = inbound.get(e.target) ?? { requests: 0, errors: 0, clientErrors: 0, bytes: 0 };
      into.requests += e.requests;
      into.errors += e.errors;
      into.clientErrors += e.clientErrors;
      into.bytes += e.bytes;
      inbound.set(e.target, into);
    }
    const touched = new Set<string>();
    for (const e of edges) {
      touched.add(e.source);
      touched.add(e.target);
    }
    const nodes = [...this.nodes.values()].filter((n) => touched.has(n.id));
    const readiness = this.readiness();
    for (const n of nodes) {
      const into = inbound.get(n.id);
      n.inboundRate = into ? round((into.requests || into.bytes) / seconds, 4) : 0;
      n.errorPercent = into && into.requests > 0 ? round((100 * into.errors) / into.requests, 2) : 0;
      n.health = this.healthOf(n, into, readiness);
    }
    let keptNodes = nodes;
    let keptEdges = edges;
    if (options.namespaces?.length) {
      const wanted = new Set(options.namespaces);
      const inNs = new Set(nodes.filter((n) => wanted.has(n.namespace)).map((n) => n.id));
      keptEdges = edges.filter((e) => inNs.has(e.source) || inNs.has(e.target));
      const touched = new Set(keptEdges.flatMap((e) => [e.source, e.target]));
      keptNodes = nodes.filter((n) => touched.has(n.id));
    }
    keptNodes.sort((a, b) => (a.id < b.id ? -1 : 1));
    keptEdges.sort((a, b) => (a.id < b.id ? -1 : 1));
    return { type: options.type, window: seconds, at: options.now, nodes: keptNodes, edges: keptEdges, scrape: { targets: 0, failing: 0, intervalMs: 0 } };
  }

  private healthOf(n: GraphNode, into: { requests: number; errors: number; clientErrors: number } | undefined, readiness: Map<string, { ready: number; total: number }>): Health {
    const traffic = into && into.requests > 0 ? { requests: into.requests, errorPercent: (100 * into.errors) / into.requests, clientErrorPercent: (100 * into.clientErrors) / into.requests } : undefined;
    return healthOf(traffic, readiness.get(readinessKey(n)));
  }

  /** Ready and total replicas by the workload, app and versioned app they belong to. */
  private readiness(): Map<string, { ready: number; total: number }> {
    const out = new Map<string, { ready: number; total: number }>();
    const add = (key: string, ready: number, total: number) => {
      const r = out.get(key) ?? { ready: 0, total: 0 };
      r.ready += ready;
      r.total += total;
      out.set(key, r);
    };
    for (const w of this.inventory.workloads) {
      const ready = w.replicas.filter((r) => r.ready).length;
      const app = appOf(w.labels, w.name);
      add(`wl|${w.namespace}|${w.name}`, ready, w.replicas.length);
      add(`app|${w.namespace}|${app}`, ready, w.replicas.length);
      add(`vapp|${w.namespace}|${app}|${versionOf(w.labels)}`, ready, w.replicas.length);
    }
    return out;
  }
}

/** The readiness() key of the workloads a node stands for; services have none. */
function readinessKey(n: GraphNode): string {
  switch (n.kind) {
    case 'workload':
    case 'gateway':
      return `wl|${n.namespace}|${n.workload}`;
    case 'app':
      return `app|${n.namespace}|${n.app}`;
    case 'versionedApp':
      return `vapp|${n.namespace}|${n.app}|${n.version}`;
    default:
      return '';
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
