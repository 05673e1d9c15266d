/**
 * How the CLI authenticates to a control plane: a local mesh's token is found through its
 * state directory (mesh.json names the token file), a control plane named with --server
 * takes --token or SINEW_TOKEN, and a local mesh's token is never sent to a server named by
 * hand. Each refusal says what to do next.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main(['node', 'sinew', ...args], io);
  return { code, out, err };
}

describe('the CLI and the control plane\'s token', () => {
  let cp: ControlPlane;
  let stateDir: string;

  before(async () => {
    // As sinew up lays it out: the control plane's state under <state dir>/control-plane.
    stateDir = mkdtempSync(join(tmpdir(), 'sinew-cli-token-'));
    cp = await startControlPlane({ stateDir: join(stateDir, 'control-plane'), apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: false });
    writeFileSync(join(stateDir, 'mesh.json'), JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), controlPlane: { api: cp.addresses.api, push: cp.addresses.push, tokenFile: cp.tokenFile } }));
  });
  after(async () => {
    await cp.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('a local mesh\'s token is read through its state directory', async () => {
    const res = await cli('status', '--state-dir', stateDir, '-o', 'json');
    assert.equal(res.code, 0, res.err);
    assert.equal((JSON.parse(res.out) as { controlPlane: { api: string } }).controlPlane.api, cp.addresses.api);
  });

  test('a mesh.json without tokenFile (an older mesh) falls back to <state dir>/control-plane/api-token', async () => {
    const old = mkdtempSync(join(tmpdir(), 'sinew-cli-old-'));
    try {
      writeFileSync(join(old, 'mesh.json'), JSON.stringify({ pid: process.pid, startedAt: '', controlPlane: { api: cp.addresses.api, push: cp.addresses.push } }));
      const missing = await cli('status', '--state-dir', old);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /cannot read the control plane's API token .*control-plane\/api-token: no such file/);
      mkdirSync(join(old, 'control-plane'));
      writeFileSync(join(old, 'control-plane', 'api-token'), cp.credentials.apiToken + '\n', { mode: 0o600 });
      assert.equal((await cli('status', '--state-dir', old)).code, 0);
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });

  test('--server without a token is refused with what to do; --token works', async () => {
    const refused = await cli('status', '--server', cp.addresses.api);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /answered 401/);
    assert.match(refused.err, /--token or SINEW_TOKEN/);
    const wrong = await cli('status', '--server', cp.addresses.api, '--token', 'f'.repeat(64));
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /the token from --token was refused/);
    const ok = await cli('proxy-status', '--server', cp.addresses.api, '--token', cp.credentials.apiToken);
    assert.equal(ok.code, 0, ok.err);
  });

  test('a local mesh\'s token is never sent to a server named with --server', async () => {
    const seen: (string | undefined)[] = [];
    const elsewhere = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"who are you?"}');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    try {
      const res = await cli('status', '--state-dir', stateDir, '--server', `127.0.0.1:${(elsewhere.address() as AddressInfo).port}`);
      assert.equal(res.code, 1);
      assert.deepEqual(seen, [undefined]);
    } finally {
      await new Promise<void>((resolve) => elsewhere.close(() => resolve()));
    }
  });

  test('apply goes through with the token and a YAML media type', async () => {
    const file = join(stateDir, 'svc.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  ports: [{name: http, port: 9080}]\n');
    const res = await cli('apply', '-f', file, '--state-dir', stateDir);
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, /^service\/reviews created$/m);
  });
});
