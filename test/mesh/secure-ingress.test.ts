/**
 * Istio's secure-ingress task through `sinew up` (fixtures/secure-ingress), with curl and
 * `openssl s_client` as the clients: TLS terminated at the ingress gateway from credentials
 * made with `sinew create secret`, two hosts on port 443 told apart by SNI (each with its own
 * certificate and routes), mutual TLS, a minimum TLS version, httpsRedirect, and a certificate
 * rotated by `sinew apply` without dropping a connection.
 *
 * Regression (gateway_tls_credentials_pushed): the gateway left every port that terminates
 * TLS out, and the compiler replaced a gateway's credentials with the mesh key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, makeCa, makeClientCertificate, makeServerCertificate, type Pem } from '../support/tls.js';
import { bin, repo, sinew, startMesh, until, type Mesh, runCommand as run, type CommandRun as Run } from './support.js';

const fixtures = join(repo, 'test/mesh/fixtures/secure-ingress');


let mesh: Mesh;
let dir: string;
let https443: string;
let http80: string;
let ca: Pem;
let files: Record<string, string>;

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

/** curl as the task runs it: --resolve so that SNI and Host carry the name, the task's CA to verify. */
function curl(host: string, path: string, extra: string[] = []): Promise<Run> {
  const [ip, port] = https443.split(':');
  return run('curl', ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', '--resolve', `${host}:${port}:${ip}`, '--cacert', files.ca, ...extra, `https://${host}:${port}${path}`]);
}
const statusOf = (r: Run) => Number(r.stdout.trim().split('\n').at(-1));

/** The certificate subject a TLS client is shown for `serverName` (openssl s_client), and whether it verified. */
async function presented(serverName: string | undefined, extra: string[] = []): Promise<{ subject?: string; verified: boolean; output: string }> {
  const r = await run('openssl', ['s_client', '-connect', https443, ...(serverName ? ['-servername', serverName] : ['-noservername']), '-CAfile', files.ca, ...extra], '');
  const output = r.stdout + r.stderr;
  return { subject: /subject=.*CN\s*=\s*([^\s,/]+)/.exec(output)?.[1], verified: /Verify return code: 0 \(ok\)/.test(output), output };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sinew-secure-ingress-'));
  ca = await makeCa('example.com');
  const [httpbin, helloworld, rotated] = await Promise.all([
    makeServerCertificate(ca, ['httpbin.example.com']),
    makeServerCertificate(ca, ['helloworld.example.com']),
    makeServerCertificate(ca, ['httpbin.example.com', 'rotated.example.com']),
  ]);
  files = {
    ca: file('example.com.crt', ca.cert),
    httpbinCrt: file('httpbin.crt', httpbin.cert),
    httpbinKey: file('httpbin.key', httpbin.key),
    helloCrt: file('helloworld.crt', helloworld.cert),
    helloKey: file('helloworld.key', helloworld.key),
    rotatedCrt: file('rotated.crt', rotated.cert),
    rotatedKey: file('rotated.key', rotated.key),
  };
  mesh = await startMesh([join(fixtures, 'mesh.yaml')]);
  const status = await mesh.status();
  const servers = status.gateways.find((g) => g.name === 'istio-ingressgateway')!.replicas[0].proxy.servers!;
  https443 = servers['443'];
  http80 = servers['80'];
  assert.ok(https443 && http80, `the gateway's servers: ${JSON.stringify(servers)}`);
  for (const [name, crt, key] of [['httpbin-credential', files.httpbinCrt, files.httpbinKey], ['helloworld-credential', files.helloCrt, files.helloKey]]) {
    // As the task runs `kubectl create -n istio-system secret tls ...`.
    const created = await run(process.execPath, [bin, 'create', 'secret', 'tls', name, '--state-dir', mesh.stateDir, '-n', 'istio-system', '--cert', crt, '--key', key]);
    assert.equal(created.code, 0, created.stderr);
  }
});

