/**
 * Istio's egress-gateway-tls-origination task through `sinew up` (fixtures/egress/
 * egress-gateway-tls-origination.yaml), with curl as the client and a TLS stand-in with a CA
 * of its own for edition.cnn.com, resolved by the proxies through a DNS server the test runs.
 * The manifests hold a Gateway selecting `istio: egressgateway`, so `sinew up` runs Istio's
 * egress gateway beside the ingress one; the task's config is applied afterwards, as the task
 * applies it. The request's path, sidecar -> egress gateway (Istio mutual TLS) -> edition.cnn.com
 * (TLS originated by the gateway), shows in the gateway's metrics and in what the stand-in saw.
 *
 * Regression (no_egress_gateway): `sinew up` ran only the ingress gateway, so a VirtualService
 * routing to istio-egressgateway.istio-system.svc.cluster.local had nowhere to go.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { b64, makeCa, type Pem } from '../support/tls.js';
import { curlVia, statusOf, tlsStandIn, type TlsStandIn } from './egress-support.js';
import { get, repo, sinew, startMesh, until, type Mesh } from './support.js';

const here = join(repo, 'test/mesh/fixtures/egress');

let dir: string;
let dns: TestDnsServer;
let mesh: Mesh;
let outbound: string;
let ca: Pem;
let cnn: TlsStandIn;
let egressMetrics: string;
const previousResolvers = process.env.SINEW_DNS_RESOLVERS;

async function apply(name: string, text: string): Promise<void> {
  const path = join(dir, name);
  writeFileSync(path, text);
  const res = await sinew(mesh.stateDir, 'apply', '-f', path);
  assert.equal(res.status, 0, res.stderr);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-egress-gateway-'));
  ca = await makeCa('External Services CA');
  cnn = await tlsStandIn(ca, ca, ['edition.cnn.com'], 'cnn stand-in: politics\n');
  dns = await startDnsServer({ 'edition.cnn.com': ['127.0.0.1'] });
  // The task's Gateway for the egress gateway is in the manifests, so sinew up runs one.
  const gateway = readFileSync(join(here, 'egress-gateway-tls-origination.yaml'), 'utf8').split(/^---$/m).find((d) => /kind: Gateway/.test(d))!;
  writeFileSync(join(dir, 'egress-gateway.yaml'), gateway);
  process.env.SINEW_DNS_RESOLVERS = dns.address;
  try {
    mesh = await startMesh([join(here, 'mesh.yaml'), join(dir, 'egress-gateway.yaml')], { args: ['--mesh-config', join(here, 'mesh-config.yaml')] });
  } finally {
    if (previousResolvers === undefined) delete process.env.SINEW_DNS_RESOLVERS;
    else process.env.SINEW_DNS_RESOLVERS = previousResolvers;
  }
  const status = await mesh.status();
  outbound = status.workloads.find((w) => w.name === 'curl-v1')!.replicas[0].proxy.outbound!;
  const egress = status.gateways.find((g) => g.name === 'istio-egressgateway');
  assert.ok(egress, `sinew up runs the egress gateway: ${status.gateways.map((g) => g.name).join(', ')}`);
  assert.equal(egress.namespace, 'istio-system');
  egressMetrics = egress.replicas[0].proxy.metrics!;
});

after(async () => {
  await mesh?.stop();
  await Promise.all([cnn?.close(), dns?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Istio's egress-gateway-tls-origination task through sinew up", () => {
  test('the egress gateway is in the registry as Istio installs it: its Service in istio-system', async () => {
    const res = await sinew(mesh.stateDir, 'get', 'service', 'istio-egressgateway', '-n', 'istio-system', '-o', 'json');
    assert.equal(res.status, 0, res.stderr);
    const service = JSON.parse(res.stdout) as { spec: { selector: Record<string, string>; ports: { name: string; port: number }[] } };
    assert.deepEqual(service.spec.selector, { istio: 'egressgateway' });
    // Named as Istio's chart names them (egress_gateway_port_named_http: port 80 was `http`).
    assert.deepEqual(service.spec.ports.map((p) => `${p.name}:${p.port}`).sort(), ['http2:80', 'https:443']);
  });

  test('plain HTTP from the app goes sidecar -> egress gateway -> edition.cnn.com over TLS the gateway originates', async () => {
    await apply('cnn-ca.yaml', `apiVersion: v1\nkind: Secret\nmetadata: {name: cnn-ca, namespace: istio-system}\ntype: Opaque\ndata:\n  ca.crt: ${b64(ca.cert)}\n`);
    await apply('task.yaml', readFileSync(join(here, 'egress-gateway-tls-origination.yaml'), 'utf8').replaceAll('${CNN_PORT}', String(cnn.port)));
    const reply = await until('edition.cnn.com through the egress gateway', async () => {
      const r = await curlVia(outbound, 'http://edition.cnn.com/politics');
      if (statusOf(r) !== 200) throw new Error(`the last answer: ${r.stdout}${r.stderr}`);
      return r;
    });
    assert.match(reply.stdout, /cnn stand-in: politics/);
    const seen = cnn.seen.at(-1)!;
    assert.equal(seen.servername, 'edition.cnn.com', 'the gateway sent the SNI of the host');
    assert.equal(seen.alpn, false, 'Istio offers no ALPN to an HTTP/1.1 cluster');
    // The gateway carried it: its metrics count the request to edition.cnn.com.
    const metrics = await until('the egress gateway to count the request', async () => {
      const m = await get(`http://${egressMetrics}/stats/prometheus`);
      return /istio_requests_total\{[^}]*destination_service="edition\.cnn\.com"[^}]*response_code="200"/.test(m.body) ? m.body : undefined;
    }, 20_000);
    assert.match(metrics, /istio_requests_total\{[^}]*source_workload="curl-v1"|istio_requests_total\{[^}]*destination_service="edition\.cnn\.com"/);
  });
});
