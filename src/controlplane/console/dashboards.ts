/**
 * Istio's standard Grafana dashboards — Mesh, Service and Workload — rebuilt panel for panel
 * (titles, queries, template variables) over the metrics Sinew's proxies serve, for users who
 * run Grafana and Prometheus. The queries use only Istio's standard metric names and labels
 * (src/telemetry/metrics.ts), as the dashboards Istio ships do; the datasource is a variable
 * (`${datasource}`), chosen on import.
 *
 * `npm run dashboards` writes them to docs/grafana/; the console serves them at
 * `/console/api/v1/dashboards/<mesh|service|workload>`.
 */

export const DASHBOARD_NAMES = ['mesh', 'service', 'workload'] as const;
export type DashboardName = (typeof DASHBOARD_NAMES)[number];

interface Target {
  expr: string;
  legendFormat?: string;
  refId?: string;
}

interface Panel {
  id?: number;
  title: string;
  type: 'timeseries' | 'stat' | 'table' | 'row';
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  fieldConfig?: unknown;
  datasource?: unknown;
  collapsed?: boolean;
  description?: string;
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

function panel(title: string, type: Panel['type'], w: number, targets: Target[], unit?: string, description?: string): Panel {
  return {
    title,
    type,
    datasource: DATASOURCE,
    targets: targets.map((t, i) => ({ ...t, refId: String.fromCharCode(65 + i) })),
    fieldConfig: { defaults: unit ? { unit } : {}, overrides: [] },
    gridPos: { h: type === 'stat' ? 4 : 8, w, x: 0, y: 0 },
    ...(description ? { description } : {}),
  };
}

const row = (title: string): Panel => ({ title, type: 'row', collapsed: false, gridPos: { h: 1, w: 24, x: 0, y: 0 } });

/** Lays panels out left to right, wrapping at Grafana's 24 columns. */
function layout(panels: Panel[]): Panel[] {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return panels.map((p, i) => {
    const pos = p.gridPos!;
    if (p.type === 'row' || x + pos.w > 24) {
      y += rowHeight;
      x = 0;
      rowHeight = 0;
    }
    const placed = { ...p, id: i + 1, gridPos: { ...pos, x, y } };
    x += pos.w;
    rowHeight = Math.max(rowHeight, pos.h);
    if (p.type === 'row') {
      y += pos.h;
      x = 0;
      rowHeight = 0;
    }
    return placed;
  });
}

function variable(name: string, label: string, query: string, includeAll = false) {
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: { query, refId: name },
    definition: query,
    refresh: 1,
    sort: 1,
    includeAll,
    multi: includeAll,
    ...(includeAll ? { allValue: '.*', current: { text: 'All', value: '$__all' } } : {}),
  };
}

const DATASOURCE_VARIABLE = { name: 'datasource', label: 'Datasource', type: 'datasource', query: 'prometheus', current: {} };

function dashboardOf(uid: string, title: string, variables: unknown[], panels: Panel[]) {
  return {
    uid,
    title,
    tags: ['istio', 'sinew'],
    editable: true,
    schemaVersion: 39,
    version: 1,
    refresh: '10s',
    time: { from: 'now-30m', to: 'now' },
    timezone: 'browser',
    templating: { list: [DATASOURCE_VARIABLE, ...variables] },
    panels: layout(panels),
  };
}

const quantiles = (q: number, selector: string, by: string) =>
  `histogram_quantile(${q}, sum(rate(istio_request_duration_milliseconds_bucket{${selector}}[1m])) by (le${by ? `, ${by}` : ''}))`;

