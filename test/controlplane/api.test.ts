import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { MemoryConfigStore } from '../../src/config/store.js';
import { startConfigApi } from '../../src/controlplane/api.js';

const services = `
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
`;

describe('control plane config API', () => {
  let server: Server;
  let base: string;
  const store = new MemoryConfigStore();

  before(async () => {
    const started = await startConfigApi({ store });
    server = started.server;
    base = `http://127.0.0.1:${started.address.port}/api/v1`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('apply stores valid resources and reports created/unchanged/configured, as kubectl', async () => {
    let res = await fetch(`${base}/apply`, { method: 'POST', body: services });
    assert.equal(res.status, 200);
    let body = (await res.json()) as { revision: number; resources: { name: string; result: string }[] };
    assert.equal(body.revision, 1);
    assert.deepEqual(body.resources.map((r) => r.result), ['created', 'created']);
    res = await fetch(`${base}/apply`, { method: 'POST', body: services });
    body = (await res.json()) as typeof body;
    assert.equal(body.revision, 1);
    assert.deepEqual(body.resources.map((r) => r.result), ['unchanged', 'unchanged']);
    res = await fetch(`${base}/apply`, { method: 'POST', body: services.replace('port: 9080', 'port: 9081') });
    body = (await res.json()) as typeof body;
    assert.ok(body.resources.some((r) => r.result === 'configured'), JSON.stringify(body.resources));
    res = await fetch(`${base}/apply`, { method: 'POST', body: services }); // back as it was, for the tests below
    body = (await res.json()) as typeof body;
    assert.ok(body.resources.some((r) => r.result === 'configured'), JSON.stringify(body.resources));
  });

  test('an invalid batch is refused whole with every diagnostic, and nothing changes', async () => {
    const before = store.revision;
    const bad = `${services}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {}\n---\napiVersion: networking.stio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {}\n`;
    const res = await fetch(`${base}/apply`, { method: 'POST', body: bad.replace('port: 9080}]\n---', 'port: 9081}]\n---') });
    assert.equal(res.status, 422);
    const body = (await res.json()) as { error: string; diagnostics: { code: string; level: string }[] };
    const codes = body.diagnostics.filter((d) => d.level === 'error').map((d) => d.code);
    assert.ok(codes.includes('SNW0012'), codes.join());
    assert.ok(codes.includes('SNW0009'), codes.join());
    assert.equal(store.revision, before);
    const reviews = (await (await fetch(`${base}/resources/Service/default/reviews`)).json()) as { spec: { ports: { port: number }[] } };
    assert.equal(reviews.spec.ports[0].port, 9080, 'the last good config stays in force');
  });

  test('a large apply read as it arrives: an invalid document in the middle refuses it whole, at its line, and the last good config stays', async () => {
    const before = store.revision;
    const service = (name: string, port: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n  selector: {app: ${name}}\n  ports: [{name: http, port: ${port}}]\n`;
    const docs = Array.from({ length: 8000 }, (_, i) => service(i === 0 ? 'reviews' : `bulk-${i}`, '9999'));
    docs[5000] = service('broken', '"not-a-port"');
    const body = docs.join('---\n');
    const brokenLine = body.split('\n').findIndex((l) => l.includes('"not-a-port"')) + 1;
    // Sent in small pieces as a chunked body, so that it reaches the API in many reads.
    const pieces = Array.from({ length: Math.ceil(body.length / 4096) }, (_, i) => body.slice(i * 4096, (i + 1) * 4096));
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const piece = pieces.shift();
        if (piece === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(piece));
      },
    });
    const res = await fetch(`${base}/apply`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    assert.equal(res.status, 422);
    const answer = (await res.json()) as { diagnostics: { level: string; source?: { line: number }; resource?: { name: string } }[] };
    const errors = answer.diagnostics.filter((d) => d.level === 'error');
    assert.ok(errors.length > 0, JSON.stringify(answer.diagnostics));
    for (const error of errors) {
      assert.equal(error.resource?.name, 'broken', JSON.stringify(error));
      assert.equal(error.source?.line, brokenLine, JSON.stringify(error));
    }
    assert.ok(brokenLine > 30_000, `line ${brokenLine}`);
    assert.equal(store.revision, before, 'nothing was applied');
    assert.equal(store.get('Service', 'default', 'bulk-1'), undefined);
    assert.equal((store.get('Service', 'default', 'reviews') as { spec: { ports: { port: number }[] } }).spec.ports[0]!.port, 9080, 'the last good config stays in force');
  });

  test('get, list and delete', async () => {
    const list = (await (await fetch(`${base}/resources?kind=Service`)).json()) as { items: { metadata: { name: string } }[] };
    assert.deepEqual(list.items.map((i) => i.metadata.name), ['ratings', 'reviews']);
    assert.equal((await fetch(`${base}/resources/Service/default/nope`)).status, 404);
    const del = await fetch(`${base}/resources/Service/default/ratings`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await fetch(`${base}/resources/Service/default/ratings`)).status, 404);
    const byFile = await fetch(`${base}/delete`, { method: 'POST', body: services });
    const body = (await byFile.json()) as { resources: { name: string; result: string }[] };
    assert.deepEqual(body.resources.map((r) => `${r.name}:${r.result}`), ['reviews:deleted', 'ratings:not found']);
  });

  test('malformed bodies and unknown endpoints get labelled errors', async () => {
    const res = await fetch(`${base}/apply`, { method: 'POST', body: 'a: [unclosed' });
    assert.equal(res.status, 422);
    const body = (await res.json()) as { diagnostics: { code: string }[] };
    assert.equal(body.diagnostics[0].code, 'SNW0004');
    assert.equal((await fetch(`${base}/nothing`)).status, 404);
  });
});
