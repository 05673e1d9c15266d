/**
 * planReplicas: what `sinew up` runs for each Workload replica.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/resources/meta.js';
import { planReplicas, type WorkloadSpecView } from '../../src/mesh/plan.js';

function workload(name: string, namespace: string, replicas = 1): Resource<WorkloadSpecView> {
  return {
    apiVersion: 'sinew.dev/v1alpha1',
    kind: 'Workload',
    group: 'sinew.dev',
    metadata: { name, namespace },
    spec: { command: ['node', 'app.js'], replicas, ports: [{ containerPort: 8080 }] },
  } as unknown as Resource<WorkloadSpecView>;
}

test('regression: two workloads of one name in two namespaces run as two processes of different names', () => {
  // The Gateway API mesh conformance base has an echo-v1 in gateway-conformance-mesh and in
  // gateway-conformance-mesh-consumer; `sinew up` refused it ("process echo-v1-0/proxy is already supervised").
  const plans = planReplicas([workload('echo-v1', 'mesh'), workload('echo-v1', 'consumer'), workload('reviews', 'default', 2)]);
  assert.deepEqual(
    plans.map((p) => [p.id, p.label]),
    [
      ['echo-v1-0', 'echo-v1-0.mesh'],
      ['echo-v1-0', 'echo-v1-0.consumer'],
      ['reviews-0', 'reviews-0'],
      ['reviews-1', 'reviews-1'],
    ],
  );
  assert.equal(new Set(plans.map((p) => p.label)).size, plans.length);
});