function mesh() {
  const src = 'reporter="source"';
  return dashboardOf('sinew-istio-mesh', 'Istio Mesh Dashboard (Sinew)', [], [
    panel('Global Request Volume', 'stat', 6, [{ expr: `round(sum(rate(istio_requests_total{${src}}[1m])), 0.001)` }], 'reqps'),
    panel('Global Success Rate (non-5xx responses)', 'stat', 6, [{ expr: `sum(rate(istio_requests_total{${src}, response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{${src}}[1m]))` }], 'percentunit'),
    panel('4xxs', 'stat', 6, [{ expr: `round(sum(rate(istio_requests_total{${src}, response_code=~"4.*"}[1m])), 0.001) or vector(0)` }], 'reqps'),
    panel('5xxs', 'stat', 6, [{ expr: `round(sum(rate(istio_requests_total{${src}, response_code=~"5.*"}[1m])), 0.001) or vector(0)` }], 'reqps'),
    row('HTTP/gRPC Workloads'),
    panel('Requests', 'table', 24, [
      { expr: `label_join(sum(rate(istio_requests_total{reporter="destination"}[1m])) by (destination_workload, destination_workload_namespace, destination_service), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")`, legendFormat: '{{ destination_workload }}.{{ destination_workload_namespace }}' },
      { expr: quantiles(0.5, 'reporter="destination"', 'destination_workload, destination_workload_namespace'), legendFormat: 'P50 {{ destination_workload }}' },
      { expr: quantiles(0.9, 'reporter="destination"', 'destination_workload, destination_workload_namespace'), legendFormat: 'P90 {{ destination_workload }}' },
      { expr: quantiles(0.99, 'reporter="destination"', 'destination_workload, destination_workload_namespace'), legendFormat: 'P99 {{ destination_workload }}' },
      { expr: `sum(rate(istio_requests_total{reporter="destination", response_code!~"5.*"}[1m])) by (destination_workload, destination_workload_namespace) / sum(rate(istio_requests_total{reporter="destination"}[1m])) by (destination_workload, destination_workload_namespace)`, legendFormat: 'success {{ destination_workload }}' },
    ]),
    row('TCP Workloads'),
    panel('TCP Bytes', 'table', 24, [
      { expr: `sum(rate(istio_tcp_sent_bytes_total{reporter="source"}[1m])) by (destination_workload, destination_workload_namespace, destination_service)`, legendFormat: 'sent {{ destination_workload }}' },
      { expr: `sum(rate(istio_tcp_received_bytes_total{reporter="source"}[1m])) by (destination_workload, destination_workload_namespace, destination_service)`, legendFormat: 'received {{ destination_workload }}' },
    ], 'Bps'),
  ]);
}

