/**
 * Path normalisation cannot be used to slip past a path policy, in the modes where Istio says
 * it cannot (https://istio.io/latest/docs/reference/config/security/normalization/, the
 * bulletins ISTIO-SECURITY-2021-005 and -008, istio/istio tests/integration/security/
 * normalization_test.go). Each request is sent, byte for byte, to a running proxy whose
 * inbound listener is the one the compiler makes of the policy and the mesh's
 * `pathNormalization`, in front of a real echo server.
 *
 * Outcomes: 400 (refused before authorization), 403 (denied), or the path the upstream got.
 * Where a mode lets an odd form through, that is Istio's documented behaviour for that mode
 * (NONE normalises nothing; BASE does not merge slashes; only DECODE_AND_MERGE_SLASHES decodes
 * escaped slashes), which is why the table is per mode.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { compile, parse, workload } from '../compiler/support/mesh.js';
import { createProxy, type Proxy } from '../../src/proxy/proxy.js';
import { normalizePath, PATH_NORMALIZATIONS, type PathNormalization } from '../../src/security/path-normalization.js';
import { startEcho, type EchoServer } from '../proxy/support/echo.js';

const mesh = `
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
`;
const policy = (action: string, paths: string[]) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: paths, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ${action}
  rules:
  - to:
    - operation:
        paths: ${JSON.stringify(paths)}
`;

/** httpbin's sidecar, compiled from the policy with the mesh's mode: its inbound listener only, in front of `app`. */
async function startHttpbinSidecar(policyYaml: string, mode: PathNormalization, app: EchoServer): Promise<{ proxy: Proxy; port: number }> {
  const resources = [...parse(mesh + '---' + policyYaml), workload('httpbin', { namespace: 'foo', labels: { app: 'httpbin' }, ports: [{ name: 'http', containerPort: 80 }] })];
  const config = compile(resources, new Map([['foo/httpbin', [{ name: 'httpbin-0', address: '127.0.0.1', ports: { 80: 0 } }]]]), {
    workload: 'httpbin',
    namespace: 'foo',
    labels: { app: 'httpbin' },
    ports: { inbound: [{ containerPort: 80, listen: { host: '127.0.0.1', port: 0 }, app: { host: '127.0.0.1', port: app.port } }] },
    mesh: { pathNormalization: mode },
  });
  const inbound = config.listeners.filter((l) => l.direction === 'inbound');
  assert.equal(inbound[0]?.http?.pathNormalization ?? 'BASE', mode);
  assert.ok(inbound[0]?.http?.filters?.some((f) => f.name === 'sinew.filters.http.rbac'), 'the inbound listener has an RBAC filter');
  const proxy = createProxy({ config: { ...config, listeners: inbound }, telemetry: false });
  await proxy.start();
  return { proxy, port: proxy.listenerAddresses()[inbound[0].name].port };
}

/** One request written as given (no client normalises it), on its own connection. */
async function send(port: number, method: string, target: string): Promise<number | string> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    socket.write(`${method} ${target} HTTP/1.1\r\nHost: httpbin.foo:8000\r\nConnection: close\r\n\r\n`);
    await once(socket, 'close');
  } finally {
    socket.destroy();
  }
  const text = Buffer.concat(chunks).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  if (status !== 200) return status;
  return (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { path: string }).path;
}

type Row = [method: string, target: string, outcomes: Record<PathNormalization, number | string>];
const all = (o: number | string): Record<PathNormalization, number | string> => ({ NONE: o, BASE: o, MERGE_SLASHES: o, DECODE_AND_MERGE_SLASHES: o });

