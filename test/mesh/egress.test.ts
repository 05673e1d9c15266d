/**
 * Istio's egress tasks through `sinew up`, with curl as the client and local stand-ins for
 * the external hosts — never the internet: a plain HTTP server for httpbin.org, and TLS
 * servers with a CA of their own for www.google.com and edition.cnn.com. The names resolve
 * to loopback through a DNS server the test runs (SINEW_DNS_RESOLVERS, which `sinew up`
 * passes to every proxy), so they are reached as Istio reaches them: a ServiceEntry with
 * `resolution: DNS`, resolved by the sidecar.
 *
 * - egress-control (test/fixtures/istio/.../egress/egress-control, istio.io's snippets):
 *   under REGISTRY_ONLY an unknown HTTP host gets 502 and an unknown TLS host no handshake;
 *   a ServiceEntry lets httpbin.org through; a VirtualService timeout of 3s applies to it;
 *   an HTTPS ServiceEntry passes the client's TLS through untouched (the client verifies the
 *   stand-in's certificate, the stand-in sees the client's SNI).
 * - egress-tls-origination (fixtures/egress/tls-origination.yaml): the app sends plain HTTP,
 *   the sidecar opens TLS with the host's SNI and no ALPN (Istio offers none to an HTTP/1.1
 *   cluster), verifying the server against the CA of the credential; a wrong CA gets 503 UF;
 *   MUTUAL presents the client certificate of the credential.
 *
 * Regressions: dns_cluster_names_not_resolved (a ServiceEntry DNS host was resolved by the
 * system, which knows none of these names) and dr_credential_never_pushed (a DestinationRule
 * credentialName left its clusters warming, 503 UH, for good).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { fixtures } from '../support/reference-corpus.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { b64, makeCa, makeClientCertificate, type Pem } from '../support/tls.js';
import { curlVia, headerOf, statusOf, tlsStandIn, type TlsStandIn } from './egress-support.js';
import { repo, sinew, startMesh, until, type Mesh } from './support.js';

const here = join(repo, 'test/mesh/fixtures/egress');
const egressControl = join(fixtures.istio, 'data/istio.io/traffic-management/egress/egress-control');

let dir: string;
let dns: TestDnsServer;
let mesh: Mesh;
let outbound: string;
let externalCa: Pem;
let clientCa: Pem;
let httpbin: http.Server;
let httpbinPort: number;
let httpbinHits: string[] = [];
let google: TlsStandIn;
let cnn: TlsStandIn;
const previousResolvers = process.env.SINEW_DNS_RESOLVERS;

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

/** An istio.io snippet with `targetPort` added to each port: the stand-in cannot listen on 80 or 443. */
function withTargetPort(path: string, port: number): string {
  const doc = parseDocument(readFileSync(path, 'utf8'));
  for (const p of (doc.toJS() as { spec: { ports: unknown[] } }).spec.ports.keys()) doc.setIn(['spec', 'ports', p, 'targetPort'], port);
  return doc.toString();
}

async function apply(name: string, text: string): Promise<void> {
  const res = await sinew(mesh.stateDir, 'apply', '-f', file(name, text));
  assert.equal(res.status, 0, res.stderr);
}

