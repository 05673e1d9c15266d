/**
 * The control plane's own metrics (port 15014), named after istiod's where one exists
 * (pilot_xds_pushes, pilot_xds, pilot_proxy_convergence_time, pilot_total_xds_rejects).
 * Values are read from the push server's counters at scrape time, so nothing is recorded on
 * the push path itself.
 */
import { Registry, Gauge, Counter } from 'prom-client';
import type { PushMetrics } from '../xds/server.js';

export function createControlPlaneMetrics(read: () => { push: PushMetrics; revision: number }): Registry {
  const registry = new Registry();
  const counter = (name: string, help: string, get: (m: PushMetrics) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(get(read().push));
      },
    });
  const gauge = (name: string, help: string, get: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(get());
      },
    });
  counter('pilot_xds_pushes', 'Configs pushed to proxies.', (m) => m.pushes);
  counter('pilot_xds_push_errors', 'Configs that could not be built or sent.', (m) => m.pushErrors);
  counter('pilot_total_xds_rejects', 'Configs rejected (NACKed) by proxies.', (m) => m.nacks);
  counter('pilot_xds_acks', 'Configs acknowledged by proxies.', (m) => m.acks);
  counter('pilot_xds_push_unchanged', 'Proxies affected by a change whose config did not change (not pushed).', (m) => m.skippedUnchanged);
  counter('pilot_push_triggers', 'Push requests (config or registry changes) before debouncing.', (m) => m.pushRequests);
  counter('pilot_xds_protocol_errors', 'Push connections closed for protocol errors.', (m) => m.protocolErrors);
  counter('sinew_xds_unauthenticated', 'Push connections refused for a missing or wrong credential.', (m) => m.unauthenticated);
  gauge('pilot_xds', 'Proxies connected.', () => read().push.connectedProxies);
  gauge('pilot_push_duration_seconds', 'Time the last debounced push batch took.', () => read().push.lastPushDurationMs / 1000);
  gauge('pilot_proxy_convergence_time_seconds', 'Time from sending the last acknowledged push to its ACK.', () => read().push.lastConvergenceMs / 1000);
  gauge('sinew_config_revision', 'Revision of the config in force.', () => read().revision);
  return registry;
}
