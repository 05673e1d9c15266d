/**
 * Secrets as Istio reads gateway credentials: validated (the API server's rules refuse, a
 * credential that cannot work warns), stored owner-only, and never shown: every listing of the
 * config (the API, `sinew get`, the console) carries sizes in place of values.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { validateText } from '../../src/config/validate.js';
import { FileConfigStore } from '../../src/config/store.js';
import { manifestOf, secretValues, type SecretSpec } from '../../src/api/resources/index.js';
import { startConfigApi } from '../../src/controlplane/api.js';
import { b64, makeCa, makeServerCertificate, type Pem } from '../support/tls.js';

let ca: Pem;
let server: Pem;
let other: Pem;
before(async () => {
  ca = await makeCa();
  server = await makeServerCertificate(ca, ['bookinfo.example.com']);
  other = await makeServerCertificate(ca, ['other.example.com']);
});

const tlsSecret = (data: Record<string, string>, name = 'bookinfo-credential', type = 'kubernetes.io/tls') =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: istio-system}\ntype: ${type}\ndata:\n${Object.entries(data).map(([k, v]) => `  ${k}: ${v}\n`).join('')}`;

describe('Secret validation', () => {
  test('a kubernetes.io/tls Secret with a certificate and its key is read; its content is kept as the spec', () => {
    const result = validateText('s.yaml', tlsSecret({ 'tls.crt': b64(server.cert), 'tls.key': b64(server.key), 'ca.crt': b64(ca.cert) }));
    assert.deepEqual(result.diagnostics, []);
    const spec = result.resources[0].spec as SecretSpec;
    assert.equal(spec.type, 'kubernetes.io/tls');
    assert.equal(secretValues(spec).get('tls.crt')?.toString('utf8'), server.cert);
  });

  test('a kubernetes.io/tls Secret without tls.key is refused, as the API server refuses it', () => {
    const result = validateText('s.yaml', tlsSecret({ 'tls.crt': b64(server.cert) }));
    assert.deepEqual(result.diagnostics.map((d) => [d.level, d.code, d.path]), [['error', 'SNW0611', 'data']]);
    assert.equal(result.resources.length, 0);
  });

  test('a key that is not the certificate\'s is a warning at the certificate: stored, but reported', () => {
    const result = validateText('s.yaml', tlsSecret({ 'tls.crt': b64(server.cert), 'tls.key': b64(other.key) }));
    assert.deepEqual(result.diagnostics.map((d) => [d.level, d.code, d.path]), [['warning', 'SNW0611', 'data["tls.crt"]']]);
    assert.match(result.diagnostics[0].message, /does not belong/);
    assert.equal(result.resources.length, 1);
  });

  test('Istio\'s generic layout (cert, key, cacert) and a CA-only <name>-cacert Secret', () => {
    const generic = validateText('s.yaml', tlsSecret({ cert: b64(server.cert), key: b64(server.key), cacert: b64(ca.cert) }, 'generic', 'Opaque'));
    assert.deepEqual(generic.diagnostics, []);
    const caOnly = validateText('s.yaml', tlsSecret({ cacert: b64('not a certificate') }, 'bookinfo-credential-cacert', 'Opaque'));
    assert.deepEqual(caOnly.diagnostics.map((d) => [d.level, d.code, d.path]), [['warning', 'SNW0611', 'data.cacert']]);
  });

  test('a redacted value copied from `sinew get` is refused; so is data that is not base64', () => {
    const result = validateText('s.yaml', tlsSecret({ 'tls.crt': '"<redacted: 1234 bytes>"', 'tls.key': 'not*base64' }));
    assert.deepEqual(result.diagnostics.map((d) => [d.code, d.path]).sort(), [['SNW0610', 'data["tls.key"]'], ['SNW0612', 'data["tls.crt"]']]);
  });

  test('stringData is plain text, merged over data', () => {
    const block = (pem: string) => pem.trimEnd().replace(/^/gm, '    ') + '\n';
    const yaml = `apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n${block(server.cert)}  tls.key: |\n${block(server.key)}`;
    const result = validateText('s.yaml', yaml);
    assert.deepEqual(result.diagnostics, []);
  });
});

describe('Secrets are never shown', () => {
  test('manifestOf writes a Secret back at the top level, with sizes in place of values when redacted', () => {
    const r = validateText('s.yaml', tlsSecret({ 'tls.crt': b64(server.cert), 'tls.key': b64(server.key) })).resources[0];
    const full = manifestOf(r);
    assert.equal((full.data as Record<string, string>)['tls.key'], b64(server.key));
    assert.equal(full.spec, undefined);
    const shown = manifestOf(r, { redact: true });
    assert.deepEqual(shown.data, { 'tls.crt': `<redacted: ${Buffer.byteLength(server.cert)} bytes>`, 'tls.key': `<redacted: ${Buffer.byteLength(server.key)} bytes>` });
    assert.equal(shown.type, 'kubernetes.io/tls');
    assert.ok(!JSON.stringify(shown).includes('PRIVATE KEY'));
  });

  describe('the config API', () => {
    let dir: string;
    let api: { server: Server; address: { port: number } };
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sinew-secrets-'));
      const store = await FileConfigStore.open(join(dir, 'config'));
      api = await startConfigApi({ store });
    });
    after(async () => {
      await new Promise<void>((resolve) => api.server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    });

    test('applies a Secret, lists and gets it redacted, and keeps it in owner-only files', async () => {
      const base = `http://127.0.0.1:${api.address.port}`;
      const applied = await fetch(`${base}/api/v1/apply`, { method: 'POST', body: tlsSecret({ 'tls.crt': b64(server.cert), 'tls.key': b64(server.key) }) });
      assert.equal(applied.status, 200, await applied.clone().text());
      for (const url of [`${base}/api/v1/resources?kind=Secret`, `${base}/api/v1/resources/Secret/istio-system/bookinfo-credential`]) {
        const text = await (await fetch(url)).text();
        assert.match(text, /<redacted: \d+ bytes>/);
        assert.ok(!text.includes(b64(server.key)) && !text.includes('PRIVATE KEY'), `${url} shows no value`);
      }
      const configDir = join(dir, 'config');
      assert.equal((await stat(configDir)).mode & 0o777, 0o700);
      assert.equal((await stat(join(configDir, 'history'))).mode & 0o777, 0o700);
      for (const file of ['resources.json', ...(await readdir(join(configDir, 'history'))).map((f) => join('history', f))]) {
        assert.equal((await stat(join(configDir, file))).mode & 0o777, 0o600, `${file} is owner-only`);
      }
      // The store keeps the values, at the top level, and reads them back after a restart.
      const reopened = await FileConfigStore.open(configDir);
      const spec = reopened.get('Secret', 'istio-system', 'bookinfo-credential')!.spec as SecretSpec;
      assert.equal(secretValues(spec).get('tls.key')?.toString('utf8'), server.key);
    });
  });
});