/** curl from the curl workload: through its sidecar's outbound listener, as HTTP_PROXY / HTTPS_PROXY send it. */
const curl = (url: string, extra: string[] = []) => curlVia(outbound, url, extra);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-egress-'));
  externalCa = await makeCa('External Services CA');
  clientCa = await makeCa('Client CA');
  httpbin = http.createServer((req, res) => {
    httpbinHits.push(req.url ?? '');
    const delay = /^\/delay\/(\d+)$/.exec(req.url ?? '');
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers: req.headers, url: req.url }));
    if (delay) {
      const timer = setTimeout(answer, Number(delay[1]) * 1000);
      res.on('close', () => clearTimeout(timer));
    } else answer();
  });
  httpbin.listen(0, '127.0.0.1');
  await new Promise((r) => httpbin.once('listening', r));
  httpbinPort = (httpbin.address() as AddressInfo).port;
  google = await tlsStandIn(externalCa, clientCa, ['www.google.com'], 'google stand-in\n');
  cnn = await tlsStandIn(externalCa, clientCa, ['edition.cnn.com'], 'cnn stand-in: politics\n');
  dns = await startDnsServer({ 'httpbin.org': ['127.0.0.1'], 'www.google.com': ['127.0.0.1'], 'edition.cnn.com': ['127.0.0.1'] });
  // `sinew up` passes its environment on to every proxy it starts.
  process.env.SINEW_DNS_RESOLVERS = dns.address;
  try {
    mesh = await startMesh([join(here, 'mesh.yaml')], { args: ['--mesh-config', join(here, 'mesh-config.yaml')] });
  } finally {
    if (previousResolvers === undefined) delete process.env.SINEW_DNS_RESOLVERS;
    else process.env.SINEW_DNS_RESOLVERS = previousResolvers;
  }
  const status = await mesh.status();
  outbound = status.workloads.find((w) => w.name === 'curl-v1')!.replicas[0].proxy.outbound!;
  assert.ok(outbound, 'the curl workload has an outbound listener');
});

