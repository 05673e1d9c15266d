/**
 * Request bodies the control plane must refuse without losing anything: invalid UTF-8 (a
 * 400 naming the byte), bodies over the limit (a 413 the client reads, whether it declared
 * the size, asked `Expect: 100-continue` first, or sent chunks), and the config in force
 * unchanged after each. curl is the client, as a user's would be.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/daemon.js';
import { OperatorApi } from './helpers.js';

const run = promisify(execFile);
/** The config API's body limit (api.ts). */
const LIMIT = 16 * 1024 * 1024;

/** curl's answer: the status, the body, and how many bytes of the request body it sent. */
async function curl(args: string[]): Promise<{ status: number; body: string; uploaded: number }> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '30', '-w', '\n%{http_code} %{size_upload}', ...args], { maxBuffer: 64 * 1024 * 1024 });
  const lines = stdout.split('\n');
  const [status, uploaded] = lines.pop()!.split(' ').map(Number) as [number, number];
  return { status, body: lines.join('\n'), uploaded };
}

describe('control plane request bodies', () => {
  let cp: ControlPlane;
  let api: OperatorApi;
  let dir: string;
  let token: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sinew-bodies-'));
    cp = await startControlPlane({ apiPort: 0, pushPort: 0, monitoringPort: 0, collectTraces: true });
    api = new OperatorApi(cp);
    token = ['-H', `authorization: Bearer ${cp.credentials.apiToken}`];
    assert.equal((await api.apply('apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  ports: [{name: http, port: 9080}]\n')).status, 200);
  });
  after(async () => {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('regression: invalid UTF-8 was applied with replacement characters; now 400 with the byte offset', async () => {
    const before = cp.store.revision;
    const head = Buffer.from('apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  labels: {team: caf');
    const body = Buffer.concat([head, Buffer.from([0xe9]), Buffer.from('}\nspec:\n  ports: [{name: http, port: 9080}]\n')]);
    const res = await api.fetch('/api/v1/apply', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body });
    assert.equal(res.status, 400);
    const answer = (await res.json()) as { error: string; offset: number };
    assert.equal(answer.offset, head.length);
    assert.match(answer.error, new RegExp(`not valid UTF-8: the bytes at offset ${head.length}`));
    assert.equal(cp.store.revision, before);
    assert.equal(cp.store.get('Service', 'default', 'reviews')?.metadata.labels, undefined);
  });

  test('invalid UTF-8 is refused on every route that reads a body', async () => {
    const bad = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]); // {"a":"<surrogate>"}
    for (const [method, path] of [
      ['PUT', '/api/v1/registrations/workload/default/reviews-v1'],
      ['POST', '/api/v1/proxy-credentials'],
      ['POST', '/api/v1/delete'],
      ['POST', '/api/v2/spans'],
      ['POST', '/v1/traces'],
    ] as const) {
      const res = await api.fetch(path, { method, headers: { 'content-type': 'application/json' }, body: bad });
      assert.equal(res.status, 400, path);
      assert.equal(((await res.json()) as { offset: number }).offset, 6, path);
    }
    assert.deepEqual(cp.traces.services(), []);
  });

  test('a body over the limit with its size declared gets 413, read by the client', async () => {
    const file = join(dir, 'big.yaml');
    writeFileSync(file, Buffer.alloc(LIMIT + 1, 0x20));
    const res = await curl([...token, '-H', 'content-type: application/yaml', '-H', 'Expect:', '--data-binary', `@${file}`, `http://${cp.addresses.api}/api/v1/apply`]);
    assert.equal(res.status, 413);
    assert.match(JSON.parse(res.body).error, /over 16777216 bytes/);
  });

  test('regression: a body over the limit with Expect: 100-continue got the 100 and then a reset; now 413 before any of it is sent', async () => {
    const before = cp.store.revision;
    const file = join(dir, 'big.yaml');
    writeFileSync(file, Buffer.alloc(LIMIT + 1, 0x20));
    const res = await curl([...token, '-H', 'content-type: application/yaml', '-H', 'Expect: 100-continue', '--expect100-timeout', '20', '--data-binary', `@${file}`, `http://${cp.addresses.api}/api/v1/apply`]);
    assert.equal(res.status, 413);
    assert.equal(res.uploaded, 0, 'the client was not invited to send the body');
    assert.equal(cp.store.revision, before);
  });

  test('a chunked body gets 413 once it passes the limit', async () => {
    const file = join(dir, 'big.yaml');
    writeFileSync(file, Buffer.alloc(LIMIT + 64 * 1024, 0x20));
    const res = await curl([...token, '-H', 'content-type: application/yaml', '-H', 'Transfer-Encoding: chunked', '-H', 'Expect:', '--data-binary', `@${file}`, `http://${cp.addresses.api}/api/v1/apply`]);
    assert.equal(res.status, 413);
  });

  test('Expect: 100-continue is answered only after the credential is checked', async () => {
    const file = join(dir, 'small.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: ratings}\nspec:\n  ports: [{name: http, port: 9080}]\n');
    const refused = await curl(['-H', 'content-type: application/yaml', '-H', 'Expect: 100-continue', '--expect100-timeout', '20', '--data-binary', `@${file}`, `http://${cp.addresses.api}/api/v1/apply`]);
    assert.equal(refused.status, 401);
    assert.equal(refused.uploaded, 0);
    const accepted = await curl([...token, '-H', 'content-type: application/yaml', '-H', 'Expect: 100-continue', '--expect100-timeout', '20', '--data-binary', `@${file}`, `http://${cp.addresses.api}/api/v1/apply`]);
    assert.equal(accepted.status, 200, accepted.body);
    assert.ok(cp.store.get('Service', 'default', 'ratings'));
  });

  test('the span receivers refuse bodies over their limit with 413', async () => {
    const file = join(dir, 'spans.json');
    writeFileSync(file, '[' + ' '.repeat(cp.traces.maxBodyBytes) + ']');
    const res = await curl([...token, '-H', 'content-type: application/json', '-H', 'Expect:', '--data-binary', `@${file}`, `http://${cp.addresses.api}/api/v2/spans`]);
    assert.equal(res.status, 413);
  });
});