// DENY paths ["/admin", "/admin/*"]
const denyTable: Row[] = [
  ['GET', '/admin', all(403)],
  ['GET', '/admin/users', all(403)],
  ['GET', '/status', all('/status')],
  ['GET', '//admin', { NONE: '//admin', BASE: '//admin', MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/%2Fadmin', { NONE: '/%2Fadmin', BASE: '/%2Fadmin', MERGE_SLASHES: '/%2Fadmin', DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/%2fadmin', { NONE: '/%2fadmin', BASE: '/%2fadmin', MERGE_SLASHES: '/%2fadmin', DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/%5cadmin', { NONE: '/%5cadmin', BASE: '/%5cadmin', MERGE_SLASHES: '/%5cadmin', DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/app/../admin', { NONE: '/app/../admin', BASE: 403, MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/app/%2E./admin', { NONE: '/app/%2E./admin', BASE: 403, MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/app/%2e%2E/admin', { NONE: '/app/%2e%2E/admin', BASE: 403, MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/app/..\\admin', { NONE: '/app/..\\admin', BASE: 403, MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '\\admin', all(400)],
  ['GET', '/%61dmin', { NONE: '/%61dmin', BASE: 403, MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/admin#x', all(403)],
  ['GET', '/admin?x=1', all(403)],
  ['GET', '/admin%00', all(400)],
  ['GET', '/%00/admin', all(400)],
  ['get', '/admin', all(400)],
  ['Get', '/status', all(400)],
];

// ALLOW paths ["/public/*"]: every odd form of /admin is denied in every mode.
const allowTable: Row[] = [
  ['GET', '/public/index.html', all('/public/index.html')],
  ['GET', '/admin', all(403)],
  ['GET', '//admin', all(403)],
  ['GET', '/%2Fadmin', all(403)],
  ['GET', '/%5cadmin', all(403)],
  ['GET', '/app/../admin', all(403)],
  ['GET', '/app/%2E./admin', all(403)],
  ['GET', '\\admin', all(400)],
  ['GET', '/%61dmin', all(403)],
  ['GET', '/admin#x', all(403)],
  ['GET', '/admin%00', all(400)],
  ['get', '/public/x', all(400)],
  // Climbing out of the allowed prefix: only normalisation stops it.
  ['GET', '/public/../admin', { NONE: '/public/../admin', BASE: 403, MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/public/%2e%2e/admin', { NONE: '/public/%2e%2e/admin', BASE: 403, MERGE_SLASHES: 403, DECODE_AND_MERGE_SLASHES: 403 }],
  ['GET', '/public/..%2Fadmin', { NONE: '/public/..%2Fadmin', BASE: '/public/..%2Fadmin', MERGE_SLASHES: '/public/..%2Fadmin', DECODE_AND_MERGE_SLASHES: 403 }],
];

for (const [name, yaml, rows] of [
  ['DENY paths ["/admin", "/admin/*"]', policy('DENY', ['/admin', '/admin/*']), denyTable],
  ['ALLOW paths ["/public/*"]', policy('ALLOW', ['/public/*']), allowTable],
] as const) {
  describe(`path normalisation under ${name}`, () => {
    for (const mode of PATH_NORMALIZATIONS) {
      test(mode, async () => {
        const app = await startEcho('httpbin');
        let sidecar: { proxy: Proxy; port: number } | undefined;
        try {
          sidecar = await startHttpbinSidecar(yaml, mode, app);
          const port = sidecar.port;
          const got = await Promise.all(rows.map(([method, target]) => send(port, method, target)));
          assert.deepEqual(
            rows.map(([method, target], i) => `${method} ${target} -> ${got[i]}`),
            rows.map(([method, target, outcomes]) => `${method} ${target} -> ${outcomes[mode]}`),
          );
        } finally {
          await sidecar?.proxy.close({ drainMs: 0 });
          await app.close();
        }
      });
    }
  });
}

describe('normalizePath: Envoy order of operations', () => {
  test('the query is kept and never normalised', () => {
    assert.deepEqual(normalizePath('/a/../b?x=/../%2F//', 'DECODE_AND_MERGE_SLASHES'), { ok: true, path: '/b?x=/../%2F//' });
  });
  test('escaped slashes are decoded before dot segments are removed', () => {
    assert.deepEqual(normalizePath('/a/b%2F..%2Fc', 'DECODE_AND_MERGE_SLASHES'), { ok: true, path: '/a/c' });
    assert.deepEqual(normalizePath('/a/b%2F..%2Fc', 'MERGE_SLASHES'), { ok: true, path: '/a/b%2F..%2Fc' });
  });
  test("istio.io's examples", () => {
    const rows: [string, Record<PathNormalization, string>][] = [
      ['/a/../b', { NONE: '/a/../b', BASE: '/b', MERGE_SLASHES: '/b', DECODE_AND_MERGE_SLASHES: '/b' }],
      ['/a/%2E%2E/b', { NONE: '/a/%2E%2E/b', BASE: '/b', MERGE_SLASHES: '/b', DECODE_AND_MERGE_SLASHES: '/b' }],
      ['/a%2Fb', { NONE: '/a%2Fb', BASE: '/a%2Fb', MERGE_SLASHES: '/a%2Fb', DECODE_AND_MERGE_SLASHES: '/a/b' }],
      ['/a//b', { NONE: '/a//b', BASE: '/a//b', MERGE_SLASHES: '/a/b', DECODE_AND_MERGE_SLASHES: '/a/b' }],
      ['/a%2F/b', { NONE: '/a%2F/b', BASE: '/a%2F/b', MERGE_SLASHES: '/a%2F/b', DECODE_AND_MERGE_SLASHES: '/a/b' }],
    ];
    for (const [input, want] of rows) for (const mode of PATH_NORMALIZATIONS) assert.deepEqual(normalizePath(input, mode), { ok: true, path: want[mode] }, `${input} in ${mode}`);
  });
});
