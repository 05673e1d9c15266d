/**
 * istio.io's "Ingress Gateway without TLS Termination" task through `sinew up`
 * (fixtures/sni-passthrough): the ingress gateway's port 443 in PASSTHROUGH mode, a
 * VirtualService `tls` rule routing the SNI nginx.example.com to an nginx that terminates TLS
 * with its own certificate. curl and `openssl s_client` are the clients; they must see the
 * backend's certificate (its issuer and SAN, which the gateway has no credential for) and the
 * ALPN protocol the backend chose, while a name no rule routes is refused.
 *
 * Regression (gateway_tls_routes_ignored): a PASSTHROUGH port used only the tcp rules of the
 * VirtualServices bound to it, so the task's tls rule routed nothing and curl got a closed
 * connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeServerCertificate } from '../support/tls.js';
import { get, repo, startMesh, until, type Mesh, runCommand as run, metricSamples as samples, type CommandRun as Run } from './support.js';

const fixtures = join(repo, 'test/mesh/fixtures/sni-passthrough');



let mesh: Mesh | undefined;
let dir: string;
let https443: string;
let gatewayMetrics: string;
let caFile: string;

/** curl as the task runs it: --resolve so that SNI and Host carry the name, the backend's CA to verify. */
function curl(host: string, extra: string[] = []): Promise<Run> {
  const [ip, port] = https443.split(':');
  return run('curl', ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code} %{http_version}', '--resolve', `${host}:${port}:${ip}`, '--cacert', caFile, ...extra, `https://${host}:${port}/`]);
}

/** What `openssl s_client` is shown for `serverName`, offering `alpn`. */
async function sClient(serverName: string, alpn: string): Promise<{ output: string; certificate: string }> {
  const r = await run('openssl', ['s_client', '-connect', https443, '-servername', serverName, '-alpn', alpn, '-CAfile', caFile], '');
  const output = r.stdout + r.stderr;
  return { output, certificate: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0] ?? '' };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-sni-passthrough-'));
  // As the task makes them with openssl: a root for example.com, and nginx.example.com's certificate signed by it.
  const ca = await makeCa('example.com');
  const nginx = await makeServerCertificate(ca, ['nginx.example.com']);
  caFile = join(dir, 'example.com.crt');
  writeFileSync(caFile, ca.cert);
  writeFileSync(join(dir, 'nginx.example.com.crt'), nginx.cert);
  writeFileSync(join(dir, 'nginx.example.com.key'), nginx.key);
  const manifest = readFileSync(join(fixtures, 'mesh.yaml'), 'utf8')
    .replaceAll('NGINX', join(fixtures, 'nginx.mjs'))
    .replaceAll('CERT_FILE', join(dir, 'nginx.example.com.crt'))
    .replaceAll('KEY_FILE', join(dir, 'nginx.example.com.key'));
  writeFileSync(join(dir, 'mesh.yaml'), manifest);
  mesh = await startMesh([join(dir, 'mesh.yaml')]);
  const gateway = (await mesh.status()).gateways.find((g) => g.name === 'istio-ingressgateway')!.replicas[0].proxy;
  https443 = gateway.servers!['443'];
  gatewayMetrics = gateway.metrics!;
  assert.ok(https443 && gatewayMetrics, `the gateway's servers: ${JSON.stringify(gateway)}`);
});

after(async () => {
  await mesh?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("istio.io's ingress SNI passthrough task through sinew up", { timeout: 180_000 }, () => {
  test('curl reaches nginx through the gateway; nginx terminated the TLS, with the SNI the client sent, over the ALPN it chose', async () => {
    const reply = await until('nginx through the PASSTHROUGH port', async () => {
      const r = await curl('nginx.example.com');
      return r.code === 0 ? r : undefined;
    });
    const [body, status] = [reply.stdout.slice(0, reply.stdout.lastIndexOf('\n')), reply.stdout.split('\n').at(-1)];
    // curl offers h2 and http/1.1; the backend prefers h2, so HTTP/2 says ALPN went end to end.
    assert.equal(status, '200 2');
    assert.match(body.trim(), /^Welcome to nginx! \(my-nginx, HTTP\/2\.0, SNI nginx\.example\.com\)$/);
  });

  test('openssl s_client is shown the backend certificate (issuer example.com, SAN nginx.example.com), verified, and the ALPN the backend picked', async () => {
    for (const alpn of ['h2', 'http/1.1']) {
      const shown = await sClient('nginx.example.com', alpn);
      assert.match(shown.output, /Verify return code: 0 \(ok\)/, shown.output);
      assert.match(shown.output, new RegExp(`ALPN protocol: ${alpn.replace('/', '\\/')}`), shown.output);
      const details = (await run('openssl', ['x509', '-noout', '-issuer', '-ext', 'subjectAltName'], shown.certificate)).stdout;
      assert.match(details, /issuer=.*CN\s*=\s*example\.com/);
      assert.match(details, /DNS:nginx\.example\.com/);
    }
  });

  test('a name no tls rule routes is refused: the gateway closes the connection before any certificate', async () => {
    const shown = await sClient('other.example.com', 'h2');
    assert.equal(shown.certificate, '', shown.output);
    const r = await curl('other.example.com');
    assert.notEqual(r.code, 0, 'curl fails');
    assert.doesNotMatch(r.stdout, /Welcome to nginx/);
  });

  test("the gateway's istio_tcp_* metrics count the passed-through connections to my-nginx", async () => {
    const before = await get(`http://${gatewayMetrics}/stats/prometheus`);
    const counted = (text: string) => samples(text, 'istio_tcp_connections_opened_total').find((x) => x.labels.reporter === 'source' && x.labels.destination_service === 'my-nginx.default.svc.cluster.local');
    const already = counted(before.body)?.value ?? 0;
    const reply = await until('nginx through the PASSTHROUGH port', async () => {
      const r = await curl('nginx.example.com');
      return r.code === 0 ? r : undefined;
    });
    assert.match(reply.stdout, /Welcome to nginx/);
    const opened = await until('the gateway to count the connection', async () => {
      const s = counted((await get(`http://${gatewayMetrics}/stats/prometheus`)).body);
      return s && s.value > already ? s : undefined;
    }, 20_000);
    assert.equal(opened.labels.destination_service_name, 'my-nginx');
    const m = await get(`http://${gatewayMetrics}/stats/prometheus`);
    const received = samples(m.body, 'istio_tcp_received_bytes_total').find((x) => x.labels.destination_service === 'my-nginx.default.svc.cluster.local');
    assert.ok(received && received.value > 0, 'bytes received counted');
  });
});
