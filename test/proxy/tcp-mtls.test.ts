/**
 * Istio mutual TLS on TCP ports, between real sidecar proxies: a client sidecar's TCP cluster
 * to a sidecar-backed endpoint connects with Istio mutual TLS (auto mTLS, as the compiler
 * emits it), and the server sidecar's inbound TCP port, compiled from a STRICT
 * PeerAuthentication, terminates it, verifies the client against the mesh roots, and proxies
 * the plaintext to the app (Istio's tcp-echo sample: it answers "hello <what it read>").
 * Network RBAC then sees the client's SPIFFE ID, and the TCP metrics carry the principals.
 * Certificates come from the mesh CA (src/ca), made for the run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ProxyConfig, Secret } from '../../src/api/proxy-config.js';
import type { Resource } from '../../src/api/resources/meta.js';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { compile, parse, workload } from '../compiler/support/mesh.js';
import { cluster } from './support/config.js';

const SERVER_ID = 'spiffe://cluster.local/ns/foo/sa/tcp-echo';
const SLEEP_ID = 'spiffe://cluster.local/ns/foo/sa/sleep';
const OTHER_ID = 'spiffe://cluster.local/ns/bar/sa/other';
const HOST = 'tcp-echo.foo.svc.cluster.local';
const CLUSTER = `outbound|9000||${HOST}`;
const CONNECTIONS = 5;

const TCP_ECHO = `
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: foo}
spec:
  selector: {app: tcp-echo}
  ports: [{name: tcp, port: 9000}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: STRICT}}
`;

/** Istio's authz-tcp task, with principals: only the sleep workload's identity may connect. */
const ALLOW_SLEEP = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}], to: [{operation: {ports: ["9000"]}}]}]
`;

interface Identity {
  id: string;
  secrets: Secret[];
  certPem: string;
  keyPem: string;
}

/** Sends "ping" on a new connection to `port`; what comes back, or `closed`. */
async function echoOnce(port: number, message = 'ping'): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    socket.end();
  });
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    socket.write(message);
    await once(socket, 'close');
  } finally {
    socket.destroy();
  }
  return chunks.length > 0 ? Buffer.concat(chunks).toString() : 'closed';
}

async function echoes(port: number): Promise<number> {
  let served = 0;
  for (let i = 0; i < CONNECTIONS; i++) if ((await echoOnce(port, `ping ${i}`)) === `hello ping ${i}`) served++;
  return served;
}

function run(cmd: string, args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin?.end(input);
  });
}

describe('Istio mutual TLS on TCP ports between sidecars', () => {
  let dir = '';
  let ca: CertificateAuthority;
  let app: net.Server;
  let server: Identity;
  let sleep: Identity;
  let other: Identity;

  const issue = async (namespace: string, serviceAccount: string): Promise<Identity> => {
    const { csrPem, privateKeyPem } = await generateKeyAndCsr();
    const issued = await ca.sign({ csrPem, identity: { namespace, serviceAccount } });
    return {
      id: `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`,
      secrets: [ca.rootCaSecret(), { name: 'default', certificateChainPem: issued.certificateChainPem, privateKeyPem }],
      certPem: issued.certificateChainPem,
      keyPem: privateKeyPem,
    };
  };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sinew-tcp-mtls-'));
    ca = await CertificateAuthority.open({ dir: path.join(dir, 'ca') });
    [server, sleep, other] = [await issue('foo', 'tcp-echo'), await issue('foo', 'sleep'), await issue('bar', 'other')];
    app = net.createServer((s) => {
      s.on('data', (d: Buffer) => s.write(`hello ${d.toString()}`));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await new Promise<void>((r) => app.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** The tcp-echo sidecar's inbound side, as the compiler builds it from the resources (mesh CA on). */
  function serverConfig(extra: Resource[] = []): ProxyConfig {
    const appPort = (app.address() as AddressInfo).port;
    const config = compile(
      [...parse(TCP_ECHO), workload('tcp-echo', { namespace: 'foo', labels: { app: 'tcp-echo' }, serviceAccount: 'tcp-echo', ports: [{ name: 'tcp', containerPort: 9000 }] }), ...extra],
      new Map([['foo/tcp-echo', [{ name: 'tcp-echo-0', address: '127.0.0.1', ports: { 9000: appPort } }]]]),
      {
        workload: 'tcp-echo',
        namespace: 'foo',
        labels: { app: 'tcp-echo' },
        mesh: { mtls: true },
        ports: { inbound: [{ containerPort: 9000, listen: { host: '127.0.0.1', port: 0 }, app: { host: '127.0.0.1', port: appPort }, protocol: 'tcp' as const }] },
      },
    );
    return { ...config, listeners: config.listeners.filter((l) => l.direction === 'inbound'), secrets: [...(config.secrets ?? []), ...server.secrets] };
  }

  /**
   * A client sidecar's TCP listener for tcp-echo:9000, its cluster as the compiler emits it
   * for a sidecar-backed endpoint (auto mTLS: Istio mutual TLS, SNI, the server's SPIFFE ID).
   */
  function clientConfig(identity: Identity, serverPort: number): ProxyConfig {
    return {
      version: 'client',
      node: { id: `sidecar~client.${identity.id.split('/')[4]}`, mode: 'sidecar', workload: 'client', namespace: identity.id.split('/')[4], labels: { app: 'client' } },
      listeners: [{ name: 'out', address: { host: '127.0.0.1', port: 0 }, direction: 'outbound', protocol: 'tcp', tcp: { routes: [{ destinations: [{ cluster: CLUSTER, weight: 1 }] }] } }],
      routeConfigs: [],
      clusters: [
        cluster(CLUSTER, {
          protocol: 'tcp',
          service: { host: HOST, namespace: 'foo', name: 'tcp-echo', port: 9000 },
          autoMtls: { mode: 'ISTIO_MUTUAL', certificate: 'default', validationContext: 'ROOTCA', sni: `outbound_.9000_._.${HOST}`, subjectAltNames: [SERVER_ID] },
        }),
      ],
      endpoints: [{ clusterName: CLUSTER, endpoints: [{ address: { host: '127.0.0.1', port: serverPort }, labels: {}, health: 'HEALTHY', tlsMode: 'istio', identity: SERVER_ID }] }],
      secrets: identity.secrets,
    };
  }

  /**
   * The tcp-echo sidecar and two client sidecars (sleep, other). Telemetry subscribes to every
   * proxy of the process (node's diagnostics channels are process-wide; a sidecar is a process
   * of its own), so only the metrics test turns it on, and only for the server and sleep.
   */
  async function withSidecars(extra: Resource[], body: (ports: { inbound: number; sleep: number; other: number; metrics: () => Promise<string> }) => Promise<void>, telemetry = false): Promise<void> {
    const proxies: Proxy[] = [];
    const observed = telemetry ? { metricsPort: 0 } : { telemetry: false as const };
    try {
      const inbound = createProxy({ config: serverConfig(extra), ...observed });
      proxies.push(inbound);
      await inbound.start();
      const inboundPort = Object.values(inbound.listenerAddresses())[0].port;
      const clients = [createProxy({ config: clientConfig(sleep, inboundPort), ...observed }), createProxy({ config: clientConfig(other, inboundPort), telemetry: false })];
      proxies.push(...clients);
      for (const c of clients) await c.start();
      const metrics = async () => {
        const scrape = async (p: Proxy) => (await fetch(`http://127.0.0.1:${p.metricsAddress()!.port}/stats/prometheus`)).text();
        return (await scrape(inbound)) + (await scrape(clients[0]));
      };
      await body({ inbound: inboundPort, sleep: clients[0].listenerAddresses()['out'].port, other: clients[1].listenerAddresses()['out'].port, metrics });
    } finally {
      for (const p of proxies) await p.close({ drainMs: 0 });
    }
  }

  test('STRICT: a plaintext client gets 0 of N connections through, a sidecar client N of N', async () => {
    await withSidecars([], async ({ inbound, sleep: viaSidecar }) => {
      assert.equal(await echoes(inbound), 0, 'plaintext straight to the STRICT port');
      assert.equal(await echoes(viaSidecar), CONNECTIONS, 'through the client sidecar (Istio mutual TLS)');
    });
  });

  test('openssl s_client on the inbound TCP port: a chain to the mesh root, the SPIFFE ID as URI SAN, Istio\'s ALPN', async () => {
    const root = path.join(dir, 'root.pem');
    const cert = path.join(dir, 'sleep.pem');
    const key = path.join(dir, 'sleep.key');
    writeFileSync(root, ca.rootCaSecret().trustedCaPem!);
    writeFileSync(cert, sleep.certPem);
    writeFileSync(key, sleep.keyPem, { mode: 0o600 });
    await withSidecars([], async ({ inbound }) => {
      const out = await run('openssl', ['s_client', '-connect', `127.0.0.1:${inbound}`, '-CAfile', root, '-cert', cert, '-key', key, '-alpn', 'istio-peer-exchange,istio', '-servername', `outbound_.9000_._.${HOST}`, '-showcerts', '-verify_return_error'], 'ping');
      assert.match(out.stdout, /Verify return code: 0 \(ok\)/, out.stdout + out.stderr);
      assert.match(out.stdout, /ALPN protocol: istio-peer-exchange/);
      const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out.stdout)![0];
      const san = await run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], leaf);
      assert.match(san.stdout, new RegExp(`URI:${SERVER_ID}`));
      // Without a client certificate the handshake (TLS 1.3: the first read) is refused.
      const anonymous = await run('openssl', ['s_client', '-connect', `127.0.0.1:${inbound}`, '-CAfile', root, '-alpn', 'istio-peer-exchange,istio'], 'ping');
      assert.doesNotMatch(anonymous.stdout, /hello ping/);
    });
  });

  test('an ALLOW policy with principals admits the named sidecar and closes another\'s', async () => {
    await withSidecars(parse(ALLOW_SLEEP), async ({ sleep: allowed, other: denied }) => {
      assert.equal(await echoes(allowed), CONNECTIONS, `${SLEEP_ID} is allowed`);
      assert.equal(await echoes(denied), 0, `${OTHER_ID} is not`);
    });
  });

  test('the TCP metrics carry mutual_tls and both principals, on both reporters', async () => {
    await withSidecars([], async ({ sleep: viaSidecar, metrics }) => {
      assert.equal(await echoes(viaSidecar), CONNECTIONS);
      const destination = (text: string) => new RegExp(`^istio_tcp_connections_closed_total\\{([^}]*reporter="destination"[^}]*source_principal="${SLEEP_ID}"[^}]*)\\} (\\d+)$`, 'm').exec(text);
      let text = await metrics();
      // The server side counts a connection closed once it saw the client's end: poll for it.
      for (let deadline = Date.now() + 10_000; Number(destination(text)?.[2] ?? 0) < CONNECTIONS && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 20));
        text = await metrics();
      }
      const dest = destination(text);
      assert.ok(dest, text);
      assert.equal(Number(dest[2]), CONNECTIONS);
      assert.match(dest[1], /connection_security_policy="mutual_tls"/);
      assert.match(dest[1], new RegExp(`source_principal="${SLEEP_ID}"`));
      assert.match(dest[1], new RegExp(`destination_principal="${SERVER_ID}"`));
      const sources = [...text.matchAll(/^istio_tcp_connections_opened_total\{([^}]*reporter="source"[^}]*)\} (\d+)$/gm)].map((m) => m[1]);
      assert.ok(
        sources.some((labels) => labels.includes(`source_principal="${SLEEP_ID}"`) && labels.includes(`destination_principal="${SERVER_ID}"`)),
        sources.join('\n'),
      );
    }, true);
  });

  test('TCP filter chains route TLS by SNI without terminating it (passthrough)', async () => {
    // Two TLS servers that say who they are; the listener only reads the ClientHello's server name.
    const named = async (name: string) => {
      const srv = tls.createServer({ cert: server.certPem, key: server.keyPem }, (s) => {
        s.on('error', () => {});
        s.end(name);
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      return srv;
    };
    const upstreams = [await named('a'), await named('b')];
    const portOf = (s: net.Server) => (s.address() as AddressInfo).port;
    const proxy = createProxy({
      config: {
        version: 'sni',
        node: { id: 'router~gw.foo', mode: 'router', workload: 'gw', namespace: 'foo', labels: {} },
        listeners: [
          {
            name: 'passthrough',
            address: { host: '127.0.0.1', port: 0 },
            direction: 'gateway',
            protocol: 'tcp',
            filterChains: [
              { name: 'a', match: { serverNames: ['a.example.com'] }, tcp: { routes: [{ destinations: [{ cluster: 'a', weight: 1 }] }] } },
              { name: 'b', match: { serverNames: ['*.b.example.com'] }, tcp: { routes: [{ destinations: [{ cluster: 'b', weight: 1 }] }] } },
            ],
          },
        ],
        routeConfigs: [],
        clusters: [cluster('a', { protocol: 'tcp' }), cluster('b', { protocol: 'tcp' })],
        endpoints: ['a', 'b'].map((c, i) => ({ clusterName: c, endpoints: [{ address: { host: '127.0.0.1', port: portOf(upstreams[i]) }, labels: {}, health: 'HEALTHY' as const }] })),
      },
      telemetry: false,
    });
    try {
      await proxy.start();
      const port = proxy.listenerAddresses()['passthrough'].port;
      const ask = async (servername: string) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', () => {});
        await new Promise((resolve) => socket.once('close', resolve));
        // The upstream's own certificate reached the client: the proxy did not terminate.
        return chunks.length ? Buffer.concat(chunks).toString() : 'closed';
      };
      assert.equal(await ask('a.example.com'), 'a');
      assert.equal(await ask('x.b.example.com'), 'b');
      assert.equal(await ask('c.example.com'), 'closed', 'no chain matches: closed');
    } finally {
      await proxy.close({ drainMs: 0 });
      for (const u of upstreams) await new Promise<void>((r) => u.close(() => r()));
    }
  });
});
