/**
 * Every protocol between workloads and to the outside, end to end through `sinew up`
 * (fixtures/protocols: a gRPC greeter in two versions, a TCP echo service and a caller). The
 * requests are sent "from" the caller: to its sidecar's outbound listener, as its app would —
 * gRPC both with prior knowledge (HTTP/2 straight to the sidecar) and through `grpc_proxy`
 * (which @grpc/grpc-js honours with CONNECT), curl through `-x` and `-p -x`.
 *
 * Regressions (issue 16): an h2c request to the outbound listener failed with ERR_HTTP2_ERROR;
 * CONNECT closed the socket (curl rc 56); a host outside the registry answered 503 UH under
 * ALLOW_ANY (and under REGISTRY_ONLY, where Istio answers 502).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import http2 from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ReplicaStatus } from '../../src/api/mesh-status.js';
import { configDump, get, repo, sinew, startMesh, until, viaProxy, type Mesh, metricSamples as samples } from './support.js';

const GREETER = 'greeter:50051';

// === a gRPC client without generated code (messages are JSON, as greeter.mjs serves them) ===

const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as Record<string, unknown> };
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/greet.Greeter/${name}`, requestStream, responseStream,
  requestSerialize: json.serialize, requestDeserialize: json.deserialize,
  responseSerialize: json.serialize, responseDeserialize: json.deserialize,
});
const GreeterClient = grpc.makeGenericClientConstructor(
  { SayHello: method('SayHello', false, false), Flaky: method('Flaky', false, false), Fail: method('Fail', false, false), Chat: method('Chat', true, true) },
  'Greeter',
);
type Reply = Record<string, unknown>;
type Outcome = { ok: true; reply: Reply; trailers: grpc.Metadata } | { ok: false; code: number; details: string };

/** How the client reaches the greeter: HTTP/2 to the sidecar with prior knowledge, or a CONNECT tunnel through it. */
const MODES = ['prior-knowledge h2c', 'grpc_proxy (CONNECT)'] as const;
type Mode = (typeof MODES)[number];

function greeterClient(sidecarOut: string, mode: Mode): grpc.Client {
  if (mode === 'prior-knowledge h2c') {
    return new GreeterClient(sidecarOut, grpc.credentials.createInsecure(), { 'grpc.default_authority': GREETER });
  }
  // grpc-js reads grpc_proxy when a channel is made (its http_proxy.ts), and never resolves the
  // target itself then: the proxy is asked to CONNECT to greeter:50051.
  const saved = process.env.grpc_proxy;
  process.env.grpc_proxy = `http://${sidecarOut}`;
  try {
    return new GreeterClient(GREETER, grpc.credentials.createInsecure());
  } finally {
    if (saved === undefined) delete process.env.grpc_proxy;
    else process.env.grpc_proxy = saved;
  }
}

function unary(client: grpc.Client, name: string, request: Reply, metadata = new grpc.Metadata(), deadlineMs = 10_000): Promise<Outcome> {
  return new Promise((resolve) => {
    let trailers = new grpc.Metadata();
    const fn = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[name].bind(client);
    const call = fn(request, metadata, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, reply: Reply) =>
      // The status (and its trailers) can follow the callback; wait for both.
      setImmediate(() => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, reply, trailers })),
    );
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

async function ok(outcome: Promise<Outcome>): Promise<Reply & { trailers: grpc.Metadata }> {
  const o = await outcome;
  if (!o.ok) assert.fail(`gRPC call failed: ${o.code} ${o.details}`);
  return { ...o.reply, trailers: o.trailers };
}

// === curl ===

interface CurlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs curl; with `until`, ends it (SIGTERM) once its output says `until` — a TCP tunnel stays
 * open as long as the client keeps it — and within `timeoutMs` either way.
 */