after(async () => {
  await mesh?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Istio's secure-ingress task through sinew up", () => {
  test('SIMPLE: curl reaches httpbin over TLS, the certificate verified against the task CA', async () => {
    const reply = await until('httpbin over https', async () => {
      const r = await curl('httpbin.example.com', '/status/418');
      return r.code === 0 ? r : undefined;
    });
    assert.equal(statusOf(reply), 418);
    assert.match(reply.stdout, /-=\[ teapot \]=-/);
    const shown = await presented('httpbin.example.com');
    assert.equal(shown.subject, 'httpbin.example.com');
    assert.ok(shown.verified, shown.output);
  });

  test('two hosts on port 443: SNI picks the certificate and the routes; another host in Host gets 404', async () => {
    const hello = await until('helloworld over https', async () => {
      const r = await curl('helloworld.example.com', '/hello');
      return r.code === 0 ? r : undefined;
    });
    assert.equal(statusOf(hello), 200);
    assert.match(hello.stdout, /Hello version: v1, instance: helloworld-v1/);
    assert.equal((await presented('helloworld.example.com')).subject, 'helloworld.example.com');
    // A TLS session for httpbin cannot reach helloworld's routes by naming it in Host.
    const fronted = await curl('httpbin.example.com', '/hello', ['-H', 'Host: helloworld.example.com']);
    assert.equal(statusOf(fronted), 404, fronted.stdout);
    // No server on the port matches a client that sends no SNI (Envoy closes it: no filter chain).
    const anonymous = await presented(undefined);
    assert.equal(anonymous.subject, undefined, anonymous.output);
  });

  test('httpsRedirect: plain HTTP on port 80 gets a 301 to https', async () => {
    const [ip, port] = http80.split(':');
    const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '--resolve', `httpbin.example.com:${port}:${ip}`, `http://httpbin.example.com:${port}/status/200`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^301 https:\/\/httpbin\.example\.com(:\d+)?\/status\/200$/);
  });

  test('rotation: the secret updated with sinew apply; a connection open before keeps working, new ones get the new certificate', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.cert, servername: 'httpbin.example.com' });
    const [host, port] = https443.split(':');
    const request = () =>
      new Promise<{ status: number; localPort: number; subject: string }>((resolve, reject) => {
        const req = https.request({ host, port: Number(port), path: '/status/418', agent, servername: 'httpbin.example.com', headers: { host: 'httpbin.example.com' } }, (res) => {
          const socket = res.socket as import('node:tls').TLSSocket;
          const info = { status: res.statusCode ?? 0, localPort: socket.localPort ?? 0, subject: String(socket.getPeerCertificate().subject?.CN) };
          res.resume();
          res.on('end', () => resolve(info));
        });
        req.on('error', reject);
        req.end();
      });
    // The old connection keeps carrying requests, one every 100 ms, all through the rotation:
    // idle for the proxy's keep-alive timeout (5 s) it would be closed, rightly, whatever the certificate.
    let stop = false;
    const onOldConnection: { status: number; localPort: number; subject: string }[] = [];
    let failure: unknown;
    const busy = (async () => {
      while (!stop) {
        onOldConnection.push(await request());
        await new Promise((r) => setTimeout(r, 100));
      }
    })().catch((err: unknown) => (failure = err));
    try {
      await until('a first request on the kept connection', async () => (onOldConnection.length > 0 ? true : undefined));
      const secret = `apiVersion: v1\nkind: Secret\nmetadata: {name: httpbin-credential, namespace: istio-system}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${b64(readFileSync(files.rotatedCrt, 'utf8'))}\n  tls.key: ${b64(readFileSync(files.rotatedKey, 'utf8'))}\n`;
      const applied = await sinew(mesh.stateDir, 'apply', '-f', file('rotated.yaml', secret));
      assert.equal(applied.status, 0, applied.stderr);
      // New connections get the rotated certificate (its extra SAN tells it apart)...
      await until('the rotated certificate on new connections', async () => {
        const r = await run('openssl', ['s_client', '-connect', https443, '-servername', 'httpbin.example.com', '-CAfile', files.ca], '');
        const text = (await run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], r.stdout)).stdout;
        return text.includes('rotated.example.com') ? true : undefined;
      });
      const seen = onOldConnection.length;
      await until('one more request on the kept connection', async () => (onOldConnection.length > seen || failure ? true : undefined));
      stop = true;
      await busy;
      // ...while the connection opened before was never dropped: every request answered, on one socket, with the old certificate.
      assert.equal(failure, undefined, String(failure));
      assert.deepEqual([...new Set(onOldConnection.map((r) => `${r.status} ${r.localPort} ${r.subject}`))], [`418 ${onOldConnection[0].localPort} httpbin.example.com`]);
    } finally {
      stop = true;
      await busy;
      agent.destroy();
    }
  });

  test('MUTUAL: without a client certificate the handshake fails; with one the CA signed, curl gets through', async () => {
    const clientCa = await makeCa('client CA');
    const client = await makeClientCertificate(clientCa, 'client.example.com');
    const stranger = await makeClientCertificate(await makeCa('another CA'), 'client.example.com');
    const secret = [
      'apiVersion: v1',
      'kind: Secret',
      'metadata: {name: httpbin-credential, namespace: istio-system}',
      'type: Opaque',
      'data:',
      `  tls.crt: ${b64(readFileSync(files.httpbinCrt, 'utf8'))}`,
      `  tls.key: ${b64(readFileSync(files.httpbinKey, 'utf8'))}`,
      `  ca.crt: ${b64(clientCa.cert)}`,
      '',
    ].join('\n');
    const applied = await sinew(mesh.stateDir, 'apply', '-f', file('mutual-secret.yaml', secret), '-f', join(fixtures, 'mutual.yaml'));
    assert.equal(applied.status, 0, applied.stderr);
    const certArgs = ['--cert', file('client.crt', client.cert), '--key', file('client.key', client.key)];
    const withCert = await until('httpbin asking for client certificates', async () => {
      const bare = await curl('httpbin.example.com', '/status/418');
      if (bare.code === 0) return undefined; // not MUTUAL yet
      const r = await curl('httpbin.example.com', '/status/418', certArgs);
      return r.code === 0 ? { bare, r } : undefined;
    });
    assert.equal(statusOf(withCert.r), 418);
    // Refused in the handshake (TLS 1.3 sends the alert after it, so curl's exit code varies
    // with timing): no HTTP status at all.
    const refusedByTls = (r: Run) => r.code !== 0 && statusOf(r) === 0;
    assert.ok(refusedByTls(withCert.bare), `curl without a certificate: ${withCert.bare.code} ${withCert.bare.stderr}`);
    const refused = await curl('httpbin.example.com', '/status/418', ['--cert', file('stranger.crt', stranger.cert), '--key', file('stranger.key', stranger.key)]);
    assert.ok(refusedByTls(refused), `a certificate of another CA: ${refused.code} ${refused.stdout} ${refused.stderr}`);
    // The gateway names the CA it wants, the credential's ca.crt.
    const asked = await presented('httpbin.example.com');
    assert.match(asked.output, /Acceptable client certificate CA names\s+CN\s*=\s*client CA/, asked.output);
  });

  // Regression (tls_files_not_read, SNW1011): a server naming its certificate by file was left out.
  test("a certificate named by file (the task's older form, files mounted into the gateway): served beside the credentials on 443, and rewriting the files rotates it", async () => {
    const [filesCert, filesRotated] = await Promise.all([makeServerCertificate(ca, ['files.example.com']), makeServerCertificate(ca, ['files.example.com', 'rotated-files.example.com'])]);
    const crt = file('files.crt', filesCert.cert);
    const key = file('files.key', filesCert.key);
    const config = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: files-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-files, protocol: HTTPS}
    tls: {mode: SIMPLE, serverCertificate: ${crt}, privateKey: ${key}}
    hosts: [files.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: files}
spec:
  hosts: [files.example.com]
  gateways: [files-gateway]
  http: [{route: [{destination: {host: httpbin, port: {number: 8000}}}]}]
`;
    const applied = await sinew(mesh.stateDir, 'apply', '-f', file('files-gateway.yaml', config));
    assert.equal(applied.status, 0, applied.stderr);
    assert.doesNotMatch(applied.stderr, /SNW1011|SNW1020/, 'the files are there: nothing to warn about');
    const reply = await until('files.example.com over https', async () => {
      const r = await curl('files.example.com', '/status/418');
      return r.code === 0 ? r : undefined;
    });
    assert.equal(statusOf(reply), 418);
    const shown = await presented('files.example.com');
    assert.equal(shown.subject, 'files.example.com');
    assert.ok(shown.verified, shown.output);
    // The gateway watches the files: a rewrite reaches new connections with no apply.
    writeFileSync(key, filesRotated.key);
    writeFileSync(crt, filesRotated.cert);
    await until('the rewritten certificate', async () => {
      const r = await run('sh', ['-c', `echo | openssl s_client -connect ${https443} -servername files.example.com -CAfile ${files.ca} 2>/dev/null | openssl x509 -noout -ext subjectAltName`]);
      return /rotated-files\.example\.com/.test(r.stdout) ? true : undefined;
    }, 20_000);
    // A path the mesh's machine cannot read: apply warns with the path.
    const missing = await sinew(mesh.stateDir, 'apply', '-f', file('files-gateway-missing.yaml', config.replace(crt, join(dir, 'absent.crt'))));
    assert.equal(missing.status, 0, missing.stderr);
    assert.match(missing.stderr, /warning \[SNW1020\].*absent\.crt cannot be read/);
    // The gateway says why it does not serve the server.
    const secrets = await until('the gateway to report the unreadable file', async () => {
      const r = await sinew(mesh.stateDir, 'proxy-config', 'istio-ingressgateway', 'secrets');
      return /UNREADABLE/.test(r.stdout) ? r.stdout : undefined;
    }, 20_000);
    assert.match(secrets, /file-cert:.*absent\.crt.*UNREADABLE.*no such file/);
  });

  test('minProtocolVersion TLSV1_3: a TLS 1.2 client is refused, TLS 1.3 gets through', async () => {
    await until('helloworld refusing TLS 1.2', async () => {
      const old = await presented('helloworld.example.com', ['-tls1_2']);
      return old.subject === undefined ? true : undefined;
    });
    const current = await presented('helloworld.example.com', ['-tls1_3']);
    assert.equal(current.subject, 'helloworld.example.com', current.output);
    assert.ok(current.verified);
  });
});
