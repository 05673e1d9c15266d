/**
 * Transparent capture for real: two Linux network namespaces, each a "pod" with an app and
 * its sidecar (`sinew proxy --capture`, as UID 1337) behind `sinew iptables`' rules, joined
 * to this host by veth pairs; the control plane runs here in Kubernetes mode against a real
 * API server holding the two pods with their namespaces' addresses; each sidecar presents its
 * pod's service-account token, which the control plane reviews with the API server. Plain `curl` in the client
 * pod reaches the web pod by its Service name: through the client's sidecar (15001) and the
 * web pod's (15006), routed by a VirtualService, counted in Istio's metrics by both.
 *
 * Needs root, iproute2, iptables and the original-destination addon (npm run build:native);
 * skipped, saying which is missing, otherwise.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startKubeControlPlane, type KubeControlPlane } from '../../src/cli/kube-controlplane.js';
import { ORIGINAL_DST_ADDON } from '../../src/proxy/original-destination.js';
import { clusterSkip, startCluster, type TestCluster } from './support/cluster.js';
import { applyObjects, clientFor, createPod, createServiceAccount, installCrds, requestServiceAccountToken, until } from './support/objects.js';
import type { KubeClient } from '../../src/kube/api.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

const captureSkip: string | false =
  clusterSkip ||
  (process.getuid?.() !== 0
    ? 'network namespaces and iptables need root'
    : !has('ip') || !has('iptables-restore') || !has('curl') || !has('setpriv')
      ? 'needs iproute2, iptables, curl and setpriv (apt-get install iproute2 iptables curl util-linux)'
      : !existsSync(ORIGINAL_DST_ADDON)
        ? `no original-destination addon at ${ORIGINAL_DST_ADDON}: npm run build:native`
        : false);

// Addresses of this test's own namespaces only (veth pairs to this host), two /30 networks
// chosen by the process id so that two runs on one machine do not meet.
const suffix = String(process.pid % 100000);
const net16 = `10.${200 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 250}`;
const pods = {
  client: { ns: `snw-client-${suffix}`, hostIf: `snwc${suffix}`, podIf: `snwcp${suffix}`, hostIp: `${net16}.1`, ip: `${net16}.2` },
  web: { ns: `snw-web-${suffix}`, hostIf: `snww${suffix}`, podIf: `snwwp${suffix}`, hostIp: `${net16}.5`, ip: `${net16}.6` },
};

describe('transparent capture in network namespaces', { skip: captureSkip }, () => {
  let cluster: TestCluster;
  let client: KubeClient;
  let kube: KubeControlPlane;
  const children: ChildProcess[] = [];
  let clusterIp = '';
  let tokenDir: string | undefined;

  // The sidecar runs as UID 1337, whose own traffic the capture rules let out. The checkout
  // may sit under a directory only root may enter (a CI workspace under a 0700 home), where
  // UID 1337 could not load the proxy's code, so the proxy sees the repository through a bind
  // mount at /mnt/sinew instead. `ip netns exec` runs each command in a mount namespace of its
  // own, so the mount is private to that proxy and goes away with it.
  const proxyRepo = '/mnt/sinew';
  const asUid1337 = (args: string[]) => [
    'sh',
    '-c',
    `mount -t tmpfs -o mode=0755 sinew-capture /mnt && mkdir ${proxyRepo} && mount --bind "$0" ${proxyRepo} && exec setpriv --reuid 1337 --regid 1337 --clear-groups "$@"`,
    repo,
    ...args,
  ];
  const inNs = (ns: string, args: string[], asProxy = false, env: NodeJS.ProcessEnv = {}) => {
    const command = asProxy ? asUid1337(args) : args;
    const child = spawn('ip', ['netns', 'exec', ns, ...command], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    child.on('exit', (code) => {
      if (code && process.env.SINEW_TEST_VERBOSE) console.error(`${args.join(' ')} exited ${code}: ${stderr}`);
    });
    children.push(child);
    return child;
  };

  before(async () => {
    for (const p of Object.values(pods)) {
      await run('ip', ['netns', 'add', p.ns]);
      await run('ip', ['link', 'add', p.hostIf, 'type', 'veth', 'peer', 'name', p.podIf]);
      await run('ip', ['link', 'set', p.podIf, 'netns', p.ns]);
      await run('ip', ['addr', 'add', `${p.hostIp}/30`, 'dev', p.hostIf]);
      await run('ip', ['link', 'set', p.hostIf, 'up']);
      // Forwarding between the two veths only, not for the host's other interfaces.
      await run('sysctl', ['-qw', `net.ipv4.conf.${p.hostIf}.forwarding=1`]);
      const x = (args: string[]) => run('ip', ['netns', 'exec', p.ns, ...args]);
      await x(['ip', 'addr', 'add', `${p.ip}/30`, 'dev', p.podIf]);
      await x(['ip', 'link', 'set', p.podIf, 'up']);
      await x(['ip', 'link', 'set', 'lo', 'up']);
      await x(['ip', 'route', 'add', 'default', 'via', p.hostIp]);
    }

    cluster = await startCluster();
    client = clientFor(cluster);
    await installCrds(client);
    const svc = await client.request<any>('POST', '/api/v1/namespaces/default/services', {
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] } },
    });
    clusterIp = svc.spec.clusterIP;
    // Labelled as the injector labels a pod with a sidecar: its endpoints take mutual TLS.
    const injected = { 'security.istio.io/tlsMode': 'istio' };
    await createPod(client, 'default', { name: 'client-7d9c8b5f4-aaaaa', workload: 'client', labels: { app: 'client', ...injected }, ip: pods.client.ip, serviceAccount: 'client' });
    await createPod(client, 'default', { name: 'web-v1-7d9c8b5f4-bbbbb', workload: 'web-v1', labels: { app: 'web', version: 'v1', ...injected }, ip: pods.web.ip, serviceAccount: 'web', port: 8080 });
    // Each pod's projected service-account token (audience istio-ca, bound to the pod), in a
    // file of the mode kubelet gives it (0644) that the proxy, UID 1337, presents.
    tokenDir = await mkdtemp(join(tmpdir(), 'sinew-tokens-'));
    await chmod(tokenDir, 0o755);
    for (const [name, pod] of [['client', 'client-7d9c8b5f4-aaaaa'], ['web', 'web-v1-7d9c8b5f4-bbbbb']] as const) {
      await createServiceAccount(client, 'default', name);
      await writeFile(join(tokenDir, name), await requestServiceAccountToken(client, 'default', name, { pod }), { mode: 0o644 });
    }
    await applyObjects(client, [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'web', namespace: 'default' },
        spec: { hosts: ['web'], http: [{ match: [{ headers: { 'end-user': { exact: 'tester' } } }], fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }, route: [{ destination: { host: 'web' } }] }, { route: [{ destination: { host: 'web' } }] }] },
      },
    ]);
    // The control plane on the client's host-side address: both pods reach it.
    kube = await startKubeControlPlane({ client, host: pods.client.hostIp, apiPort: 0, pushPort: 0, monitoringPort: 0, debounceMs: 20 });

    // Each pod: the capture rules, the app, the sidecar.
    const sinew = join(repo, 'bin/sinew.js');
    for (const [name, p] of Object.entries(pods)) {
      await run('ip', ['netns', 'exec', p.ns, process.execPath, sinew, 'iptables']);
      // kube DNS's part: the Service name resolves to its cluster IP (ip netns exec mounts /etc/netns/<ns>/hosts).
      await mkdir(`/etc/netns/${p.ns}`, { recursive: true });
      await writeFile(`/etc/netns/${p.ns}/hosts`, `127.0.0.1 localhost\n${clusterIp} web web.default web.default.svc web.default.svc.cluster.local\n`);
      const pod = name === 'client' ? 'client-7d9c8b5f4-aaaaa' : 'web-v1-7d9c8b5f4-bbbbb';
      inNs(p.ns, [process.execPath, join(proxyRepo, 'bin/sinew.js'), 'proxy', '--xds', kube.controlPlane.addresses.push, '--node-from-env', '--capture', '--admin-port', '15000', '--metrics-port', '15090', '--health-port', '15021', '--metrics-host', '0.0.0.0', '--token-file', join(tokenDir, name)], true, {
        POD_NAME: pod,
        POD_NAMESPACE: 'default',
        ISTIO_META_WORKLOAD_NAME: name === 'client' ? 'client' : 'web-v1',
        SERVICE_ACCOUNT: name,
      });
    }
    inNs(pods.web.ns, [process.execPath, '-e', "require('http').createServer((q, s) => s.end('web-v1 says hello to ' + q.url + '\\nxfcc: ' + (q.headers['x-forwarded-client-cert'] || '(none)'))).listen(8080, '0.0.0.0')"]);
    for (const p of Object.values(pods)) {
      await until(async () => (await run('ip', ['netns', 'exec', p.ns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:15021/healthz/ready']).catch(() => ({ stdout: '' }))).stdout === '200', 60_000, `the ${p.ns} sidecar ready`);
    }
  });

  after(async () => {
    for (const c of children) {
      try {
        if (c.pid) process.kill(-c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await kube?.close();
    await cluster?.stop();
    if (tokenDir) await rm(tokenDir, { recursive: true, force: true });
    for (const p of Object.values(pods)) {
      await run('ip', ['netns', 'del', p.ns]).catch(() => undefined);
      await run('ip', ['link', 'del', p.hostIf]).catch(() => undefined);
      await rm(`/etc/netns/${p.ns}`, { recursive: true, force: true });
    }
  });

  const curl = async (args: string[]) => (await run('ip', ['netns', 'exec', pods.client.ns, 'curl', '-s', '--max-time', '10', ...args])).stdout;

  it('plain curl reaches the web pod by its Service name through both sidecars', async () => {
    const out = await curl(['-D', '-', 'http://web:8080/hello']);
    assert.match(out, /^HTTP\/1\.1 200/);
    assert.match(out, /web-v1 says hello to \/hello/);
    // The reply went through the client's sidecar (Envoy's upstream service time header).
    assert.match(out, /x-envoy-upstream-service-time/i);
  });

  it("routes by the VirtualService: the tester's requests get the injected fault", async () => {
    const out = await curl(['-D', '-', '-H', 'end-user: tester', 'http://web:8080/']);
    assert.match(out, /^HTTP\/1\.1 418/);
    assert.match(out, /x-sinew-response-flags: FI/i);
  });

  it("both sidecars count the requests in Istio's metrics, with each other's workload", async () => {
    const scrape = async (ip: string) => (await run('curl', ['-s', '--max-time', '10', `http://${ip}:15090/stats/prometheus`])).stdout;
    const source = await scrape(pods.client.ip);
    const destination = await scrape(pods.web.ip);
    const line = (text: string, reporter: string) => text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes(`reporter="${reporter}"`) && l.includes('response_code="200"'));
    const out = line(source, 'source');
    const inn = line(destination, 'destination');
    assert.ok(out, `client sidecar metrics:\n${source.slice(0, 2000)}`);
    assert.ok(inn, `web sidecar metrics:\n${destination.slice(0, 2000)}`);
    for (const l of [out, inn]) {
      assert.match(l, /source_workload="client"/);
      assert.match(l, /destination_workload="web-v1"/);
      assert.match(l, /destination_service="web\.default\.svc\.cluster\.local"/);
    }
  });

  it("the sidecars speak Istio mutual TLS with the cluster's CA: the web app sees the client pod's identity", async () => {
    const out = await curl(['http://web:8080/who']);
    // Set by the web pod's sidecar from the client certificate the client pod's sidecar showed.
    assert.match(out, /xfcc: By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/web;Hash=[0-9a-f]{64};Subject="";URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client$/m, out);
  });

  it('a STRICT PeerAuthentication in the cluster shuts out plaintext from outside the mesh, not the client pod', async () => {
    const fromHost = () => run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://${pods.web.ip}:8080/`]).then((r) => r.stdout, (err: { stdout?: string }) => err.stdout || 'refused');
    assert.equal(await fromHost(), '200', 'PERMISSIVE takes plaintext');
    await applyObjects(client, [{ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' }, spec: { mtls: { mode: 'STRICT' } } }]);
    try {
      await until(async () => (await fromHost()) !== '200', 15_000, 'STRICT in force at the web pod');
      assert.match(await curl(['-s', 'http://web:8080/strict']), /web-v1 says hello to \/strict/);
    } finally {
      await client.request('DELETE', '/apis/security.istio.io/v1/namespaces/default/peerauthentications/default');
    }
    await until(async () => (await fromHost()) === '200', 15_000, 'PERMISSIVE again');
  });

  it("both sidecars send their spans of a sampled request to the control plane's collector, with their service-account tokens", async () => {
    const traceId = randomBytes(16).toString('hex');
    await curl(['-o', '/dev/null', '-H', `traceparent: 00-${traceId}-${randomBytes(8).toString('hex')}-01`, 'http://web:8080/traced']);
    // Each sidecar's exporter sends its batch within its scheduled delay.
    await until(() => (kube.controlPlane.traces.get(traceId)?.spans.length ?? 0) >= 2, 30_000, 'spans from both sidecars');
    const services = new Set(kube.controlPlane.traces.get(traceId)!.spans.map((s) => s.service));
    assert.deepEqual([...services].sort(), ['client.default', 'web-v1.default'], "a span from each pod's sidecar");
  });

  it('a non-HTTP connection to a destination outside the mesh passes through unchanged', async () => {
    // A raw TCP echo on this host, reached from the client pod: captured, not HTTP, passed through.
    const net = await import('node:net');
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => server.listen(0, pods.client.hostIp, () => resolve()));
    try {
      const port = (server.address() as import('node:net').AddressInfo).port;
      const out = await run('ip', ['netns', 'exec', pods.client.ns, 'sh', '-c', `printf 'ping\\n' | curl -s --max-time 5 telnet://${pods.client.hostIp}:${port} || true`]);
      assert.equal(out.stdout.trim(), 'ping');
    } finally {
      server.close();
    }
  });
});
