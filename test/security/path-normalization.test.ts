/**
 * Path normalisation cannot be used to slip past a path policy, in the modes where Istio says
 * it cannot (https://istio.io/latest/docs/reference/config/security/normalization/, the
 * bulletins ISTIO-SECURITY-2021-005 and -008, istio/istio tests/integration/security/
 * normalization_test.go). Each request is normalised as the connection manager does
 * (`normalizePath` with the listener's mode) and then goes through the RBAC filter built from
 * the config the compiler makes of the policy and the mesh's `pathNormalization`.
 *
 * Outcomes: 400 (refused before authorization), 403 (denied), or the path the upstream gets.
 * Where a mode lets an odd form through, that is Istio's documented behaviour for that mode
 * (NONE normalises nothing; BASE does not merge slashes; only DECODE_AND_MERGE_SLASHES decodes
 * escaped slashes), which is why the table is per mode.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, parse, workload } from '../compiler/support/mesh.js';
import { createRbacFilterFactory } from '../../src/proxy/http/filters/rbac/index.js';
import type { HttpFilterContext } from '../../src/proxy/http/filters/contract.js';
import { isAcceptedMethod, normalizePath, PATH_NORMALIZATIONS, type PathNormalization } from '../../src/security/path-normalization.js';

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

/** Builds what a request on httpbin's inbound listener meets: the listener's mode and its RBAC filter. */
function httpbinInbound(policyYaml: string, mode: PathNormalization) {
  const resources = [...parse(mesh + '---' + policyYaml), workload('httpbin', { namespace: 'foo', labels: { app: 'httpbin' }, ports: [{ name: 'http', containerPort: 80 }] })];
  const config = compile(resources, new Map([['foo/httpbin', [{ name: 'httpbin-0', address: '127.0.0.1', ports: { 80: 28000 } }]]]), {
    workload: 'httpbin',
    namespace: 'foo',
    labels: { app: 'httpbin' },
    ports: { inbound: [{ containerPort: 80, listen: { host: '127.0.0.1', port: 28000 }, app: { host: '127.0.0.1', port: 38000 } }] },
    mesh: { pathNormalization: mode },
  });
  const http = config.listeners.find((l) => l.direction === 'inbound')!.http!;
  const rbac = http.httpFilters?.find((f) => f.name === 'sinew.filters.http.rbac');
  assert.ok(rbac, 'the inbound listener has an RBAC filter');
  return { mode: http.pathNormalization ?? 'BASE', filter: createRbacFilterFactory().compile(rbac.config) };
}

async function send(inbound: ReturnType<typeof httpbinInbound>, method: string, target: string): Promise<number | string> {
  if (!isAcceptedMethod(method)) return 400;
  const normalized = normalizePath(target, inbound.mode);
  if (!normalized.ok) return 400;
  const ctx: HttpFilterContext = {
    attributes: { method, path: normalized.path, host: 'httpbin.foo:8000', headers: {} },
    requestHeaders: { get: () => undefined, set: () => {}, remove: () => {}, entries: () => [] },
    addResponseHeader: () => {},
    setMetadata: () => {},
    signal: new AbortController().signal,
  };
  const status = await inbound.filter.decodeHeaders(ctx);
  return status === 'continue' ? normalized.path : status.stop.status;
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
        const inbound = httpbinInbound(yaml, mode);
        assert.equal(inbound.mode, mode);
        const got = await Promise.all(rows.map(([method, target]) => send(inbound, method, target)));
        assert.deepEqual(
          rows.map(([method, target], i) => `${method} ${target} -> ${got[i]}`),
          rows.map(([method, target, outcomes]) => `${method} ${target} -> ${outcomes[mode]}`),
        );
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
