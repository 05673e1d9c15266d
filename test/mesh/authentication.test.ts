/**
 * istio.io's authentication tasks (content/en/docs/tasks/security/authentication/authn-policy
 * and mtls-migration) through `sinew up`, over real processes: httpbin and sleep with sidecars
 * in namespaces foo and bar, and the test itself as the "legacy" client without a sidecar,
 * connecting to the sidecars' inbound ports in plaintext. The PeerAuthentications are the
 * tasks' own (transcribed below from istio.io's snippets of those tasks, commit d05e3aaf,
 * namespaces written into metadata where the task passes `-n`).
 *
 * What istio.io says should happen, as counts of 100 requests: a plaintext client gets 0
 * through a STRICT sidecar and 100 through a PERMISSIVE one; a sidecar client gets 100 in
 * both, with Istio's x-forwarded-client-cert naming both identities. `openssl s_client`
 * against a STRICT port shows the workload certificate, chained to the mesh root, and a client
 * certificate from another CA, an expired one or a revoked one gets no request through. The
 * standard metrics name both principals over mutual TLS, on both reporters.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { MeshStatus } from '../../src/api/mesh-status.js';
import { generateKeyAndCsr } from '../../src/core/pki/workload-key.js';
import { bin, configDump, get, repo, sinew, startMesh, until, viaProxy, type Mesh } from './support.js';

const N = 100;

// snip_globally_enabling_istio_mutual_tls_in_strict_mode_1 (authn-policy) and
// snip_lock_down_mutual_tls_for_the_entire_mesh_1 (mtls-migration): the same policy.
const MESH_STRICT = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: "default"
  namespace: "istio-system"
spec:
  mtls:
    mode: STRICT
`;
// snip_namespacewide_policy_1 / snip_lock_down_to_mutual_tls_by_namespace_1.
const FOO_STRICT = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: "default"
  namespace: "foo"
spec:
  mtls:
    mode: STRICT
`;
// snip_enable_mutual_tls_per_workload_4 (namespace bar): STRICT, but port 80 (httpbin's
// containerPort here; the task's httpbin listens on 8080) DISABLEd.
const BAR_HTTPBIN_PORT_DISABLE = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: "httpbin"
  namespace: "bar"
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: STRICT
  portLevelMtls:
    80:
      mode: DISABLE
`;
// snip_policy_precedence_1 (namespace foo): a workload policy overrides the namespace's.
const FOO_HTTPBIN_DISABLE = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: "overwrite-example"
  namespace: "foo"
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: DISABLE
`;

describe('istio.io authentication tasks through sinew up', { timeout: 300_000 }, () => {
  let mesh: Mesh;
  let status: MeshStatus;
  const replica = (namespace: string, workload: string) => status.workloads.find((w) => w.name === workload && w.namespace === namespace)!.replicas[0];
  const inbound = (namespace: string) => replica(namespace, 'httpbin').proxy.inbound!;
  const sleepProxy = () => replica('foo', 'sleep').proxy.outbound!;

  /** Successes of N plaintext requests straight to a sidecar's inbound port (a client without a sidecar). */
  const plaintext = async (address: string) => {
    let ok = 0;
    for (let i = 0; i < N; i++) {
      const reply = await get(`http://${address}/headers`).catch(() => undefined);
      if (reply?.status === 200) ok++;
    }
    return ok;
  };
  /** Successes of N requests from sleep's sidecar to a service. */
  const fromSidecar = async (url: string) => {
    let ok = 0;
    for (let i = 0; i < N; i++) if ((await viaProxy(sleepProxy(), url).catch(() => undefined))?.status === 200) ok++;
    return ok;
  };
  const apply = async (name: string, yaml: string) => {
    const file = join(mesh.stateDir, `${name}.yaml`);
    writeFileSync(file, yaml);
    const res = await sinew(mesh.stateDir, 'apply', '-f', file);
    assert.equal(res.status, 0, res.stderr);
  };
  const remove = async (name: string) => {
    const res = await sinew(mesh.stateDir, 'delete', '-f', join(mesh.stateDir, `${name}.yaml`));
    assert.equal(res.status, 0, res.stderr);
  };
  /** Waits until the httpbin sidecar of `namespace` holds inbound TLS settings that `want` accepts. */
  const inboundSettled = (namespace: string, want: (tls: { permissive?: boolean } | undefined) => boolean) =>
    until(`${namespace}/httpbin's inbound listener to take the policy`, async () => {
      const config = await configDump(replica(namespace, 'httpbin').proxy.admin);
      const listener = config.listeners.find((l) => l.direction === 'inbound');
      return listener && want(listener.tls) ? true : undefined;
    });

  before(async () => {
    mesh = await startMesh(['test/mesh/fixtures/authn']);
    status = await until('every proxy\'s certificate', async () => {
      const s = await mesh.status();
      return s.workloads.every((w) => w.replicas.every((r) => r.proxy.certificate)) ? s : undefined;
    });
  });

  after(async () => {
    await mesh?.stop();
  });

  test('with no policy (PERMISSIVE): a plaintext client gets 100 of 100 through, a sidecar client 100 of 100 over mutual TLS', async () => {
    await inboundSettled('foo', (tls) => tls?.permissive === true);
    assert.equal(await plaintext(inbound('foo')), N);
    assert.equal(await fromSidecar('http://httpbin.foo:8000/headers'), N);
    const reply = await viaProxy(sleepProxy(), 'http://httpbin.foo:8000/headers', { 'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/foo/sa/admin;URI=spiffe://cluster.local/ns/foo/sa/admin' });
    const seen = JSON.parse(reply.body) as { headers: Record<string, string> };
    // Istio's sidecar sets it from the client certificate, replacing what the client sent.
    assert.match(seen.headers['x-forwarded-client-cert'] ?? '', /^By=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/httpbin;Hash=[0-9a-f]{64};Subject="";URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/sleep$/);
    const plain = JSON.parse((await get(`http://${inbound('foo')}/headers`, { 'x-forwarded-client-cert': 'URI=spiffe://cluster.local/ns/foo/sa/admin' })).body) as { headers: Record<string, string> };
    assert.equal(plain.headers['x-forwarded-client-cert'], undefined, 'no client certificate, no XFCC');
  });

  test('mesh-wide STRICT: a plaintext client gets 0 of 100 through, a sidecar client 100 of 100', async () => {
    await apply('mesh-strict', MESH_STRICT);
    try {
      await inboundSettled('foo', (tls) => tls !== undefined && !tls.permissive);
      await inboundSettled('bar', (tls) => tls !== undefined && !tls.permissive);
      assert.equal(await plaintext(inbound('foo')), 0);
      assert.equal(await plaintext(inbound('bar')), 0);
      assert.equal(await fromSidecar('http://httpbin.foo:8000/headers'), N);
      assert.equal(await fromSidecar('http://httpbin.bar:8000/headers'), N);
      const root = await execText(process.execPath, [bin, 'ca', 'root', '--state-dir', mesh.stateDir], '');
      assert.equal(root.status, 0, root.stderr);
      const rootFile = join(mesh.stateDir, 'mesh-root.pem');
      writeFileSync(rootFile, root.stdout);
      const shown = await execText('openssl', ['s_client', '-connect', inbound('foo'), '-showcerts', '-CAfile', rootFile, '-alpn', 'istio-peer-exchange,istio-http/1.1,istio'], '');
      // The chain the sidecar presents verifies up to the mesh root...
      assert.match(shown.stdout, /Verify return code: 0 \(ok\)/, shown.stdout);
      // ...and its leaf is the workload certificate, its SPIFFE ID the URI SAN.
      const leaf = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----/.exec(shown.stdout)![0];
      const text = await execText('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], leaf);
      assert.match(text.stdout, /URI:spiffe:\/\/cluster\.local\/ns\/foo\/sa\/httpbin/);
    } finally {
      await remove('mesh-strict');
    }
  });

  test('namespace-wide STRICT in foo: foo refuses plaintext, bar still takes it; a workload policy overrides the namespace', async () => {
    await apply('foo-strict', FOO_STRICT);
    try {
      await inboundSettled('foo', (tls) => tls !== undefined && !tls.permissive);
      await inboundSettled('bar', (tls) => tls?.permissive === true);
      assert.equal(await plaintext(inbound('foo')), 0);
      assert.equal(await plaintext(inbound('bar')), N);
      assert.equal(await fromSidecar('http://httpbin.foo:8000/headers'), N);
      await apply('foo-httpbin-disable', FOO_HTTPBIN_DISABLE);
      await inboundSettled('foo', (tls) => tls === undefined);
      assert.equal(await plaintext(inbound('foo')), N);
      // Auto mTLS follows the server: sleep's sidecar now calls httpbin in plaintext.
      assert.equal(await fromSidecar('http://httpbin.foo:8000/headers'), N);
      await remove('foo-httpbin-disable');
    } finally {
      await remove('foo-strict');
    }
  });

  test('port-level: STRICT for the workload with its port DISABLEd takes plaintext on that port', async () => {
    await apply('bar-port', BAR_HTTPBIN_PORT_DISABLE);
    try {
      await inboundSettled('bar', (tls) => tls === undefined);
      assert.equal(await plaintext(inbound('bar')), N);
      assert.equal(await fromSidecar('http://httpbin.bar:8000/headers'), N);
    } finally {
      await remove('bar-port');
    }
  });

  test('STRICT refuses a client certificate from another CA, an expired one and a revoked one; the mesh CA\'s valid one gets through', async () => {
    const ca = (command: string, ...args: string[]) => execText(process.execPath, [bin, 'ca', command, '--state-dir', mesh.stateDir, ...args], '');
    const file = (name: string, text: string) => {
      const path = join(mesh.stateDir, name);
      writeFileSync(path, text);
      return path;
    };
    const root = await ca('root');
    assert.equal(root.status, 0, root.stderr);
    /** A certificate the mesh CA issues for foo/sleep, with the key the test made. */
    const issue = async (ttl: string) => {
      const { csrPem, privateKeyPem } = await generateKeyAndCsr();
      const signed = await ca('sign', '--csr', file('client.csr', csrPem), '--identity', 'foo/sleep', '--ttl', ttl, '-o', 'json');
      assert.equal(signed.status, 0, signed.stderr);
      const { serial, notAfter, certificateChainPem } = JSON.parse(signed.stdout) as { serial: string; notAfter: string; certificateChainPem: string };
      return { serial, notAfter: Date.parse(notAfter), cert: certificateChainPem, key: privateKeyPem };
    };
    /** One request over mutual TLS with this client certificate, as a sidecar would make it: its status, or why it got none. */
    const call = (client: { cert: string; key: string }) =>
      new Promise<string>((done) => {
        const [host, port] = inbound('foo').split(':');
        const options: https.RequestOptions & { ALPNProtocols: string[] } = {
          host,
          port: Number(port),
          path: '/headers',
          agent: false,
          cert: client.cert,
          key: client.key,
          ca: root.stdout,
          ALPNProtocols: ['istio-peer-exchange', 'istio-http/1.1', 'istio'],
          // The sidecar's certificate names a SPIFFE ID, no host name.
          checkServerIdentity: () => undefined,
          timeout: 10_000,
        };
        const req = https.request(options, (res) => {
          res.resume();
          res.on('end', () => done(String(res.statusCode)));
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', (err: NodeJS.ErrnoException) => done(`refused (${err.code ?? err.message})`));
        req.end();
      });

    await apply('foo-strict', FOO_STRICT);
    try {
      await inboundSettled('foo', (tls) => tls !== undefined && !tls.permissive);
      // The control: the mesh CA's certificate for foo/sleep gets through.
      const valid = await issue('1h');
      assert.equal(await call(valid), '200');

      // Another CA, the same SPIFFE ID (made with openssl, as someone outside the mesh would).
      const other = join(mesh.stateDir, 'other');
      const openssl = async (...args: string[]) => {
        const res = await execText('openssl', args, '');
        assert.equal(res.status, 0, res.stderr);
      };
      await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${other}-ca.key`, '-out', `${other}-ca.pem`, '-subj', '/O=not the mesh', '-days', '1');
      await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${other}.key`, '-out', `${other}.csr`, '-subj', '/O=impostor');
      await openssl('x509', '-req', '-in', `${other}.csr`, '-CA', `${other}-ca.pem`, '-CAkey', `${other}-ca.key`, '-CAcreateserial', '-out', `${other}.pem`, '-days', '1', '-extfile', file('other.ext', 'subjectAltName=URI:spiffe://cluster.local/ns/foo/sa/sleep\n'));
      assert.match(await call({ cert: readFileSync(`${other}.pem`, 'utf8'), key: readFileSync(`${other}.key`, 'utf8') }), /^refused/);

      // Expired: issued for a second by the mesh CA itself, used once it has expired.
      const expired = await issue('1s');
      await until('the short certificate to expire', async () => (Date.now() > expired.notAfter + 1000 ? true : undefined), 10_000);
      assert.match(await call(expired), /^refused/);

      // Revoked: a certificate that verifies, refused once `sinew ca revoke` reaches the sidecar.
      const revoked = await issue('1h');
      assert.equal(await call(revoked), '200');
      const done = await ca('revoke', revoked.serial);
      assert.equal(done.status, 0, done.stderr);
      await until('httpbin\'s sidecar to hold the revocation', async () => {
        const config = await configDump(replica('foo', 'httpbin').proxy.admin);
        return config.secrets?.find((s) => s.name === 'ROOTCA')?.revocations?.serials.some((r) => r.serial === revoked.serial) ? true : undefined;
      });
      assert.match(await call(revoked), /^refused/);
      assert.equal(await call(valid), '200', 'the revocation refuses that certificate only');
    } finally {
      await remove('foo-strict');
    }
  });

  test('istio_requests_total names both principals under mutual TLS on both reporters, and none in plaintext', async () => {
    /** The istio_requests_total series of a proxy with these labels, as label maps. */
    const series = async (namespace: string, workload: string, match: Record<string, string>) => {
      const text = (await get(`http://${replica(namespace, workload).proxy.metrics}/stats/prometheus`)).body;
      return text
        .split('\n')
        .filter((line) => line.startsWith('istio_requests_total{'))
        .map((line) => Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]])))
        .filter((labels) => Object.entries(match).every(([k, v]) => labels[k] === v));
    };
    const SLEEP = 'spiffe://cluster.local/ns/foo/sa/sleep';
    const HTTPBIN = 'spiffe://cluster.local/ns/foo/sa/httpbin';
    await inboundSettled('foo', (tls) => tls?.permissive === true);
    assert.equal(await fromSidecar('http://httpbin.foo:8000/headers'), N);
    assert.equal((await get(`http://${inbound('foo')}/headers`)).status, 200);
    // Istio's destination reporter: the caller's and its own SPIFFE IDs, mutual_tls...
    // (Series the other tests left, plaintext calls among them, are told apart by their labels.)
    const destination = await series('foo', 'httpbin', { reporter: 'destination', source_workload: 'sleep', connection_security_policy: 'mutual_tls' });
    assert.deepEqual(destination.map((l) => [l.source_principal, l.destination_principal]), [[SLEEP, HTTPBIN]]);
    // ...and for the plaintext client, unknown principals and `none`.
    const plain = await series('foo', 'httpbin', { reporter: 'destination', connection_security_policy: 'none' });
    assert.deepEqual([...new Set(plain.map((l) => `${l.source_principal} ${l.destination_principal}`))], ['unknown unknown']);
    // The source reporter reads them off its upstream connection; it cannot know the server's
    // policy, so connection_security_policy stays `unknown` there, as in Istio.
    const source = await series('foo', 'sleep', { reporter: 'source', destination_workload: 'httpbin', destination_workload_namespace: 'foo', source_principal: SLEEP });
    assert.deepEqual(source.map((l) => [l.destination_principal, l.connection_security_policy]), [[HTTPBIN, 'unknown']]);

    // httpbin DISABLEd: auto mTLS calls it in plaintext, and both reporters lose the principals.
    await apply('foo-httpbin-disable', FOO_HTTPBIN_DISABLE);
    try {
      await inboundSettled('foo', (tls) => tls === undefined);
      assert.equal(await fromSidecar('http://httpbin.foo:8000/headers'), N);
      const after = await series('foo', 'sleep', { reporter: 'source', destination_workload: 'httpbin', destination_workload_namespace: 'foo' });
      assert.deepEqual([...new Set(after.map((l) => `${l.source_principal} ${l.destination_principal}`))].sort(), [`${SLEEP} ${HTTPBIN}`, 'unknown unknown'].sort());
      const plainFromSleep = await series('foo', 'httpbin', { reporter: 'destination', source_workload: 'sleep', connection_security_policy: 'none' });
      assert.deepEqual(plainFromSleep.map((l) => [l.source_principal, l.destination_principal]), [['unknown', 'unknown']]);
    } finally {
      await remove('foo-httpbin-disable');
    }
  });
});

function execText(cmd: string, args: string[], input: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(cmd, args, { cwd: repo, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => done({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin?.end(input);
  });
}
