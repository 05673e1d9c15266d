/**
 * The Kubernetes Gateway API kinds are validated as the API server validates them: against the
 * CRDs' schemas (strict fields, types, enums, patterns, bounds), with the CRDs' defaults applied,
 * and with every CEL rule of `x-kubernetes-validations` evaluated; each finding names the file,
 * line, field and code. Istio's Gateway and the Gateway API's share a name and live side by side.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateInputs, validateText } from '../../src/config/validate.js';
import { MemoryConfigStore, keyOf } from '../../src/config/store.js';
import { findKind, kindKey } from '../../src/api/resources/index.js';
import { formatDiagnostic, type Diagnostic } from '../../src/api/diagnostics.js';
import { renderSchemasModule, schemasModulePath } from '../../scripts/gen-gateway-api-schemas.js';
import { fixtures, referenceCorpus, repoRoot } from '../support/reference-corpus.js';

const errors = (ds: Diagnostic[]) => ds.filter((d) => d.level === 'error');

function check(yaml: string) {
  const result = validateText('routes.yaml', yaml);
  return { resources: result.resources, errors: errors(result.diagnostics), all: result.diagnostics };
}

const route = (rules: string, extra = '') => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: apps}
spec:
  parentRefs: [{name: gw}]
${extra}  rules:
${rules}`;

describe('Gateway API: structure from the CRD schemas', () => {
  test('a valid HTTPRoute is read, with the CRD defaults applied as the API server applies them', () => {
    const { resources, errors: errs } = check(route('  - backendRefs: [{name: svc, port: 8080}]\n'));
    assert.deepEqual(errs, []);
    const spec = resources[0].spec as { parentRefs: unknown[]; rules: { matches: unknown[]; backendRefs: unknown[] }[] };
    assert.deepEqual(spec.parentRefs, [{ name: 'gw', group: 'gateway.networking.k8s.io', kind: 'Gateway' }]);
    assert.deepEqual(spec.rules[0].matches, [{ path: { type: 'PathPrefix', value: '/' } }]);
    assert.deepEqual(spec.rules[0].backendRefs, [{ name: 'svc', port: 8080, group: '', kind: 'Service', weight: 1 }]);
    assert.equal(resources[0].group, 'gateway.networking.k8s.io');
  });

  test('an unknown field is an error at its line, with a suggestion', () => {
    const { errors: errs } = check(route('  - backendRef: [{name: svc, port: 8080}]\n'));
    assert.equal(errs.length, 1, errs.map(formatDiagnostic).join('\n'));
    assert.equal(errs[0].code, 'SNW0104');
    assert.equal(errs[0].path, 'spec.rules[0].backendRef');
    assert.match(errs[0].message, /did you mean "backendRefs"/);
    assert.equal(errs[0].source?.line, 7);
  });

  test('enums, patterns and bounds of the schema', () => {
    const { errors: errs } = check(
      route("  - matches: [{path: {type: PathPrefx, value: /a}}]\n    backendRefs: [{name: 'Bad_Name', port: 70000}]\n"),
    );
    const byPath = Object.fromEntries(errs.map((d) => [d.path, d]));
    assert.equal(byPath['spec.rules[0].matches[0].path.type']?.code, 'SNW0103');
    assert.match(byPath['spec.rules[0].matches[0].path.type'].message, /did you mean "PathPrefix"/);
    assert.equal(byPath['spec.rules[0].backendRefs[0].port']?.code, 'SNW0105');
    assert.ok(errs.length >= 2);
  });

  test('hostnames follow the CRD pattern (RE2, as the API server matches it)', () => {
    const { errors: errs } = check(route('  - backendRefs: [{name: svc, port: 80}]\n', '  hostnames: ["Foo.example.com", "*.ok.example.com"]\n'));
    assert.deepEqual(errs.map((d) => [d.code, d.path]), [['SNW0106', 'spec.hostnames[0]']]);
  });
});

describe('Gateway API: the CRDs\' CEL rules', () => {
  test('a RequestRedirect beside backendRefs breaks the CRD rule, with its message, at the rule', () => {
    const { errors: errs } = check(route('  - filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]\n    backendRefs: [{name: svc, port: 8080}]\n'));
    assert.deepEqual(errs.map((d) => [d.code, d.path, d.message]), [['SNW0601', 'spec.rules[0]', 'RequestRedirect filter must not be used together with backendRefs']]);
    assert.equal(errs[0].source?.line, 7);
  });

  test('a filter type without its field, and a field of another type', () => {
    const { errors: errs } = check(route('  - filters: [{type: RequestHeaderModifier, urlRewrite: {hostname: x.example.com}}]\n    backendRefs: [{name: svc, port: 8080}]\n'));
    assert.deepEqual(errs.map((d) => d.message).sort(), ['filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type', 'filter.urlRewrite must be nil if the filter.type is not URLRewrite']);
    assert.ok(errs.every((d) => d.code === 'SNW0601' && d.path === 'spec.rules[0].filters[0]'));
  });

  test('path values: absolute, no dot segments (rules evaluated on the defaulted PathPrefix type)', () => {
    const { errors: errs } = check(route('  - matches: [{path: {value: "foo/../bar"}}]\n    backendRefs: [{name: svc, port: 8080}]\n'));
    assert.deepEqual(errs.map((d) => d.message).sort(), ["must not contain '/../' when type one of ['Exact', 'PathPrefix']", "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"]);
  });

  test('ReplacePrefixMatch needs exactly one PathPrefix match (has() on an indexed operand)', () => {
    const ok = check(route('  - matches: [{path: {type: PathPrefix, value: /a}}]\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n    backendRefs: [{name: svc, port: 8080}]\n'));
    assert.deepEqual(ok.errors, []);
    const bad = check(route('  - matches: [{path: {type: Exact, value: /a}}]\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n    backendRefs: [{name: svc, port: 8080}]\n'));
    assert.deepEqual(bad.errors.map((d) => d.message), ['When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified']);
  });

  test('timeouts: backendRequest cannot exceed request (durations compared as CEL durations)', () => {
    assert.deepEqual(check(route('  - timeouts: {request: 10s, backendRequest: 1s}\n    backendRefs: [{name: svc, port: 80}]\n')).errors, []);
    assert.deepEqual(
      check(route('  - timeouts: {request: 1s, backendRequest: 1500ms}\n    backendRefs: [{name: svc, port: 80}]\n')).errors.map((d) => d.message),
      ['backendRequest timeout cannot be longer than request timeout'],
    );
  });

  test('Gateway listeners: names are a list-map key, and the CRD\'s TLS rules', () => {
    const { errors: errs } = check(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  gatewayClassName: sinew
  listeners:
  - {name: web, port: 80, protocol: HTTP}
  - {name: web, port: 8080, protocol: HTTP}
  - {name: plain, port: 81, protocol: HTTP, tls: {mode: Terminate, certificateRefs: [{name: cert}]}}
`);
    const found = errs.map((d) => [d.code, d.path]);
    assert.ok(found.some(([code, path]) => code === 'SNW0602' && path === 'spec.listeners[1]'), JSON.stringify(found));
    assert.ok(errs.some((d) => d.code === 'SNW0601' && /Listener name must be unique/.test(d.message)), errs.map(formatDiagnostic).join('\n'));
    assert.ok(errs.some((d) => d.code === 'SNW0601' && /tls must not be specified for protocols \['HTTP', 'TCP', 'UDP'\]/.test(d.message)), errs.map(formatDiagnostic).join('\n'));
  });

  test('TLSRoute v1alpha2 and v1 are checked against their own versions of the schema', () => {
    const tls = (version: string) => `apiVersion: gateway.networking.k8s.io/${version}
kind: TLSRoute
metadata: {name: t, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: svc, port: 443}]}]
`;
    assert.deepEqual(check(tls('v1alpha2')).errors, []);
    // v1 requires hostnames.
    assert.deepEqual(check(tls('v1')).errors.map((d) => [d.code, d.path]), [['SNW0102', 'spec.hostnames']]);
  });

  test('every rule of the transcribed schemas compiles', async () => {
    const { gatewayApiSchemas } = await import('../../src/api/resources/gateway-api/crd-schemas.js');
    const { forEachRuleSite } = await import('../../src/api/resources/gateway-api/openapi.js');
    const { parse } = await import('@bufbuild/cel');
    const rules = new Set<string>();
    const walk = (s: unknown): void => {
      if (!s || typeof s !== 'object') return;
      if (Array.isArray(s)) return s.forEach(walk);
      for (const r of (s as { 'x-kubernetes-validations'?: { rule: string }[] })['x-kubernetes-validations'] ?? []) rules.add(r.rule);
      for (const v of Object.values(s)) walk(v);
    };
    gatewayApiSchemas.forEach(walk);
    assert.ok(rules.size > 80, `${rules.size} rules`);
    for (const rule of rules) assert.doesNotThrow(() => parse(rule), rule);
    assert.equal(typeof forEachRuleSite, 'function');
  });
});

describe('Gateway API beside Istio', () => {
  const istioGateway = 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: web, namespace: apps}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n';
  const k8sGateway = 'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: web, namespace: apps}\nspec:\n  gatewayClassName: sinew\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n';

  test('the two Gateways of one name are two resources, each in its group, and deleting one leaves the other', async () => {
    const result = validateText('both.yaml', `${istioGateway}---\n${k8sGateway}`);
    assert.deepEqual(errors(result.diagnostics), []);
    assert.equal(result.resources.length, 2, 'not a duplicate: another group');
    const store = new MemoryConfigStore();
    await store.apply(result.resources);
    assert.equal(store.list('Gateway').length, 1);
    assert.equal(store.list('Gateway.gateway.networking.k8s.io').length, 1);
    assert.equal(store.get('Gateway', 'apps', 'web')?.group, 'networking.istio.io');
    assert.equal(store.get('Gateway.gateway.networking.k8s.io', 'apps', 'web')?.group, 'gateway.networking.k8s.io');
    await store.delete([{ kind: kindKey('Gateway', 'gateway.networking.k8s.io'), namespace: 'apps', name: 'web' }]);
    assert.equal(store.list().length, 1);
    assert.equal(store.list()[0].group, 'networking.istio.io');
    assert.equal(keyOf(result.resources[0]), 'Gateway/apps/web');
  });

  test('a Gateway API kind Sinew does not implement is skipped with a warning; a near miss of one it does is an error', () => {
    const skipped = validateText('x.yaml', 'apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {name: p}\nspec: {}\n');
    assert.deepEqual(skipped.diagnostics.map((d) => [d.level, d.code]), [['warning', 'SNW0014']]);
    assert.match(skipped.diagnostics[0].message, /Gateway API kind/);
    const typo = validateText('x.yaml', 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoutes\nmetadata: {name: p}\nspec: {}\n');
    assert.equal(typo.diagnostics[0].code, 'SNW0010');
    assert.match(typo.diagnostics[0].message, /did you mean "HTTPRoute"/);
  });

  test('findKind resolves a shared name to Istio\'s kind, and to the Gateway API\'s in its group or by its key', () => {
    assert.equal(findKind('Gateway')?.group, 'networking.istio.io');
    assert.equal(findKind('Gateway', 'gateway.networking.k8s.io')?.group, 'gateway.networking.k8s.io');
    assert.equal(findKind('Gateway.gateway.networking.k8s.io')?.group, 'gateway.networking.k8s.io');
  });
});

describe('the repository\'s Gateway API fixtures', () => {
  const dir = join(fixtures.istio, '..', 'gateway-api', 'conformance');
  test('every manifest of the transcribed conformance suite validates (placeholders filled in)', { skip: existsSync(dir) ? false : 'no transcribed conformance fixtures yet' }, async () => {
    const result = await validateInputs(['tests', 'base', 'mesh'].map((d) => join(dir, d)));
    // {GATEWAY_CONTROLLER_NAME} is filled in when the suite applies the manifest
    const errs = errors(result.diagnostics).filter((d) => !/\{GATEWAY_CONTROLLER_NAME\}/.test(readFileSync(d.source!.file, 'utf8').split('\n')[d.source!.line - 1] ?? ''));
    assert.deepEqual(errs.map(formatDiagnostic), []);
    assert.ok(result.resources.length > 50, `${result.resources.length} resources`);
  });
});

describe('the upstream schemas and manifests (reference corpus)', { skip: referenceCorpus.skip }, () => {
  test('the transcribed CRD schemas are what the upstream CRDs say', () => {
    const expected = renderSchemasModule(referenceCorpus.path('gateway-api'));
    assert.ok(readFileSync(schemasModulePath, 'utf8') === expected, 'src/api/resources/gateway-api/crd-schemas.ts is out of date: run scripts/gen-gateway-api-schemas.ts on the gateway-api copy');
  });

  test('every manifest of the upstream conformance suite validates (placeholders filled in)', async () => {
    const paths = ['tests', 'base', 'mesh'].map((d) => referenceCorpus.path(join('gateway-api/conformance', d)));
    const result = await validateInputs(paths);
    const errs = errors(result.diagnostics).filter((d) => !/\{GATEWAY_CONTROLLER_NAME\}/.test(readFileSync(d.source!.file, 'utf8').split('\n')[d.source!.line - 1] ?? ''));
    assert.deepEqual(errs.map(formatDiagnostic), []);
    assert.ok(result.resources.length > 300, `${result.resources.length} resources`);
    assert.ok(repoRoot);
  });
});
