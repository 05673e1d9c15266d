/**
 * `sinew apply` of certificates named by file, where the control plane shares its machine with
 * the proxies (the embedded mesh): a path that cannot be read there is a warning (SNW1020) with
 * the path and the field, and the apply goes through (the file may be written later; the proxy
 * takes it when it is).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Diagnostic } from '../../src/api/diagnostics.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { OperatorApi } from './helpers.js';

let dir: string;
let cp: ControlPlane;
let api: OperatorApi;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-tls-files-apply-'));
  writeFileSync(join(dir, 'tls.crt'), 'certificate\n');
  writeFileSync(join(dir, 'ca.crt'), 'ca\n');
  cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 5 });
  api = new OperatorApi(cp);
});

after(async () => {
  await cp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('apply of certificates named by file', () => {
  test('a Gateway server and a DestinationRule naming files this machine cannot read: applied, with a warning per missing file', async () => {
    const res = await api.apply(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [secure.example.com]
    tls: {mode: SIMPLE, serverCertificate: ${join(dir, 'tls.crt')}, privateKey: ${join(dir, 'tls.key')}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: external}
spec:
  host: api.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: MUTUAL, clientCertificate: ${join(dir, 'client.crt')}, privateKey: ${join(dir, 'client.key')}, caCertificates: ${join(dir, 'ca.crt')}}
`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { diagnostics: Diagnostic[]; resources: { result: string }[] };
    assert.deepEqual(body.resources.map((r) => r.result), ['created', 'created']);
    const found = body.diagnostics.filter((d) => d.code === 'SNW1020').map((d) => [d.level, d.resource?.kind, d.path, d.message.split(' ')[0]]);
    assert.deepEqual(found, [
      ['warning', 'Gateway', 'spec.servers[0].tls.privateKey', join(dir, 'tls.key')],
      ['warning', 'DestinationRule', 'spec.trafficPolicy.portLevelSettings[0].tls.clientCertificate', join(dir, 'client.crt')],
      ['warning', 'DestinationRule', 'spec.trafficPolicy.portLevelSettings[0].tls.privateKey', join(dir, 'client.key')],
    ]);
    assert.match(body.diagnostics.find((d) => d.code === 'SNW1020')!.message, /no such file.*does not serve this server/);
  });

  test('files that can be read, and credentialName, warn about nothing', async () => {
    writeFileSync(join(dir, 'tls.key'), 'key\n');
    const res = await api.apply(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [secure.example.com]
    tls: {mode: SIMPLE, serverCertificate: ${join(dir, 'tls.crt')}, privateKey: ${join(dir, 'tls.key')}}
  - port: {number: 8443, name: https-credential, protocol: HTTPS}
    hosts: [other.example.com]
    tls: {mode: SIMPLE, credentialName: other-credential}
`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { diagnostics: Diagnostic[] };
    assert.deepEqual(body.diagnostics.filter((d) => d.code === 'SNW1020'), []);
  });
});
