/**
 * The Gateway API's spec schemas and the CEL library load when the first Gateway API
 * resource is validated, not at start (src/api/resources/gateway-api/index.ts,
 * src/config/semantic/gateway-api.ts). This file starts its own control plane in a process
 * where nothing has validated a Gateway API resource yet, so its first apply takes that path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { OperatorApi } from './helpers.js';

const gateway = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  gatewayClassName: istio
  listeners:
  - {name: web, port: 8080, protocol: HTTP}
`;

const route = (rule: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules:
${rule}`;

test('the first Gateway API apply after start is checked against the CRD schema and its CEL rules', async () => {
  let cp: ControlPlane | undefined;
  try {
    cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, ca: false });
    const api = new OperatorApi(cp);

    // A CEL rule of the CRD (a redirect beside backendRefs) and a structural error at once.
    let res = await api.apply(route('  - filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]\n    backendRefs: [{name: svc, port: 8080}]\n    timeout: {requst: 1s}\n'));
    assert.equal(res.status, 422);
    const refused = (await res.json()) as { diagnostics: { code: string; path?: string; message: string }[] };
    assert.ok(refused.diagnostics.some((d) => d.code === 'SNW0601' && d.path === 'spec.rules[0]' && d.message === 'RequestRedirect filter must not be used together with backendRefs'), JSON.stringify(refused.diagnostics));
    assert.ok(refused.diagnostics.some((d) => d.path?.startsWith('spec.rules[0].timeouts') || d.path?.startsWith('spec.rules[0].timeout')), JSON.stringify(refused.diagnostics));
    assert.equal(cp.store.revision, 0, 'nothing was applied');

    // Valid ones are stored with the CRD's defaults applied.
    res = await api.apply(gateway + '---\n' + route('  - backendRefs: [{name: svc, port: 8080}]\n'));
    assert.equal(res.status, 200, await res.clone().text());
    const stored = cp.store.list().find((r) => r.kind === 'HTTPRoute')!;
    const rule = (stored.spec as { rules: { matches: unknown[] }[] }).rules[0]!;
    assert.deepEqual(rule.matches, [{ path: { type: 'PathPrefix', value: '/' } }]);
  } finally {
    await cp?.close();
  }
});
