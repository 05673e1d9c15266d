/**
 * The console's JSON API: what the control plane's console port answers under
 * `/console/api/v1/...`, read by the browser (src/console) and usable by any HTTP client with
 * the mesh's token (`Authorization: Bearer <token>`). Plain data, no behaviour.
 *
 *   GET  /console/api/v1/overview                       namespaces with health, validations, sync
 *   GET  /console/api/v1/graph?type=&window=&namespace=  the traffic graph over a window
 *   GET  /console/api/v1/detail/<service|workload|app>/<namespace>/<name>?window=
 *   GET  /console/api/v1/traces?service=&operation=&tag=k:v&minDuration=&start=&end=&limit=&edge=<source>><dest>
 *   GET  /console/api/v1/traces/<id>
 *   GET  /console/api/v1/config                          every resource in force, with findings
 *   POST /console/api/v1/validate                        YAML in, `sinew validate` + analyze findings out
 *   POST /console/api/v1/actions/preview                 an action's VirtualService/DestinationRule
 *   GET  /console/api/v1/actions                         actions in force (resources they wrote)
 *   POST /console/api/v1/actions/undo                    what undoing one writes back
 *   GET  /console/api/v1/dashboards/<mesh|service|workload>   Grafana dashboard JSON
 *
 * Writes go through the control plane's config API, mounted on the same port:
 * `POST /api/v1/apply` and `POST /api/v1/delete` (what `sinew apply` and `sinew delete` call).
 */
import type { Diagnostic } from './diagnostics.js';

/** Graph windows the console offers (Kiali's: 1 m, 5 m, 30 m), in seconds. */
export const GRAPH_WINDOWS = [60, 300, 1800] as const;

export type GraphType = 'app' | 'versionedApp' | 'service' | 'workload';
export const GRAPH_TYPES: readonly GraphType[] = ['app', 'versionedApp', 'service', 'workload'];

/** Kiali's health states: healthy, degraded, failure; `na` when nothing is known (no traffic, no replicas). */
export type Health = 'healthy' | 'degraded' | 'failure' | 'na';

export type GraphNodeKind = 'app' | 'versionedApp' | 'service' | 'workload' | 'gateway' | 'serviceEntry' | 'unknown';

/** What config shapes traffic to a node (Kiali's badges). */
export interface NodeBadges {
  /** A VirtualService routes this service. */
  virtualService?: string[];
  faultInjection?: boolean;
  timeout?: boolean;
  retries?: boolean;
  /** A DestinationRule sets a connection pool or outlier detection. */
  circuitBreaker?: boolean;
  mirror?: boolean;
  /** Traffic to the service is suspended by the console (100% abort). */
  suspended?: boolean;
}

export interface GraphNode {
  id: string;
  kind: GraphNodeKind;
  namespace: string;
  /** Display name: the service, workload or app name (`app v2` for versioned apps). */
  label: string;
  app?: string;
  version?: string;
  workload?: string;
  service?: string;
  health: Health;
  /** Inbound request rate (req/s) over the window; TCP bytes/s for TCP-only nodes. */
  inboundRate: number;
  /** Inbound error rate, percent of requests (5xx and proxy-made replies). */
  errorPercent: number;
  badges: NodeBadges;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  protocol: 'http' | 'grpc' | 'tcp';
  /** Requests per second (HTTP/gRPC) or bytes per second (TCP) over the window. */
  rate: number;
  /** Percent of requests that failed (5xx or a response flag). HTTP only. */
  errorPercent: number;
  /** Percent of the source's outbound traffic of this protocol that takes this edge. */
  sharePercent: number;
  /** Latency percentiles in milliseconds (from istio_request_duration_milliseconds); absent without data. */
  p50?: number;
  p95?: number;
  p99?: number;
  /** Response codes over the window: code -> requests. */
  responses?: Record<string, number>;
}

export interface Graph {
  type: GraphType;
  /** Window in seconds. */
  window: number;
  /** When the graph was computed (ms since epoch, the control plane's clock). */
  at: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** How many proxies were scraped, and when last. */
  scrape: ScrapeStatus;
}

export interface ScrapeStatus {
  targets: number;
  failing: number;
  lastAt?: number;
  intervalMs: number;
}

export interface NamespaceOverview {
  name: string;
  health: Health;
  workloads: { name: string; ready: number; replicas: number; health: Health; errorPercent: number; inboundRate: number }[];
  services: { name: string; health: Health; errorPercent: number; inboundRate: number }[];
  validations: { errors: number; warnings: number };
  proxies: { synced: number; total: number };
}

export interface Overview {
  at: number;
  window: number;
  namespaces: NamespaceOverview[];
  configRevision: number;
  scrape: ScrapeStatus;
}

/** One time series: `[t (ms since epoch), value]`, value null where there was no sample. */
export type Points = [number, number | null][];

export interface TrafficCharts {
  /** Requests per second. */
  requestRate: Points;
  /** Percent of requests that failed. */
  errorPercent: Points;
  p50: Points;
  p95: Points;
  p99: Points;
  /** TCP bytes per second, received and sent. */
  tcpReceived: Points;
  tcpSent: Points;
}