after(async () => {
  await mesh?.stop();
  httpbin?.closeAllConnections();
  await Promise.all([
    httpbin ? new Promise((r) => httpbin.close(r)) : undefined,
    google?.close(),
    cnn?.close(),
    dns?.close(),
  ]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Istio's egress-control task through sinew up (REGISTRY_ONLY)", () => {
  test('an HTTP host outside the registry gets 502 and a TLS one no handshake; the stand-ins see nothing', async () => {
    const plain = await curl('http://httpbin.org/headers');
    assert.equal(statusOf(plain), 502, plain.stdout + plain.stderr);
    const tls = await curl('https://www.google.com/', ['--cacert', file('external-ca.pem', externalCa.cert)]);
    assert.notEqual(tls.code, 0, `the TLS client must fail: ${tls.stdout}`);
    assert.deepEqual(httpbinHits, []);
    assert.equal(google.seen.length + google.failures, 0, 'no connection reached the stand-in');
  });

  test('a ServiceEntry (resolution DNS) lets httpbin.org through: the sidecar resolves the name and the stand-in answers', async () => {
    await apply('httpbin-ext.yaml', withTargetPort(join(egressControl, 'snip_access_an_external_http_service_1.yaml'), httpbinPort));
    const reply = await until('httpbin.org through its ServiceEntry', async () => {
      const r = await curl('http://httpbin.org/headers');
      return statusOf(r) === 200 ? r : undefined;
    });
    assert.match(reply.stdout, /"host":"httpbin\.org"/);
    assert.ok(httpbinHits.includes('/headers'));
    assert.ok(dns.queries('httpbin.org') >= 1, 'the sidecar asked the DNS server');
  });

  test('a VirtualService timeout of 3s on the external host: /delay/5 gets 504 UT', async () => {
    await apply('httpbin-ext-vs.yaml', readFileSync(join(egressControl, 'snip_manage_traffic_to_external_services_2.yaml'), 'utf8'));
    const timedOut = await until('the 3s timeout', async () => {
      const r = await curl('http://httpbin.org/delay/5');
      return statusOf(r) === 504 ? r : undefined;
    });
    assert.equal(headerOf(timedOut, 'x-sinew-response-flags'), 'UT');
    assert.ok(httpbinHits.includes('/delay/5'), 'the request reached the stand-in before the timeout');
  });

  test('an HTTPS ServiceEntry: the client TLS passes through by SNI, the certificate verified by curl, the SNI seen by the stand-in', async () => {
    await apply('google.yaml', withTargetPort(join(egressControl, 'snip_access_an_external_https_service_1.yaml'), google.port));
    const reply = await until('www.google.com through its ServiceEntry', async () => {
      const r = await curl('https://www.google.com/', ['--cacert', join(dir, 'external-ca.pem')]);
      return r.code === 0 && statusOf(r) === 200 ? r : undefined;
    });
    assert.match(reply.stdout, /google stand-in/);
    // curl verified the stand-in's own certificate: the sidecar did not terminate the session.
    assert.equal(google.seen.at(-1)?.servername, 'www.google.com');
    // A TLS host still outside the registry keeps failing.
    const unknown = await curl('https://edition.cnn.com/', ['--cacert', join(dir, 'external-ca.pem')]);
    assert.notEqual(unknown.code, 0, unknown.stdout);
    assert.equal(cnn.seen.length + cnn.failures, 0);
  });
});

describe("Istio's egress-tls-origination task through sinew up", () => {
  const origination = (mode: string, credential: string) =>
    readFileSync(join(here, 'tls-origination.yaml'), 'utf8').replaceAll('${CNN_PORT}', String(cnn.port)).replaceAll('${MODE}', mode).replaceAll('${CREDENTIAL}', credential);
  const secret = (name: string, data: Record<string, string>) =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: default}\ntype: ${data['tls.crt'] ? 'kubernetes.io/tls' : 'Opaque'}\ndata:\n${Object.entries(data).map(([k, v]) => `  ${k}: ${b64(v)}`).join('\n')}\n`;

  test('SIMPLE: plain HTTP from the app leaves as TLS with SNI edition.cnn.com, no ALPN, the server verified against the credential CA', async () => {
    await apply('cnn-ca.yaml', secret('cnn-ca', { 'ca.crt': externalCa.cert }));
    await apply('cnn.yaml', origination('SIMPLE', 'cnn-ca'));
    const reply = await until('edition.cnn.com over TLS origination', async () => {
      const r = await curl('http://edition.cnn.com/politics');
      return statusOf(r) === 200 ? r : undefined;
    });
    assert.match(reply.stdout, /cnn stand-in: politics/);
    const seen = cnn.seen.at(-1)!;
    assert.equal(seen.servername, 'edition.cnn.com');
    assert.equal(seen.alpn, false, 'Istio offers no ALPN to an HTTP/1.1 cluster');
    assert.equal(seen.clientCn, undefined, 'SIMPLE presents no client certificate');
  });

  test('a credential with the wrong CA: 503 UF (retried: URX), and the stand-in saw the handshake refused', async () => {
    const otherCa = await makeCa('Some other CA');
    await apply('wrong-ca.yaml', secret('wrong-ca', { 'ca.crt': otherCa.cert }));
    const failuresBefore = cnn.failures;
    await apply('cnn.yaml', origination('SIMPLE', 'wrong-ca'));
    const refused = await until('the wrong CA to be used', async () => {
      const r = await curl('http://edition.cnn.com/politics');
      return statusOf(r) === 503 ? r : undefined;
    });
    // UF, after Istio's default retries on connect-failure (URX).
    assert.match(headerOf(refused, 'x-sinew-response-flags') ?? '', /(^|,)UF(,|$)/);
    assert.equal(headerOf(refused, 'x-sinew-response-details'), 'upstream_connect_failure');
    assert.ok(cnn.failures > failuresBefore, 'the stand-in saw the client abort the handshake');
  });

  test('MUTUAL: the sidecar presents the credential client certificate, which the server verifies', async () => {
    const client = await makeClientCertificate(clientCa, 'curl.default.client');
    await apply('client-credential.yaml', secret('client-credential', { 'tls.crt': client.cert, 'tls.key': client.key, 'ca.crt': externalCa.cert }));
    await apply('cnn.yaml', origination('MUTUAL', 'client-credential'));
    await until('a client certificate at the stand-in', async () => {
      const r = await curl('http://edition.cnn.com/politics');
      return statusOf(r) === 200 && cnn.seen.at(-1)?.clientCn ? r : undefined;
    });
    assert.equal(cnn.seen.at(-1)!.clientCn, 'curl.default.client');
    assert.equal(cnn.seen.at(-1)!.servername, 'edition.cnn.com');
  });
});
