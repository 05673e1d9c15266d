/**
 * ServiceEntry DNS resolution in the proxy (src/proxy/upstream/dns.ts): `dns` clusters
 * resolve their endpoint names with the proxy's resolver (here a DNS server on loopback the
 * test controls, as `sinew proxy --dns-resolver` points a proxy at one), STRICT_DNS keeps every
 * address as a host and follows new answers on the refresh timer (an injected clock),
 * LOGICAL_DNS keeps one host, and a failed refresh keeps the last answer.
 *
 * Regression (dns_cluster_names_not_resolved): a `dns` cluster's hostnames were handed to
 * the connection as they were, so only names the system resolver knew could be reached,
 * every address of a name was one host, and nothing was ever re-resolved.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { SeededRandom } from '../../src/core/random.js';
import type { Cluster } from '../../src/api/proxy-config.js';
import { createClusterManager } from '../../src/proxy/upstream/cluster-manager.js';
import { serverLookup } from '../../src/proxy/upstream/dns.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { parseMeshConfig } from '../../src/config/mesh-config.js';
import { compile, parse } from '../compiler/support/mesh.js';
import { send, startEcho, type EchoServer } from './upstream-fixtures.js';

const NAME = 'echo.external.test';

function dnsCluster(mode: 'strict' | 'logical', refreshMs = 5000): Cluster {
  return { name: `outbound|80||${NAME}`, kind: 'dns', protocol: 'http1', connectTimeoutMs: 2000, lb: { policy: 'ROUND_ROBIN' }, dns: { mode, refreshMs } };
}

/** Polls `check` until it holds (the resolution runs on real sockets), failing after 10 s. */
async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('dns clusters resolve their names with the proxy resolver', () => {
  let dns: TestDnsServer;
  let echo: EchoServer;
  before(async () => {
    dns = await startDnsServer();
    echo = await startEcho('external');
  });
  after(async () => {
    await Promise.all([dns?.close(), echo?.close()]);
  });

  const start = (mode: 'strict' | 'logical', clock = new ManualClock(0), logLines: string[] = []) => {
    const logger = createLogger({ level: 'warn', write: (line) => logLines.push(line) });
    const m = createClusterManager({ clock, random: new SeededRandom(3), logger, dnsLookup: serverLookup([dns.address]) });
    const cluster = dnsCluster(mode);
    m.update([cluster], [{ clusterName: cluster.name, endpoints: [{ address: { host: NAME, port: echo.port }, labels: {}, health: 'HEALTHY' }] }]);
    return { m, clock, hosts: () => m.stats()[0].endpoints.map((e) => e.key).sort() };
  };

  test('a name only the DNS server knows reaches the stand-in through it', async () => {
    dns.set(NAME, ['127.0.0.1']);
    const { m } = start('strict');
    try {
      await m.dnsSettled();
      const reply = await send(m.get(`outbound|80||${NAME}`)!);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'external');
      assert.ok(dns.queries(NAME) >= 1);
    } finally {
      await m.close();
    }
  });

  test('STRICT_DNS: every address is a host, and the hosts follow the answer at each refresh', async () => {
    dns.set(NAME, ['127.0.0.1', '127.0.0.2']);
    const { m, clock, hosts } = start('strict');
    try {
      await m.dnsSettled();
      assert.deepEqual(hosts(), [`127.0.0.1:${echo.port}`, `127.0.0.2:${echo.port}`]);
      dns.set(NAME, ['127.0.0.3']);
      const asked = dns.queries(NAME);
      clock.advance(4999);
      assert.equal(dns.queries(NAME), asked, 'not re-resolved before the refresh rate');
      clock.advance(1);
      await eventually('the new answer', () => hosts().join() === `127.0.0.3:${echo.port}`);
    } finally {
      await m.close();
    }
  });

  test('LOGICAL_DNS (DNS_ROUND_ROBIN): one host, the first address of the latest answer', async () => {
    dns.set(NAME, ['127.0.0.1', '127.0.0.2']);
    const { m, clock, hosts } = start('logical');
    try {
      await m.dnsSettled();
      assert.deepEqual(hosts(), [`127.0.0.1:${echo.port}`]);
      assert.equal((await send(m.get(`outbound|80||${NAME}`)!)).body, 'external');
      dns.set(NAME, ['127.0.0.4', '127.0.0.1']);
      clock.advance(5000);
      await eventually('the logical host to move', () => hosts().join() === `127.0.0.4:${echo.port}`);
    } finally {
      await m.close();
    }
  });

  // Regression (dns_ttl_ignored): names were resolved again every refreshMs whatever the
  // answer's TTL said; Istio sets Envoy's respect_dns_ttl on every DNS cluster.
  test("the answer's TTL decides when a name is resolved again, shorter or longer than the refresh rate (respect_dns_ttl)", async () => {
    dns.set(NAME, ['127.0.0.1'], 2);
    const { m, clock, hosts } = start('strict');
    try {
      await m.dnsSettled();
      assert.deepEqual(hosts(), [`127.0.0.1:${echo.port}`]);
      dns.set(NAME, ['127.0.0.2'], 30);
      const asked = dns.queries(NAME);
      clock.advance(1999);
      assert.equal(dns.queries(NAME), asked, 'not before the 2 s TTL ran out');
      clock.advance(1);
      await eventually('the answer after the TTL', () => hosts().join() === `127.0.0.2:${echo.port}`);
      // Now the answer holds for 30 s: the 5 s refresh rate does not cut it short.
      dns.set(NAME, ['127.0.0.3'], 30);
      const again = dns.queries(NAME);
      clock.advance(29_999);
      assert.equal(dns.queries(NAME), again, 'not before the 30 s TTL ran out');
      clock.advance(1);
      await eventually('the answer after the second TTL', () => hosts().join() === `127.0.0.3:${echo.port}`);
    } finally {
      await m.close();
    }
  });

  // Regression (dns_refresh_rate_not_read): meshConfig dnsRefreshRate was reported as not
  // applied and names were resolved again every 60 s whatever it said.
  test('meshConfig dnsRefreshRate, through the compiler, is how often a DNS ServiceEntry is resolved again when answers carry no TTL', async () => {
    const mesh = parseMeshConfig('mesh.yaml', 'dnsRefreshRate: 3s\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n');
    assert.deepEqual(mesh.diagnostics, []);
    const config = compile(
      parse(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [${NAME}]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: ${echo.port}}]
  resolution: DNS
`),
      new Map(),
      { mesh: { dnsRefreshRateMs: mesh.settings!.dnsRefreshRateMs } },
    );
    const cluster = config.clusters.find((c) => c.name === `outbound|80||${NAME}`)!;
    assert.deepEqual(cluster.dns, { mode: 'strict', refreshMs: 3000 });
    dns.set(NAME, ['127.0.0.1']);
    const clock = new ManualClock(0);
    const m = createClusterManager({ clock, random: new SeededRandom(3), dnsLookup: serverLookup([dns.address]) });
    try {
      m.update(config.clusters.filter((c) => c.name === cluster.name), config.endpoints.filter((e) => e.clusterName === cluster.name));
      await m.dnsSettled();
      const hosts = () => m.stats()[0].endpoints.map((e) => e.key).sort();
      assert.deepEqual(hosts(), [`127.0.0.1:${echo.port}`]);
      assert.equal((await send(m.get(cluster.name)!)).body, 'external');
      dns.set(NAME, ['127.0.0.5']);
      const asked = dns.queries(NAME);
      clock.advance(2999);
      assert.equal(dns.queries(NAME), asked);
      clock.advance(1);
      await eventually('the address change to be picked up', () => hosts().join() === `127.0.0.5:${echo.port}`);
    } finally {
      await m.close();
    }
  });

  test('a dnsRefreshRate that is not a duration of at least 1ms refuses the mesh config, with the line', () => {
    for (const bad of ['fast', '0s', '0.5ms']) {
      const mesh = parseMeshConfig('mesh.yaml', `rootNamespace: istio-system\ndnsRefreshRate: ${bad}\n`);
      assert.equal(mesh.settings, undefined, bad);
      assert.deepEqual(mesh.diagnostics.map((d) => [d.level, d.code, d.path, d.source?.line]), [['error', 'SNW0436', 'dnsRefreshRate', 2]], bad);
    }
  });

  test('a refresh that fails keeps the last answer; a name never resolved gives 503 UH', async () => {
    dns.set(NAME, ['127.0.0.1']);
    const logLines: string[] = [];
    const { m, clock, hosts } = start('strict', new ManualClock(0), logLines);
    try {
      await m.dnsSettled();
      dns.set(NAME, []);
      clock.advance(5000);
      await eventually('the failed refresh to be logged', () => logLines.some((l) => l.includes('DNS resolution failed')));
      assert.deepEqual(hosts(), [`127.0.0.1:${echo.port}`]);
      assert.match(logLines.join('\n'), /"kept":\["127\.0\.0\.1"\]/);
    } finally {
      await m.close();
    }
    const unknown = createClusterManager({ clock: new ManualClock(0), dnsLookup: serverLookup([dns.address]) });
    try {
      const cluster = { ...dnsCluster('strict'), name: 'outbound|80||nowhere.test' };
      unknown.update([cluster], [{ clusterName: cluster.name, endpoints: [{ address: { host: 'nowhere.test', port: echo.port }, labels: {}, health: 'HEALTHY' }] }]);
      await unknown.dnsSettled();
      const got = unknown.get(cluster.name)!.acquire({});
      assert.equal(got.ok, false);
      assert.equal(!got.ok && got.flag, 'UH');
    } finally {
      await unknown.close();
    }
  });
});
