/**
 * gRPC unary calls through HTTP/2 proxies must not stall: with @grpc/grpc-js on both ends (real
 * sockets), a call through one proxy and through a sidecar pair (outbound listener taking h2c,
 * HTTP/2 upstream to an inbound listener, HTTP/2 to the app) costs little more than the same
 * call made directly, measured side by side in this test.
 *
 * The stall this guards against: a response's HEADERS+DATA and its trailers leave the proxy as
 * two writes, as do a request's HEADERS+DATA and its END_STREAM. On a socket without
 * TCP_NODELAY, Nagle's algorithm holds the second write until the first is acknowledged, and
 * the peer delays that ACK (Linux: 40 ms minimum on loopback, RFC 1122 §4.2.3.2), so every hop
 * would add ~40 ms to every call. The bound is relative to direct calls and generous (20 ms
 * of added median latency) so that a loaded machine does not fail it, while a 40 ms stall on
 * every call does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { createClusterManager, type UpstreamClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { cluster, endpoint, httpListener, proxyConfig, route, routeTo, table, vhost } from './support/config.js';

/** Sequential calls measured per target, after a warm-up. */
const CALLS = 20;
const WARM_UP_CALLS = 5;
/** Added median latency allowed through the proxies: well under the 40 ms of a delayed ACK. */
const MAX_ADDED_MEDIAN_MS = 20;

/** Messages as JSON, the service definition names its serializers (no generated code). */
const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
const GREETER: grpc.ServiceDefinition = {
  SayHello: {
    path: '/test.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};
const GreeterClient = grpc.makeGenericClientConstructor(GREETER, 'Greeter');

interface StartedProxy {
  proxy: Proxy;
  clusterManager: UpstreamClusterManager;
  port: number;
}

/** A proxy whose one HTTP/2 listener sends everything to `upstreamPort` over HTTP/2 (as a sidecar's listeners do for a gRPC port). */
async function startProxy(direction: 'outbound' | 'inbound', upstreamPort: number): Promise<StartedProxy> {
  const clusterManager = createClusterManager({});
  const config = proxyConfig({
    listeners: [httpListener('grpc', { routeConfigName: 'grpc' }, { direction })],
    routeConfigs: [table('grpc', [vhost('greeter', ['*'], [route('all', { path: { prefix: '/' } }, routeTo('greeter'))])])],
    clusters: [cluster('greeter', { protocol: 'http2' })],
    endpoints: [{ clusterName: 'greeter', endpoints: [endpoint(upstreamPort)] }],
  });
  const proxy = createProxy({ config, clusterManager, telemetry: false });
  try {
    await proxy.start();
  } catch (err) {
    await clusterManager.close();
    throw err;
  }
  return { proxy, clusterManager, port: proxy.listenerAddresses()['grpc'].port };
}

/** Median milliseconds of CALLS sequential unary calls to `target`. */
async function medianCallMs(target: string): Promise<number> {
  const client = new GreeterClient(target, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter.default.svc.cluster.local:50051' });
  try {
    const call = (name: string) =>
      new Promise<number>((resolve, reject) => {
        const started = performance.now();
        client.SayHello({ name }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, reply: { greeting?: string }) => {
          if (err) return reject(err);
          if (reply.greeting !== `hello ${name}`) return reject(new Error(`unexpected reply ${JSON.stringify(reply)}`));
          resolve(performance.now() - started);
        });
      });
    for (let i = 0; i < WARM_UP_CALLS; i++) await call(`warm-up ${i}`);
    const times: number[] = [];
    for (let i = 0; i < CALLS; i++) times.push(await call(`call ${i}`));
    times.sort((a, b) => a - b);
    return (times[CALLS / 2 - 1] + times[CALLS / 2]) / 2;
  } finally {
    client.close();
  }
}

describe('gRPC unary latency through HTTP/2 proxies', () => {
  const server = new grpc.Server();
  const proxies: StartedProxy[] = [];
  let serverPort = 0;
  let single: StartedProxy;
  let outbound: StartedProxy;

  before(async () => {
    server.addService(GREETER, {
      SayHello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, done: grpc.sendUnaryData<unknown>) => done(null, { greeting: `hello ${call.request.name}` }),
    });
    serverPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
    single = await startProxy('outbound', serverPort);
    proxies.push(single);
    const inbound = await startProxy('inbound', serverPort);
    proxies.push(inbound);
    outbound = await startProxy('outbound', inbound.port);
    proxies.push(outbound);
  });

  after(async () => {
    for (const p of proxies) {
      await p.proxy.close({ drainMs: 100 });
      await p.clusterManager.close();
    }
    server.forceShutdown();
  });

  test('gRPC unary calls through one proxy and a sidecar pair add under 20 ms of median latency', async (t) => {
    // Alternated, so that whatever else the machine does falls on every target alike.
    const direct = [await medianCallMs(`127.0.0.1:${serverPort}`)];
    const one = [await medianCallMs(`127.0.0.1:${single.port}`)];
    const pair = [await medianCallMs(`127.0.0.1:${outbound.port}`)];
    direct.push(await medianCallMs(`127.0.0.1:${serverPort}`));
    const baseline = Math.min(...direct);
    const figures = `direct ${direct.map((d) => d.toFixed(1)).join('/')} ms, one proxy ${one[0].toFixed(1)} ms, pair ${pair[0].toFixed(1)} ms (medians of ${CALLS} calls)`;
    t.diagnostic(figures);
    assert.ok(one[0] - baseline < MAX_ADDED_MEDIAN_MS, `one proxy adds ${(one[0] - baseline).toFixed(1)} ms: ${figures}`);
    assert.ok(pair[0] - baseline < MAX_ADDED_MEDIAN_MS, `a sidecar pair adds ${(pair[0] - baseline).toFixed(1)} ms: ${figures}`);
  });
});
