import type { Overview } from '../../api/console.js';
import { consoleApi } from '../api.js';
import { HealthBadge, percent, rate } from '../components/health.js';
import { useJson } from '../hooks.js';
import { href } from '../router.js';

export function OverviewPage() {
  const { data, error } = useJson<Overview>(consoleApi('overview?window=60'), 10_000);
  return (
    <>
      <h1>Overview</h1>
      {error && <p class="errors" role="alert">{error}</p>}
      {data && (
        <p class="muted">
          Config revision {data.configRevision} · {data.scrape.targets} proxies scraped every {data.scrape.intervalMs / 1000}s
          {data.scrape.failing ? `, ${data.scrape.failing} failing` : ''} · last minute
        </p>
      )}
      <div class="cards">
        {data?.namespaces.map((ns) => (
          <section class="card" aria-labelledby={`ns-${ns.name}`}>
            <h2 id={`ns-${ns.name}`}>
              {ns.name} <HealthBadge health={ns.health} />
            </h2>
            <p>
              <a href={href('graph', { namespace: ns.name })}>Graph of {ns.name}</a> · validations: {ns.validations.errors} errors, {ns.validations.warnings} warnings ·{' '}
              sidecars synced: {ns.proxies.synced}/{ns.proxies.total}
            </p>
            {ns.workloads.length > 0 && (
              <table>
                <caption class="muted" style="text-align:left">Workloads</caption>
                <thead>
                  <tr><th>Workload</th><th>Ready</th><th>Health</th><th>req/s</th><th>Errors</th></tr>
                </thead>
                <tbody>
                  {ns.workloads.map((w) => (
                    <tr>
                      <td><a href={`#/workload/${ns.name}/${w.name}`}>{w.name}</a></td>
                      <td>{w.ready}/{w.replicas}</td>
                      <td><HealthBadge health={w.health} /></td>
                      <td>{rate(w.inboundRate)}</td>
                      <td>{percent(w.errorPercent)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {ns.services.length > 0 && (
              <table>
                <caption class="muted" style="text-align:left">Services</caption>
                <thead>
                  <tr><th>Service</th><th>Health</th><th>req/s</th><th>Errors</th></tr>
                </thead>
                <tbody>
                  {ns.services.map((s) => (
                    <tr>
                      <td><a href={`#/service/${ns.name}/${s.name}`}>{s.name}</a></td>
                      <td><HealthBadge health={s.health} /></td>
                      <td>{rate(s.inboundRate)}</td>
                      <td>{percent(s.errorPercent)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        ))}
      </div>
    </>
  );
}