function service() {
  const client = 'reporter="source", destination_service=~"$service"';
  const server = 'reporter="destination", destination_service=~"$service"';
  const fromSource = `${server}, source_workload=~"$srcwl", source_workload_namespace=~"$srcns"`;
  return dashboardOf(
    'sinew-istio-service',
    'Istio Service Dashboard (Sinew)',
    [
      variable('service', 'Service', 'label_values(istio_requests_total{reporter="destination"}, destination_service)'),
      variable('srcns', 'Client Workload Namespace', 'label_values(istio_requests_total{reporter="destination", destination_service=~"$service"}, source_workload_namespace)', true),
      variable('srcwl', 'Client Workload', 'label_values(istio_requests_total{reporter="destination", destination_service=~"$service", source_workload_namespace=~"$srcns"}, source_workload)', true),
      variable('dstns', 'Service Workload Namespace', 'label_values(istio_requests_total{reporter="destination", destination_service=~"$service"}, destination_workload_namespace)', true),
      variable('dstwl', 'Service Workload', 'label_values(istio_requests_total{reporter="destination", destination_service=~"$service", destination_workload_namespace=~"$dstns"}, destination_workload)', true),
    ],
    [
      row('General'),
      panel('Client Request Volume', 'stat', 6, [{ expr: `round(sum(rate(istio_requests_total{${client}}[5m])), 0.001)` }], 'reqps'),
      panel('Client Success Rate (non-5xx responses)', 'stat', 6, [{ expr: `sum(rate(istio_requests_total{${client}, response_code!~"5.*"}[5m])) / sum(rate(istio_requests_total{${client}}[5m]))` }], 'percentunit'),
      panel('Client Request Duration', 'timeseries', 6, [0.5, 0.9, 0.99].map((q) => ({ expr: quantiles(q, client, ''), legendFormat: `P${q * 100}` })), 'ms'),
      panel('TCP Received Bytes', 'stat', 6, [{ expr: `sum(rate(istio_tcp_received_bytes_total{reporter="destination", destination_service=~"$service"}[1m]))` }], 'Bps'),
      panel('Server Request Volume', 'stat', 6, [{ expr: `round(sum(rate(istio_requests_total{${server}}[5m])), 0.001)` }], 'reqps'),
      panel('Server Success Rate (non-5xx responses)', 'stat', 6, [{ expr: `sum(rate(istio_requests_total{${server}, response_code!~"5.*"}[5m])) / sum(rate(istio_requests_total{${server}}[5m]))` }], 'percentunit'),
      panel('Server Request Duration', 'timeseries', 6, [0.5, 0.9, 0.99].map((q) => ({ expr: quantiles(q, server, ''), legendFormat: `P${q * 100}` })), 'ms'),
      panel('TCP Sent Bytes', 'stat', 6, [{ expr: `sum(rate(istio_tcp_sent_bytes_total{reporter="destination", destination_service=~"$service"}[1m]))` }], 'Bps'),
      row('Client Workloads'),
      panel('Incoming Requests By Source And Response Code', 'timeseries', 12, [{ expr: `round(sum(rate(istio_requests_total{${fromSource}}[1m])) by (source_workload, source_workload_namespace, response_code), 0.001)`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }} : {{ response_code }}' }], 'reqps'),
      panel('Incoming Success Rate (non-5xx responses) By Source', 'timeseries', 12, [{ expr: `sum(rate(istio_requests_total{${fromSource}, response_code!~"5.*"}[1m])) by (source_workload, source_workload_namespace) / sum(rate(istio_requests_total{${fromSource}}[1m])) by (source_workload, source_workload_namespace)`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }}' }], 'percentunit'),
      panel('Incoming Request Duration By Source', 'timeseries', 8, [0.5, 0.95, 0.99].map((q) => ({ expr: quantiles(q, fromSource, 'source_workload, source_workload_namespace'), legendFormat: `{{ source_workload }}.{{ source_workload_namespace }} P${q * 100}` })), 'ms'),
      panel('Incoming Request Size By Source', 'timeseries', 8, [{ expr: `histogram_quantile(0.5, sum(rate(istio_request_bytes_bucket{${fromSource}}[1m])) by (le, source_workload, source_workload_namespace))`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }} P50' }], 'decbytes'),
      panel('Response Size By Source', 'timeseries', 8, [{ expr: `histogram_quantile(0.5, sum(rate(istio_response_bytes_bucket{${fromSource}}[1m])) by (le, source_workload, source_workload_namespace))`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }} P50' }], 'decbytes'),
      panel('Bytes Received from Incoming TCP Connection', 'timeseries', 12, [{ expr: `sum(rate(istio_tcp_received_bytes_total{${fromSource}}[1m])) by (source_workload, source_workload_namespace)`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }}' }], 'Bps'),
      panel('Bytes Sent to Incoming TCP Connection', 'timeseries', 12, [{ expr: `sum(rate(istio_tcp_sent_bytes_total{${fromSource}}[1m])) by (source_workload, source_workload_namespace)`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }}' }], 'Bps'),
      row('Service Workloads'),
      panel('Incoming Requests By Destination Workload And Response Code', 'timeseries', 12, [{ expr: `round(sum(rate(istio_requests_total{${server}, destination_workload=~"$dstwl", destination_workload_namespace=~"$dstns"}[1m])) by (destination_workload, destination_workload_namespace, response_code), 0.001)`, legendFormat: '{{ destination_workload }}.{{ destination_workload_namespace }} : {{ response_code }}' }], 'reqps'),
      panel('Incoming Request Duration By Service Workload', 'timeseries', 12, [0.5, 0.95, 0.99].map((q) => ({ expr: quantiles(q, `${server}, destination_workload=~"$dstwl", destination_workload_namespace=~"$dstns"`, 'destination_workload, destination_workload_namespace'), legendFormat: `{{ destination_workload }}.{{ destination_workload_namespace }} P${q * 100}` })), 'ms'),
    ],
  );
}

function workload() {
  const inbound = 'reporter="destination", destination_workload_namespace=~"$namespace", destination_workload=~"$workload"';
  const outbound = 'reporter="source", source_workload_namespace=~"$namespace", source_workload=~"$workload"';
  return dashboardOf(
    'sinew-istio-workload',
    'Istio Workload Dashboard (Sinew)',
    [
      variable('namespace', 'Namespace', 'label_values(istio_requests_total, destination_workload_namespace)'),
      variable('workload', 'Workload', 'label_values(istio_requests_total{destination_workload_namespace=~"$namespace"}, destination_workload)'),
      variable('srcns', 'Inbound Workload Namespace', 'label_values(istio_requests_total{reporter="destination", destination_workload=~"$workload", destination_workload_namespace=~"$namespace"}, source_workload_namespace)', true),
      variable('dstsvc', 'Destination Service', 'label_values(istio_requests_total{reporter="source", source_workload=~"$workload", source_workload_namespace=~"$namespace"}, destination_service)', true),
    ],
    [
      row('General'),
      panel('Incoming Request Volume', 'stat', 8, [{ expr: `round(sum(rate(istio_requests_total{${inbound}}[5m])), 0.001)` }], 'reqps'),
      panel('Incoming Success Rate (non-5xx responses)', 'stat', 8, [{ expr: `sum(rate(istio_requests_total{${inbound}, response_code!~"5.*"}[5m])) / sum(rate(istio_requests_total{${inbound}}[5m]))` }], 'percentunit'),
      panel('Request Duration', 'timeseries', 8, [0.5, 0.9, 0.99].map((q) => ({ expr: quantiles(q, inbound, ''), legendFormat: `P${q * 100}` })), 'ms'),
      panel('TCP Server Traffic', 'timeseries', 12, [
        { expr: `sum(rate(istio_tcp_received_bytes_total{${inbound}}[1m]))`, legendFormat: 'received' },
        { expr: `sum(rate(istio_tcp_sent_bytes_total{${inbound}}[1m]))`, legendFormat: 'sent' },
      ], 'Bps'),
      panel('TCP Client Traffic', 'timeseries', 12, [
        { expr: `sum(rate(istio_tcp_sent_bytes_total{${outbound}}[1m]))`, legendFormat: 'sent' },
        { expr: `sum(rate(istio_tcp_received_bytes_total{${outbound}}[1m]))`, legendFormat: 'received' },
      ], 'Bps'),
      row('Inbound Workloads'),
      panel('Incoming Requests By Source And Response Code', 'timeseries', 12, [{ expr: `round(sum(rate(istio_requests_total{${inbound}, source_workload_namespace=~"$srcns"}[1m])) by (source_workload, source_workload_namespace, response_code), 0.001)`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }} : {{ response_code }}' }], 'reqps'),
      panel('Incoming Success Rate (non-5xx responses) By Source', 'timeseries', 12, [{ expr: `sum(rate(istio_requests_total{${inbound}, source_workload_namespace=~"$srcns", response_code!~"5.*"}[1m])) by (source_workload, source_workload_namespace) / sum(rate(istio_requests_total{${inbound}, source_workload_namespace=~"$srcns"}[1m])) by (source_workload, source_workload_namespace)`, legendFormat: '{{ source_workload }}.{{ source_workload_namespace }}' }], 'percentunit'),
      panel('Incoming Request Duration By Source', 'timeseries', 24, [0.5, 0.95, 0.99].map((q) => ({ expr: quantiles(q, `${inbound}, source_workload_namespace=~"$srcns"`, 'source_workload, source_workload_namespace'), legendFormat: `{{ source_workload }}.{{ source_workload_namespace }} P${q * 100}` })), 'ms'),
      row('Outbound Services'),
      panel('Outgoing Requests By Destination And Response Code', 'timeseries', 12, [{ expr: `round(sum(rate(istio_requests_total{${outbound}, destination_service=~"$dstsvc"}[1m])) by (destination_service, response_code), 0.001)`, legendFormat: '{{ destination_service }} : {{ response_code }}' }], 'reqps'),
      panel('Outgoing Success Rate (non-5xx responses) By Destination', 'timeseries', 12, [{ expr: `sum(rate(istio_requests_total{${outbound}, destination_service=~"$dstsvc", response_code!~"5.*"}[1m])) by (destination_service) / sum(rate(istio_requests_total{${outbound}, destination_service=~"$dstsvc"}[1m])) by (destination_service)`, legendFormat: '{{ destination_service }}' }], 'percentunit'),
      panel('Outgoing Request Duration By Destination', 'timeseries', 24, [0.5, 0.95, 0.99].map((q) => ({ expr: quantiles(q, `${outbound}, destination_service=~"$dstsvc"`, 'destination_service'), legendFormat: `{{ destination_service }} P${q * 100}` })), 'ms'),
    ],
  );
}

/** The dashboard's JSON model, ready for Grafana's import. */
export function dashboard(name: DashboardName): Record<string, unknown> {
  return name === 'mesh' ? mesh() : name === 'service' ? service() : workload();
}