function curl(args: string[], opts: { input?: string; until?: string; timeoutMs?: number } = {}): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (opts.until !== undefined && stdout.includes(opts.until)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.on('error', () => {});
    // curl's telnet reads its stdin in blocks (to EOF here) and keeps the tunnel open after;
    // -N makes it write what comes back at once.
    child.stdin.end(opts.input);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// === metrics ===


// === the tests ===

describe('protocols between workloads and to the outside (issue 16)', { timeout: 300_000 }, () => {
  let mesh: Mesh;
  let caller: ReplicaStatus;
  let out: string;
  const clients = new Map<Mode, grpc.Client>();
  const servers: Server[] = [];
  let certDir: string;

  before(async () => {
    mesh = await startMesh([join(repo, 'test/mesh/fixtures/protocols')]);
    const status = await mesh.status();
    caller = status.workloads.find((w) => w.name === 'caller-v1')!.replicas[0];
    out = caller.proxy.outbound!;
    for (const mode of MODES) clients.set(mode, greeterClient(out, mode));
    certDir = mkdtempSync(join(tmpdir(), 'sinew-tls-'));
  });

  after(async () => {
    for (const c of clients.values()) c.close();
    for (const s of servers) s.close();
    await mesh?.stop();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  async function apply(yaml: string): Promise<void> {
    const file = join(certDir, `apply-${Date.now()}.yaml`);
    writeFileSync(file, yaml);
    const res = await sinew(mesh.stateDir, 'apply', '-f', file);
    assert.equal(res.status, 0, `sinew apply: ${res.stderr}`);
  }

  async function callerHolds(what: string, check: (config: Awaited<ReturnType<typeof configDump>>) => boolean): Promise<void> {
    await until(`the caller's sidecar to hold ${what}`, async () => (check(await configDump(caller.proxy.admin)) ? true : undefined), 30_000);
  }

  async function callerMetrics(): Promise<string> {
    return (await get(`http://${caller.proxy.metrics}/stats/prometheus`)).body;
  }

  async function listen(server: Server): Promise<number> {
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  test('regression: an HTTP/2 request with prior knowledge to the outbound listener is routed, not refused (ERR_HTTP2_ERROR)', async () => {
    const session = http2.connect(`http://${out}`);
    session.on('error', () => {});
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/greet.Greeter/SayHello', ':authority': GREETER, 'content-type': 'application/grpc', te: 'trailers' });
        let body = '';
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (c: Buffer) => (body += c.subarray(5).toString()));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        const message = Buffer.from(JSON.stringify({ name: 'h2' }));
        const frame = Buffer.alloc(5);
        frame.writeUInt32BE(message.length, 1);
        req.end(Buffer.concat([frame, message]));
      });
      assert.equal(status, 200);
      assert.match(body, /"greeting":"hello h2"/);
    } finally {
      session.close();
    }
  });

  for (const mode of MODES) {
    test(`gRPC unary through both sidecars, ${mode}: the reply and the server's trailers arrive`, async () => {
      const reply = await ok(unary(clients.get(mode)!, 'SayHello', { name: 'mesh' }));
      assert.equal(reply.greeting, 'hello mesh');
      assert.match(String(reply.workload), /^greeter-v[12]$/);
      assert.deepEqual(reply.trailers.get('x-served-by'), [reply.workload], 'a trailer the server set reaches the client');
    });

    test(`gRPC, ${mode}: a 90/10 split by subset holds over 300 calls`, async () => {
      const counts: Record<string, number> = {};
      const client = clients.get(mode)!;
      for (let batch = 0; batch < 30; batch++) {
        const replies = await Promise.all(Array.from({ length: 10 }, () => ok(unary(client, 'SayHello', { name: 'split' }))));
        for (const r of replies) counts[String(r.workload)] = (counts[String(r.workload)] ?? 0) + 1;
      }
      assert.equal((counts['greeter-v1'] ?? 0) + (counts['greeter-v2'] ?? 0), 300, JSON.stringify(counts));
      // 30 expected for v2 (sd 5.2): 10..55 is about four standard deviations either way.
      const v2 = counts['greeter-v2'] ?? 0;
      assert.ok(v2 >= 10 && v2 <= 55, `v2 got ${v2} of 300 calls: ${JSON.stringify(counts)}`);
    });

    test(`gRPC, ${mode}: a header match on call metadata routes to v2 every time`, async () => {
      const md = new grpc.Metadata();
      md.set('x-canary', 'yes');
      const replies = await Promise.all(Array.from({ length: 20 }, () => ok(unary(clients.get(mode)!, 'SayHello', { name: 'canary' }, md))));
      assert.deepEqual(new Set(replies.map((r) => r.workload)), new Set(['greeter-v2']));
      assert.ok(replies.every((r) => r.canary === 'yes'), 'the metadata reaches the server');
    });

    test(`gRPC, ${mode}: per-method routing with a fault abort answers grpc-status 14 (UNAVAILABLE)`, async () => {
      const outcome = await unary(clients.get(mode)!, 'Fail', {});
      assert.deepEqual(outcome, { ok: false, code: grpc.status.UNAVAILABLE, details: 'fault filter abort' });
    });

    test(`gRPC, ${mode}: a call that fails with UNAVAILABLE is retried (retryOn: unavailable) and succeeds`, async () => {
      const stats = async () => Number(/^upstream_rq_retry: (\d+)$/m.exec((await get(`http://${caller.proxy.admin}/stats`)).body)?.[1] ?? 0);
      const before = await stats();
      const id = `${mode}-${Date.now()}`;
      const reply = await ok(unary(clients.get(mode)!, 'Flaky', { id }));
      assert.deepEqual({ workload: reply.workload, id: reply.id }, { workload: 'greeter-v1', id }, 'the second try answered');
      assert.equal((await stats()) - before, 1, 'one retry, by the caller\'s sidecar');
    });

    test(`gRPC, ${mode}: a bidirectional stream of 1000 messages goes through both sidecars in order`, async () => {
      const call = (clients.get(mode)! as unknown as { Chat(): grpc.ClientDuplexStream<Reply, Reply> }).Chat();
      const received: number[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on('data', (m: Reply) => received.push(Number(m.n)));
        call.on('end', resolve);
        call.on('error', reject);
      });
      for (let n = 0; n < 1000; n++) call.write({ n });
      call.end();
      await done;
      assert.equal(received.length, 1000);
      assert.deepEqual(received, Array.from({ length: 1000 }, (_, n) => n));
    });
  }

  test('gRPC: the route timeout caps the deadline the server is told (grpc-timeout); a client\'s shorter deadline passes as it is', async () => {
    const md = new grpc.Metadata();
    md.set('x-deadline', 'capped');
    const client = clients.get('prior-knowledge h2c')!;
    const capped = await ok(unary(client, 'SayHello', { name: 'deadline' }, md, 30_000));
    assert.ok(Number(capped.deadlineMs) > 0 && Number(capped.deadlineMs) <= 2_000, `the server had ${String(capped.deadlineMs)} ms left of a 30 s deadline on a 2 s route`);
    const shorter = await ok(unary(client, 'SayHello', { name: 'deadline' }, md, 1_500));
    assert.ok(Number(shorter.deadlineMs) > 0 && Number(shorter.deadlineMs) <= 1_500, `the server had ${String(shorter.deadlineMs)} ms left`);
    const unbounded = await ok(unary(client, 'SayHello', { name: 'deadline' }, new grpc.Metadata(), 30_000));
    assert.ok(Number(unbounded.deadlineMs) > 2_000, 'without a route timeout the client\'s deadline stands');
  });

  test('regression: curl -p -x reaches tcp-echo through a CONNECT tunnel (was rc 56), counted as istio_tcp_*', async () => {
    const result = await curl(['-N', '-p', '-x', `http://${out}`, 'telnet://tcp-echo:9000'], { input: 'hello tunnel\n', until: 'echo hello tunnel\n' });
    assert.equal(result.stdout, 'echo hello tunnel\n', `curl exited ${result.code}: ${result.stderr}`);
    await until('the tunnel counted by the caller\'s sidecar', async () => {
      const opened = samples(await callerMetrics(), 'istio_tcp_connections_opened_total').find(
        (s) => s.labels.reporter === 'source' && s.labels.destination_service === 'tcp-echo.default.svc.cluster.local',
      );
      return opened && opened.value >= 1 ? true : undefined;
    }, 15_000);
  });

  test('a plain call to a host outside the registry passes through under ALLOW_ANY (regression: 503 UH), labelled PassthroughCluster', async () => {
    const port = await listen(createServer((_req, res) => res.end('outside\n')));
    const reply = await viaProxy(out, `http://127.0.0.1:${port}/`);
    assert.equal(reply.status, 200, `${reply.status} ${reply.headers['x-sinew-response-flags']} ${reply.headers['x-sinew-response-details']}`);
    assert.equal(reply.body, 'outside\n');
    await until('the pass-through request in the caller\'s metrics', async () => {
      const s = samples(await callerMetrics(), 'istio_requests_total').find((x) => x.labels.destination_service_name === 'PassthroughCluster' && x.labels.response_code === '200');
      return s ? s : undefined;
    }, 15_000).then((s) => assert.equal(s.labels.destination_service, '127.0.0.1'));
  });

  test('HTTPS through the tunnel: to a TLS ServiceEntry routed by SNI, and passed through to a host outside the registry', async () => {
    // A TLS stand-in on loopback whose certificate names secure.example and localhost.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=secure.example',
      '-addext', 'subjectAltName=DNS:secure.example,DNS:localhost', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
    const port = await listen(createHttpsServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }, (req, res) => res.end(`tls ${req.headers.host}\n`)));
    await apply(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: secure-example}
spec:
  hosts: [secure.example]
  location: MESH_EXTERNAL
  ports: [{number: ${port}, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure-example}
spec:
  hosts: [secure.example]
  tls:
  - match: [{port: ${port}, sniHosts: [secure.example]}]
    route: [{destination: {host: secure.example, port: {number: ${port}}}}]
`);
    await callerHolds('the secure.example TLS route', (c) => JSON.stringify(c.routeConfigs).includes('secure-example/tls/0'));
    const routed = await curl(['--cacert', join(certDir, 'cert.pem'), '-x', `http://${out}`, `https://secure.example:${port}/`]);
    assert.equal(routed.stdout, `tls secure.example:${port}\n`, `curl exited ${routed.code}: ${routed.stderr}`);
    // As an app runs it: `sinew exec` gives the command the environment apps get, whose
    // HTTPS_PROXY sends curl through the caller's sidecar with CONNECT.
    const exec = await sinew(mesh.stateDir, 'exec', 'caller-v1', '--', 'curl', '-sS', '--cacert', join(certDir, 'cert.pem'), `https://secure.example:${port}/`);
    assert.equal(exec.stdout, `tls secure.example:${port}\n`, `sinew exec curl exited ${exec.status}: ${exec.stderr}`);
    const passed = await curl(['--cacert', join(certDir, 'cert.pem'), '-x', `http://${out}`, `https://localhost:${port}/`]);
    assert.equal(passed.stdout, `tls localhost:${port}\n`, `curl exited ${passed.code}: ${passed.stderr}`);
    await until('the HTTPS pass-through counted as PassthroughCluster TCP', async () => {
      const s = samples(await callerMetrics(), 'istio_tcp_connections_opened_total').find((x) => x.labels.destination_service_name === 'PassthroughCluster');
      return s ? true : undefined;
    }, 15_000);
  });

  test('regression: under REGISTRY_ONLY a host outside the registry gets 502 (was 503 UH), plain or tunnelled; the mesh still serves', async () => {
    const port = await listen(createServer((_req, res) => res.end('outside\n')));
    const sidecar = join(certDir, 'registry-only.yaml');
    writeFileSync(sidecar, 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\nspec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n');
    const applied = await sinew(mesh.stateDir, 'apply', '-f', sidecar);
    assert.equal(applied.status, 0, applied.stderr);
    try {
      await callerHolds('the block_all route', (c) => c.routeConfigs.some((r) => r.name === 'block_all'));
      const plain = await viaProxy(out, `http://127.0.0.1:${port}/`);
      assert.equal(plain.status, 502, plain.body);
      assert.equal(plain.headers['x-sinew-response-details'], 'outbound_traffic_policy_registry_only');
      const tunnel = await curl(['-p', '-x', `http://${out}`, '-o', '/dev/null', '-w', '%{http_connect}', `http://127.0.0.1:${port}/`]);
      assert.equal(tunnel.stdout, '502', tunnel.stderr);
      const reply = await ok(unary(clients.get('grpc_proxy (CONNECT)')!, 'SayHello', { name: 'still' }));
      assert.equal(reply.greeting, 'hello still', 'services in the registry are still reached');
    } finally {
      await sinew(mesh.stateDir, 'delete', '-f', sidecar);
    }
  });
});
