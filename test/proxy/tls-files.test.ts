/**
 * Certificates named by file, compiled from Istio YAML and served by a real proxy, checked with
 * curl and `openssl s_client`:
 *
 * - a Gateway server `tls` with `serverCertificate` / `privateKey` (SIMPLE) and `caCertificates`
 *   (MUTUAL), read by the gateway from this machine's files (Istio's older secure-ingress
 *   task mounts them at /etc/istio/ingressgateway-certs);
 * - rotation by rewriting the files: new connections get the new certificate, an open one
 *   carries on;
 * - a file that cannot be read: that server is not served (never TLS with no certificate),
 *   the others are, and the log names the path;
 * - TLS origination from files (DestinationRule `tls` MUTUAL with `clientCertificate`,
 *   `privateKey`, `caCertificates`, Istio's older egress-tls-origination task) to a TLS
 *   stand-in on loopback with a CA of its own.
 *
 * Regression (tls_files_not_read, SNW1011 / SNW0520): certificates named by file were not read;
 * such a gateway server was left out and origination verified against the system's CAs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { createLogger } from '../../src/core/logger.js';
import { allocatePort } from '../../src/mesh/supervisor.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { compile, parse } from '../compiler/support/mesh.js';
import { makeCa, makeClientCertificate, makeServerCertificate, type Pem } from '../support/tls.js';
import { run, tlsStandIn, type TlsStandIn } from '../mesh/egress-support.js';
import { until } from '../mesh/support.js';

let dir: string;
let ca: Pem;
let clientCa: Pem;
let client: Pem;
let rotated: Pem;
let backend: http.Server;
let backendPort: number;
let external: TlsStandIn;
let externalCa: Pem;
const proxies: Proxy[] = [];
const logLines: string[] = [];

const file = (name: string) => join(dir, name);
/** Writes a file the way a secret volume is updated: whole, by rename. */
const writeAtomically = (name: string, text: string) => {
  writeFileSync(file(`${name}.tmp`), text);
  renameSync(file(`${name}.tmp`), file(name));
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-tls-files-'));
  ca = await makeCa('Gateway CA');
  clientCa = await makeCa('Client CA');
  externalCa = await makeCa('External CA');
  const server = await makeServerCertificate(ca, ['simple.example.com', 'mutual.example.com']);
  rotated = await makeServerCertificate(ca, ['simple.example.com', 'mutual.example.com', 'rotated.example.com']);
  client = await makeClientCertificate(clientCa, 'client.example.com');
  writeFileSync(file('ca.crt'), ca.cert);
  writeFileSync(file('tls.crt'), server.cert);
  writeFileSync(file('tls.key'), server.key);
  writeFileSync(file('client-ca.crt'), clientCa.cert);
  writeFileSync(file('client.crt'), client.cert);
  writeFileSync(file('client.key'), client.key);
  writeFileSync(file('external-ca.crt'), externalCa.cert);
  backend = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`backend saw ${req.headers.host}${req.url}\n`));
  backend.listen(0, '127.0.0.1');
  await new Promise((r) => backend.once('listening', r));
  backendPort = (backend.address() as AddressInfo).port;
  external = await tlsStandIn(externalCa, clientCa, ['api.external.test'], 'external stand-in\n');
});

after(async () => {
  await Promise.all(proxies.map((p) => p.close({ drainMs: 100 })));
  backend?.closeAllConnections();
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
  await external?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function startProxy(config: ProxyConfig): Promise<Proxy> {
  const logger = createLogger({ level: 'warn', write: (line) => logLines.push(line) });
  const proxy = createProxy({ config, logger, adminPort: 0, adminHost: '127.0.0.1' });
  proxies.push(proxy);
  await proxy.start();
  await proxy.settled();
  return proxy;
}

const backendEntry = () => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: istio-system}
spec:
  hosts: [backend.internal]
  location: MESH_INTERNAL
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${backendPort}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: istio-system}
spec:
  hosts: [simple.example.com, mutual.example.com, missing.example.com]
  gateways: [secure]
  http: [{route: [{destination: {host: backend.internal, port: {number: 8080}}}]}]
