/** A service, workload or app: its traffic charts, traces, config with validations, proxies and (services) actions. */
import type { Detail, DetailKind, Trace, TrafficCharts } from '../../api/console.js';
import { consoleApi } from '../api.js';
import { ServiceActions } from '../components/actions.js';
import { Chart } from '../components/chart.js';
import { Diagnostics } from '../components/diagnostics.js';
import { HealthBadge } from '../components/health.js';
import { useJson } from '../hooks.js';
import { href } from '../router.js';
import { TraceTable } from './traces.js';

export function DetailPage({ kind, namespace, name, params }: { kind: DetailKind; namespace: string; name: string; params: URLSearchParams }) {
  const window = Number(params.get('window') ?? 300);
  const detail = useJson<Detail>(consoleApi(`detail/${kind}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}?window=${window}`), 10_000);
  const d = detail.data;
  const traces = useJson<Trace[]>(d?.traceServices[0] ? consoleApi(`traces?service=${encodeURIComponent(d.traceServices[0])}&limit=10`) : undefined);
  return (
    <>
      <h1>
        {kind} {namespace}/{name} {d && <HealthBadge health={d.health} />}
      </h1>
      {detail.error && <p class="errors" role="alert">{detail.error}</p>}
      {d && (
        <>
          <p class="row">
            {d.related.map((r) => (
              <a href={`#/${r.kind}/${r.namespace}/${r.name}`}>
                {r.kind} {r.name}
              </a>
            ))}
            <a href={href('graph', { namespace })}>Graph</a>
          </p>
          <h2>Inbound</h2>
          <TrafficPanels charts={d.inbound} />
          <h2>Outbound</h2>
          <TrafficPanels charts={d.outbound} />
          {kind === 'service' && (
            <ServiceActions
              namespace={namespace}
              service={name}
              versions={d.versions}
              suspended={d.config.some((c) => c.action === 'suspend')}
              onChange={detail.reload}
            />
          )}
          <h2>Traces</h2>
          {traces.data ? <TraceTable traces={traces.data} /> : <p class="muted">No traces yet.</p>}
          <p>
            <a href={href('traces', { service: d.traceServices[0] })}>Search traces</a>
          </p>
          <h2>Config that applies</h2>
          {d.config.length === 0 && <p class="muted">None: the mesh's defaults apply.</p>}
          {d.config.map((c) => (
            <details>
              <summary>
                {c.kind} {c.namespace}/{c.name} {c.action && <span class="badge">written by action {c.action}</span>}
                {c.findings.length > 0 && <span class="badge">{c.findings.length} findings</span>}
              </summary>
              <Diagnostics diagnostics={c.findings} />
              <pre>{c.yaml}</pre>
              <a href={href('config', { kind: c.kind, namespace: c.namespace, name: c.name })}>Edit</a>
            </details>
          ))}
          <h2>Proxies</h2>
          <table>
            <thead>
              <tr><th>Proxy</th><th>Workload</th><th>Ready</th><th>Sync</th><th>Config version</th></tr>
            </thead>
            <tbody>
              {d.proxies.map((p) => (
                <tr><td>{p.id}</td><td>{p.workload}</td><td>{p.ready ? 'yes' : 'no'}</td><td>{p.sync}</td><td>{p.configVersion ?? '-'}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}

function TrafficPanels({ charts }: { charts: TrafficCharts }) {
  const hasTcp = charts.tcpReceived.some((p) => p[1] !== null) || charts.tcpSent.some((p) => p[1] !== null);
  return (
    <div class="charts">
      <Chart title="Request rate" unit="req/s" series={[{ label: 'requests', points: charts.requestRate }]} />
      <Chart title="Error rate (5xx and failed)" unit="%" series={[{ label: 'errors', points: charts.errorPercent }]} />
      <Chart title="Request duration" unit="ms" series={[{ label: 'p50', points: charts.p50 }, { label: 'p95', points: charts.p95 }, { label: 'p99', points: charts.p99 }]} />
      {hasTcp && <Chart title="TCP bytes" unit="B/s" series={[{ label: 'received', points: charts.tcpReceived }, { label: 'sent', points: charts.tcpSent }]} />}
    </div>
  );
}
