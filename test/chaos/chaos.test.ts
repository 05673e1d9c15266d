/**
 * Faults under load, asserted: the chaos benchmark's scenarios (bench/chaos.ts), shorter, on
 * Bookinfo (productpage-v1 at two replicas) under a fixed-rate wrk load through the ingress
 * gateway. Nothing may be lost: no request while the control plane is killed and comes back,
 * none across config changes, none when an app replica or its sidecar is killed with retries on
 * the route, none while `sinew up` itself is dead; and an apply cut short by kill -9 leaves the
 * config as it was before or after, never half of it. `npm run bench -- chaos` measures the
 * same with Istio's default retries too, and longer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { report, runChaos, wrkAvailable } from '../../bench/chaos.js';

test('Bookinfo under load loses no request and no resource to the faults of the chaos benchmark', { timeout: 600_000, skip: wrkAvailable() ? false : 'wrk is not installed (apt-get install wrk; .ci/run installs it)' }, async (t) => {
  const results = await runChaos({
    rate: 40,
    settleS: 4,
    configChanges: 20,
    applyTrials: 2,
    applySize: 200,
    only: ['baseline', 'control-plane', 'config-changes', 'app-kill', 'sidecar-kill', 'runner-kill', 'apply-kill'],
    retryVariants: ['retries'],
    progress: (line) => t.diagnostic(line),
  });
  for (const line of report(results, 40).split('\n')) t.diagnostic(line);
  for (const r of results) {
    assert.ok(r.ok, `${r.name}: ${r.outcome}; ${r.recovery}${r.load?.failures.length ? `; failures: ${JSON.stringify(r.load.failures.slice(0, 20))}` : ''}`);
  }
});