`;

const openssl = (port: number, servername: string, extra: string[] = []) =>
  run('sh', ['-c', `echo | openssl s_client -connect 127.0.0.1:${port} -servername ${servername} -CAfile ${file('ca.crt')} ${extra.join(' ')} 2>&1`]);

/** The DNS names of the certificate a TLS server presents for `servername` (verified against the gateway CA). */
function servedNames(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: ca.cert }, () => {
      resolve(socket.getPeerCertificate().subjectaltname ?? '');
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('a Gateway server with its certificate named by file', () => {
  let proxy: Proxy;
  const ports = { simple: 0, mutual: 0, missing: 0 };

  before(async () => {
    ports.simple = await allocatePort();
    ports.mutual = await allocatePort();
    ports.missing = await allocatePort();
    const resources = parse(`${backendEntry()}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [simple.example.com]
    tls: {mode: SIMPLE, serverCertificate: ${file('tls.crt')}, privateKey: ${file('tls.key')}}
  - port: {number: 8443, name: https-mutual, protocol: HTTPS}
    hosts: [mutual.example.com]
    tls: {mode: MUTUAL, serverCertificate: ${file('tls.crt')}, privateKey: ${file('tls.key')}, caCertificates: ${file('client-ca.crt')}}
  - port: {number: 9443, name: https-missing, protocol: HTTPS}
    hosts: [missing.example.com]
    tls: {mode: SIMPLE, serverCertificate: ${file('absent.crt')}, privateKey: ${file('absent.key')}}
`);
    const config = compile(resources, new Map(), {
      mode: 'router',
      workload: 'istio-ingressgateway',
      namespace: 'istio-system',
      labels: { istio: 'ingressgateway' },
      ports: { gateway: { 443: { host: '127.0.0.1', port: ports.simple }, 8443: { host: '127.0.0.1', port: ports.mutual }, 9443: { host: '127.0.0.1', port: ports.missing } } },
    });
    assert.ok(!JSON.stringify(config).includes('PRIVATE KEY'), 'the push carries paths, never a key');
    proxy = await startProxy(config);
  });

  test('SIMPLE: curl verifies the certificate read from the files and reaches the backend', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', file('ca.crt'), '--resolve', `simple.example.com:${ports.simple}:127.0.0.1`, `https://simple.example.com:${ports.simple}/status`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /backend saw simple\.example\.com.*\/status/);
    const s = await openssl(ports.simple, 'simple.example.com');
    assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
  });

  test('MUTUAL: a client without a certificate is refused; one signed by caCertificates gets through', async () => {
    const url = `https://mutual.example.com:${ports.mutual}/mutual`;
    const resolve = ['--resolve', `mutual.example.com:${ports.mutual}:127.0.0.1`];
    const without = await run('curl', ['-sS', '--max-time', '10', '--cacert', file('ca.crt'), ...resolve, url]);
    assert.notEqual(without.code, 0, `refused without a client certificate: ${without.stdout}`);
    const rogue = await makeClientCertificate(await makeCa('Rogue CA'), 'rogue.example.com');
    writeFileSync(file('rogue.crt'), rogue.cert);
    writeFileSync(file('rogue.key'), rogue.key);
    const wrong = await run('curl', ['-sS', '--max-time', '10', '--cacert', file('ca.crt'), '--cert', file('rogue.crt'), '--key', file('rogue.key'), ...resolve, url]);
    assert.notEqual(wrong.code, 0, `refused with a certificate another CA signed: ${wrong.stdout}`);
    const ok = await run('curl', ['-sS', '--max-time', '10', '--cacert', file('ca.crt'), '--cert', file('client.crt'), '--key', file('client.key'), ...resolve, url]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /backend saw mutual\.example\.com.*\/mutual/);
  });

  test('a server whose files cannot be read is not served, the others are, and the log names the path', async () => {
    assert.ok(!Object.values(proxy.listenerAddresses()).some((a) => a.port === ports.missing), 'nothing listens for the server without its files');
    const r = await run('curl', ['-sS', '--max-time', '5', '-k', '--resolve', `missing.example.com:${ports.missing}:127.0.0.1`, `https://missing.example.com:${ports.missing}/`]);
    assert.notEqual(r.code, 0, 'no TLS without a certificate');
    assert.ok(logLines.some((l) => l.includes(file('absent.crt')) && /cannot read/.test(l)), logLines.join('\n'));
    // The admin port's /certs (what `sinew proxy-config <gateway> secrets` prints) says which and why, never a key.
    const certs = (await (await fetch(`http://127.0.0.1:${proxy.adminAddress()!.port}/certs`)).json()) as { files: { name: string; loaded: boolean; error?: string }[] };
    const absent = certs.files.find((f) => f.name.includes('absent.crt'))!;
    assert.equal(absent.loaded, false);
    assert.match(absent.error!, /cannot read .*absent\.crt: no such file/);
    assert.ok(certs.files.some((f) => f.name.includes('tls.crt') && f.loaded && !f.error));
    assert.ok(!JSON.stringify(certs).includes('PRIVATE KEY'));
  });

  test('the missing files written later: the server is served from then on, with no new config', async () => {
    const late = await makeServerCertificate(ca, ['missing.example.com']);
    writeAtomically('absent.key', late.key);
    writeAtomically('absent.crt', late.cert);
    const r = await until('the server to be served once its files exist', async () => {
      const got = await run('curl', ['-sS', '--max-time', '5', '--cacert', file('ca.crt'), '--resolve', `missing.example.com:${ports.missing}:127.0.0.1`, `https://missing.example.com:${ports.missing}/late`]);
      return got.code === 0 ? got : undefined;
    }, 15_000);
    assert.match(r.stdout, /backend saw missing\.example\.com.*\/late/);
  });

  test('the files rewritten: new connections get the new certificate, an open connection carries on', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.cert, servername: 'simple.example.com' });
    const get = (path: string) =>
      new Promise<{ status: number; reused: boolean; body: string }>((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port: ports.simple, path, agent, headers: { host: 'simple.example.com' } }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket, body }));
        });
        req.on('error', reject);
      });
    try {
      assert.equal((await get('/before')).status, 200);
      // The key first, then the chain, each whole: between the two the pair does not match,
      // and the last good pair keeps serving.
      writeAtomically('tls.key', rotated.key);
      writeAtomically('tls.crt', rotated.cert);
      await until('the rewritten certificate to be served', async () => ((await servedNames(ports.simple, 'simple.example.com')).includes('rotated.example.com') ? true : undefined), 15_000);
      // openssl, as a client of its own, verifies the new chain too.
      assert.match((await openssl(ports.simple, 'simple.example.com')).stdout, /Verify return code: 0 \(ok\)/);
      const after = await get('/after');
      assert.equal(after.status, 200);
      assert.equal(after.reused, true, 'the connection opened before the rotation still serves');
    } finally {
      agent.destroy();
    }
  });
});

