/**
 * What `sinew up` sends the control plane for the manifests it reads: each as written, against a
 * real control plane.
 *
 * Regression (up_applies_secret_manifests): every manifest was sent as {apiVersion, kind,
 * metadata, spec}, so a Secret in `sinew up`'s manifests (type and data at the top level) was
 * refused with "unknown field spec" and the mesh did not start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateText } from '../../src/config/validate.js';
import { startControlPlane } from '../../src/controlplane/daemon.js';
import { API_TOKEN_FILE } from '../../src/controlplane/credentials.js';
import { ControlPlaneClient } from '../../src/mesh/control-plane-client.js';
import { b64, makeCa, makeServerCertificate } from '../support/tls.js';

test('up_applies_secret_manifests: a kubernetes.io/tls Secret and a cluster-scoped Namespace among the manifests are applied as written', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'sinew-cp-client-'));
  const cp = await startControlPlane({ stateDir, apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false });
  try {
    const server = await makeServerCertificate(await makeCa(), ['httpbin.example.com']);
    const manifests = `apiVersion: v1\nkind: Namespace\nmetadata: {name: edge}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: httpbin-credential, namespace: istio-system}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${b64(server.cert)}\n  tls.key: ${b64(server.key)}\n`;
    const { resources, diagnostics } = validateText('mesh.yaml', manifests);
    assert.deepEqual(diagnostics.filter((d) => d.level === 'error'), []);
    const client = new ControlPlaneClient(cp.addresses.api, { tokenFile: join(stateDir, API_TOKEN_FILE) });
    await client.apply(resources);
    const stored = (await client.resources()).map((r) => `${r.kind} ${r.metadata.namespace ?? '-'}/${r.metadata.name}`).sort();
    assert.deepEqual(stored, ['Namespace -/edge', 'Secret istio-system/httpbin-credential']);
  } finally {
    await cp.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