export type DetailKind = 'service' | 'workload' | 'app';

export interface ProxyStatusRow {
  id: string;
  workload: string;
  ready: boolean;
  sync: string;
  configVersion?: string;
}

export interface Detail {
  kind: DetailKind;
  namespace: string;
  name: string;
  window: number;
  health: Health;
  inbound: TrafficCharts;
  outbound: TrafficCharts;
  /** The versions (`version` labels) of the workloads behind it: the subsets an action can route to. */
  versions: string[];
  /** Workloads behind a service or app; services of a workload. */
  related: { kind: DetailKind; namespace: string; name: string }[];
  /** The trace-store service names that belong here (`<app>.<namespace>`). */
  traceServices: string[];
  /** Resources that apply (VirtualService, DestinationRule, ... naming the host or selecting the workload). */
  config: ConfigItem[];
  proxies: ProxyStatusRow[];
}

export interface ConfigItem {
  kind: string;
  namespace: string;
  name: string;
  apiVersion: string;
  yaml: string;
  /** analyze findings that point at this resource. */
  findings: Diagnostic[];
  /** The console action that wrote it, when one did. */
  action?: string;
}

export interface ConfigList {
  revision: number;
  items: ConfigItem[];
  /** Every analyze finding over the config in force. */
  findings: Diagnostic[];
}

export interface ValidateResult {
  /** `sinew validate`'s diagnostics for the text (file `<console>`): any error refuses the apply. */
  diagnostics: Diagnostic[];
  /** `sinew analyze`'s findings about these resources once applied over the config in force (they do not refuse an apply, as with `sinew apply`). */
  analysis: Diagnostic[];
  /** Both, formatted as `sinew validate` and `sinew analyze` print them. */
  lines: string[];
  /** No validation error. */
  valid: boolean;
}

export type ActionKind = 'weighted-routing' | 'matching-routing' | 'suspend' | 'resume' | 'fault-injection' | 'timeouts' | 'circuit-breaker';

export interface WeightedRoutingParams {
  /** subset (version) -> weight; weights must add up to 100. */
  weights: Record<string, number>;
  /** Route TCP instead of HTTP. */
  tcp?: boolean;
}

export interface MatchingRoutingParams {
  rules: { match: { headers?: Record<string, { exact?: string; prefix?: string; regex?: string }>; uri?: { exact?: string; prefix?: string; regex?: string }; method?: string }; subset: string }[];
  /** Where unmatched requests go. */
  defaultSubset: string;
}

export interface FaultInjectionParams {
  delay?: { percent: number; fixedDelay: string };
  abort?: { percent: number; httpStatus: number };
}

export interface TimeoutParams {
  timeout?: string;
  retries?: { attempts: number; perTryTimeout?: string; retryOn?: string };
}

export interface CircuitBreakerParams {
  maxConnections?: number;
  http1MaxPendingRequests?: number;
  maxRequestsPerConnection?: number;
  consecutive5xxErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
}

export interface ActionRequest {
  action: ActionKind;
  namespace: string;
  service: string;
  params?: WeightedRoutingParams | MatchingRoutingParams | FaultInjectionParams | TimeoutParams | CircuitBreakerParams | Record<string, never>;
}

/** What an action will write: the manifests as YAML (one multi-document text) and their validation. */
export interface ActionPreview {
  action: ActionKind;
  /** Documents to apply, YAML, ready for `POST /api/v1/apply`. */
  yaml: string;
  /** Resources to delete (resume of a suspension that the console created, say), YAML for `POST /api/v1/delete`. */
  deleteYaml?: string;
  /** `sinew validate` + analyze over the result. */
  validation: ValidateResult;
  /** Short human summary, e.g. "reviews: v1 70%, v3 30%". */
  summary: string;
}

/** An action whose resources are in force. */
export interface ActionRecord {
  id: string;
  action: ActionKind;
  namespace: string;
  service: string;
  at: string;
  resources: { kind: string; namespace: string; name: string }[];
}

export interface UndoPlan {
  id: string;
  /** Resources to restore as they were before the action (YAML), if any existed. */
  yaml?: string;
  /** Resources the action created, to delete (YAML). */
  deleteYaml?: string;
  summary: string;
}

/** Labels and annotations actions put on what they write (Kiali uses `kiali_wizard`). */
export const ACTION_LABEL = 'sinew.dev/console-action';
export const ACTION_ID_ANNOTATION = 'sinew.dev/console-action-id';
export const ACTION_PREVIOUS_ANNOTATION = 'sinew.dev/console-previous';

/** A span as the trace API returns it (src/telemetry/trace-store.ts keeps them): times in microseconds. */
export interface TraceSpan {
  spanId: string;
  parentSpanId?: string;
  /** `<canonical service>.<namespace>` of the proxy that reported it. */
  service: string;
  name: string;
  /** Epoch microseconds. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: Record<string, string>;
  kind?: string;
}

export interface Trace {
  traceId: string;
  spans: TraceSpan[];
}