describe('TLS origination with certificates named by file', () => {
  /** The external stand-in as a ServiceEntry, and a DestinationRule originating TLS to it with `tls`. */
  const externalOriginatingTls = (tls: string) =>
    parse(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [api.external.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${external.port}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: external}
spec:
  host: api.external.test
  trafficPolicy:
    tls: ${tls}
`);

  test('a DestinationRule MUTUAL with clientCertificate, privateKey and caCertificates: the sidecar presents the client certificate, verifies the server against the CA file and sends the SNI', async () => {
    const outboundPort = await allocatePort();
    const resources = externalOriginatingTls(`{mode: MUTUAL, clientCertificate: ${file('client.crt')}, privateKey: ${file('client.key')}, caCertificates: ${file('external-ca.crt')}, sni: api.external.test}`);
    const config = compile(resources, new Map(), { workload: 'curl', labels: { app: 'curl' }, ports: { outbound: { host: '127.0.0.1', port: outboundPort } } });
    assert.ok(!JSON.stringify(config).includes('PRIVATE KEY'), 'the push carries paths, never a key');
    await startProxy(config);
    const r = await run('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${outboundPort}`, '-D', '-', 'http://api.external.test/data']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 200/m);
    assert.match(r.stdout, /external stand-in/);
    const seen = external.seen.at(-1)!;
    assert.equal(seen.servername, 'api.external.test');
    assert.equal(seen.clientCn, 'client.example.com', 'the client certificate from the files was presented');
  });

  test('a CA file that does not vouch for the server: 503 UF, no unverified connection', async () => {
    const outboundPort = await allocatePort();
    const resources = externalOriginatingTls(`{mode: SIMPLE, caCertificates: ${file('ca.crt')}, sni: api.external.test}`);
    await startProxy(compile(resources, new Map(), { workload: 'curl', labels: { app: 'curl' }, ports: { outbound: { host: '127.0.0.1', port: outboundPort } } }));
    const before = external.seen.length;
    const r = await run('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${outboundPort}`, '-D', '-', 'http://api.external.test/data']);
    assert.match(r.stdout, /^HTTP\/1\.1 503/m);
    assert.match(r.stdout, /x-sinew-response-flags: [A-Z,]*\bUF\b/i);
    assert.equal(external.seen.length, before, 'no request reached the server');
  });

  test('a CA file that cannot be read: the cluster waits (503 UH) rather than connect unverified', async () => {
    const outboundPort = await allocatePort();
    const resources = externalOriginatingTls(`{mode: SIMPLE, caCertificates: ${file('no-such-ca.crt')}}`);
    await startProxy(compile(resources, new Map(), { workload: 'curl', labels: { app: 'curl' }, ports: { outbound: { host: '127.0.0.1', port: outboundPort } } }));
    const before = external.seen.length;
    const r = await run('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${outboundPort}`, '-D', '-', 'http://api.external.test/data']);
    assert.match(r.stdout, /^HTTP\/1\.1 503/m);
    assert.match(r.stdout, /x-sinew-response-flags: UH/i);
    assert.equal(external.seen.length, before);
    assert.ok(logLines.some((l) => l.includes(file('no-such-ca.crt'))), 'the log names the file');
  });
});
