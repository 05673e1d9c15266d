/**
 * Istio's security and telemetry rules beyond the upstream tables: each test states what a
 * user writing the policy would notice (the error, where, and the hint).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateText } from '../../src/config/validate.js';
import { describeDiagnostics, istioFindings } from './registry-helpers.js';

function doc(kind: string, spec: string, meta = ''): string {
  const group = kind === 'Telemetry' ? 'telemetry.istio.io/v1' : 'security.istio.io/v1';
  return `apiVersion: ${group}\nkind: ${kind}\nmetadata:\n  name: p\n  namespace: foo\n${meta}spec:\n${spec.replace(/^\n/, '').replace(/^/gm, '  ')}\n`;
}

function expectFinding(text: string, level: 'error' | 'warning', path: string, code: string, words: RegExp): void {
  const r = validateText('policy.yaml', text);
  const found = r.diagnostics.find((d) => d.level === level && d.path === path && d.code === code && words.test(d.message));
  assert.ok(found, `expected ${level} ${code} at ${path} matching ${words}, got:\n${describeDiagnostics(r.diagnostics)}`);
}

/** No finding Istio would give (the warnings about what Sinew does not enforce yet are tested in not-enforced.test.ts). */
function expectClean(text: string): void {
  const r = validateText('policy.yaml', text);
  assert.equal(istioFindings(r.diagnostics).length, 0, describeDiagnostics(r.diagnostics));
  assert.equal(r.resources.length, 1);
}

describe('AuthorizationPolicy', () => {
  const ap = (spec: string, meta = '') => doc('AuthorizationPolicy', spec, meta);

  test('structure is strict, with suggestions for misspelt fields and actions', () => {
    expectFinding(ap('rules:\n- from:\n  - source: {principal: [a]}'), 'error', 'spec.rules[0].from[0].source.principal', 'SNW0104', /did you mean "principals"/);
    expectFinding(ap('action: ALOW'), 'error', 'spec.action', 'SNW0103', /did you mean "ALLOW"/);
    expectFinding(ap('rules:\n- to:\n  - operation: {ports: [80]}'), 'error', 'spec.rules[0].to[0].operation.ports[0]', 'SNW0101', /expected string/);
  });

  test('CUSTOM needs rules and a provider, and cannot match identities', () => {
    expectFinding(ap('action: CUSTOM\nprovider: {name: ext}'), 'error', 'spec.rules', 'SNW0410', /without `rules`/);
    expectFinding(ap('action: CUSTOM\nrules: [{}]'), 'error', 'spec.provider', 'SNW0411', /`provider.name` must not be empty/);
    expectFinding(
      ap('action: CUSTOM\nprovider: {name: ext}\nrules:\n- from:\n  - source: {principals: [a]}'),
      'error',
      'spec.rules[0].from[0].source.principals',
      'SNW0410',
      /From.Principals is currently not supported with CUSTOM/,
    );
    expectFinding(ap('action: DENY\nprovider: {name: ext}\nrules: [{}]'), 'error', 'spec.provider', 'SNW0411', /non CUSTOM action, found DENY/);
  });

  test('an empty rule list is not a missing one', () => {
    // DENY with `rules: []` is accepted (it never matches); without `rules` it is an error.
    assert.equal(validateText('p.yaml', ap('action: DENY\nrules: []')).resources.length, 1);
    expectFinding(ap('action: DENY'), 'error', 'spec.rules', 'SNW0412', /never be triggered/);
  });

  test('empty clauses and values are reported where they are', () => {
    expectFinding(ap('rules:\n- to: []'), 'error', 'spec.rules[0].to', 'SNW0413', /`to` must not be empty/);
    expectFinding(ap('rules:\n- to:\n  - operation: {}'), 'error', 'spec.rules[0].to[0].operation', 'SNW0413', /must not be empty/);
    expectFinding(ap("rules:\n- from:\n  - source: {namespaces: [a, '']}"), 'error', 'spec.rules[0].from[0].source.namespaces[1]', 'SNW0414', /found in Namespaces/);
  });

  test('conditions: known keys, map-style keys, values valid for the key', () => {
    expectFinding(ap('rules:\n- when:\n  - {key: source.foo, values: [a]}'), 'error', 'spec.rules[0].when[0].key', 'SNW0418', /unknown attribute: source.foo/);
    expectFinding(ap('rules:\n- when:\n  - {key: "request.headers[]", values: [a]}'), 'error', 'spec.rules[0].when[0].key', 'SNW0418', /should have format a\[b\]/);
    expectFinding(ap("rules:\n- when:\n  - {key: destination.port, notValues: ['99999']}"), 'error', 'spec.rules[0].when[0].notValues[0]', 'SNW0418', /invalid `notValue`.*bad port/);
    expectFinding(ap('rules:\n- when:\n  - {key: "destination.labels[app]", values: [a]}'), 'error', 'spec.rules[0].when[0].key', 'SNW0418', /workload selector/);
    expectFinding(ap('rules:\n- when:\n  - {key: source.ip, values: [10.0.0.0/33]}'), 'error', 'spec.rules[0].when[0].values[0]', 'SNW0418', /bad CIDR range/);
  });

  test('path templates may use only {*} and {**}', () => {
    expectFinding(ap('rules:\n- to:\n  - operation: {paths: ["/a/{name}/{*}"]}'), 'error', 'spec.rules[0].to[0].operation.paths[0]', 'SNW0417', /path template/);
    expectClean(ap('rules:\n- to:\n  - operation: {paths: ["/a/{*}/b/{**}"]}'));
  });

  test('dry-run needs ALLOW or DENY and a boolean', () => {
    const dry = (v: string) => `  annotations:\n    istio.io/dry-run: "${v}"\n`;
    expectClean(ap('action: DENY\nrules: [{to: [{operation: {ports: ["8080"]}}]}]', dry('true')));
    expectFinding(ap('action: AUDIT\nrules: [{}]', dry('true')), 'error', 'metadata.annotations["istio.io/dry-run"]', 'SNW0404', /only supports action ALLOW\/DENY, found action AUDIT/);
  });

  test('targetRef must name a supported kind in the same namespace', () => {
    expectFinding(ap('targetRef: {kind: Deployment, name: x}'), 'error', 'spec.targetRef', 'SNW0403', /targetRef must be to one of/);
    expectClean(ap('targetRefs:\n- {group: networking.istio.io, kind: ServiceEntry, name: x}'));
  });

  test('errors point at the line of the value', () => {
    const r = validateText('p.yaml', ap('rules:\n- from:\n  - source:\n      ipBlocks: [1.2.3.4, nope]'));
    const d = r.diagnostics.find((x) => x.code === 'SNW0415');
    assert.equal(d?.source?.line, 10);
  });
});

describe('PeerAuthentication', () => {
  test('mode misspellings are suggested; dry-run is refused', () => {
    expectFinding(doc('PeerAuthentication', 'mtls: {mode: STRCT}'), 'error', 'spec.mtls.mode', 'SNW0103', /did you mean "STRICT"/);
    expectFinding(
      doc('PeerAuthentication', 'mtls: {mode: STRICT}', '  annotations:\n    istio.io/dry-run: "true"\n'),
      'error',
      'metadata.annotations["istio.io/dry-run"]',
      'SNW0404',
      /foo\/p has unsupported annotation istio.io\/dry-run/,
    );
  });

  test('a selector with a wildcard value is refused', () => {
    expectFinding(doc('PeerAuthentication', 'selector: {matchLabels: {app: "*"}}'), 'error', 'spec.selector.matchLabels', 'SNW0400', /wildcard is not supported/);
  });
});

describe('RequestAuthentication', () => {
  const ra = (rule: string) => doc('RequestAuthentication', `jwtRules:\n- ${rule.replace(/\n/g, '\n  ')}`);

  test('a JWKS given inline must be a key set; jwks and jwksUri exclude each other', () => {
    expectClean(ra(`issuer: a\njwks: '{"keys":[{"kty":"RSA","e":"AQAB","n":"xyz"}]}'`));
    expectFinding(ra(`issuer: a\njwks: '{"keys":[{"e":"AQAB"}]}'`), 'error', 'spec.jwtRules[0].jwks', 'SNW0432', /no "kty"/);
    expectFinding(ra(`issuer: a\njwksUri: https://a/k\njwks: '{"kty":"RSA"}'`), 'error', 'spec.jwtRules[0]', 'SNW0433', /only one of jwks or jwksUri/);
  });

  test('jwksUri needs http or https; issuer or jwksUri is needed', () => {
    expectFinding(ra('issuer: a\njwksUri: ftp://a/keys'), 'error', 'spec.jwtRules[0].jwksUri', 'SNW0431', /URI scheme "ftp" is not supported/);
    expectClean(ra('issuer: a\njwksUri: HTTPS://a.example.com:8443/keys'));
    expectFinding(ra('audiences: [a]'), 'error', 'spec.jwtRules[0].issuer', 'SNW0430', /issuer must be set/);
  });

  test('timeouts are durations of at least 1ms', () => {
    expectFinding(ra('issuer: a\ntimeout: 0.5ms'), 'error', 'spec.jwtRules[0].timeout', 'SNW0436', /greater than 1ms/);
  });
});

describe('Telemetry', () => {
  test('sampling percentage is 0..100', () => {
    expectFinding(doc('Telemetry', 'tracing:\n- randomSamplingPercentage: 101'), 'error', 'spec.tracing[0].randomSamplingPercentage', 'SNW0441', /\[0.0, 100.0\]/);
    expectClean(doc('Telemetry', 'tracing:\n- randomSamplingPercentage: 0.5\n  providers: [{name: zipkin}]'));
  });

  test('custom tags need exactly one source; several tracing blocks draw a warning', () => {
    expectFinding(
      doc('Telemetry', 'tracing:\n- customTags:\n    a: {literal: {value: x}, header: {name: y}}'),
      'error',
      'spec.tracing[0].customTags.a',
      'SNW0442',
      /exactly one/,
    );
    expectFinding(doc('Telemetry', 'tracing: [{}, {}]'), 'warning', 'spec.tracing', 'SNW0445', /multiple tracing/);
  });

  test('selector and targetRef exclude each other; reportingInterval is a duration', () => {
    expectFinding(doc('Telemetry', 'selector: {matchLabels: {app: a}}\ntargetRef: {kind: Service, name: a}'), 'error', 'spec', 'SNW0402', /only one of/);
    expectFinding(doc('Telemetry', 'metrics:\n- reportingInterval: soon'), 'error', 'spec.metrics[0].reportingInterval', 'SNW0436', /invalid duration/);
    expectFinding(doc('Telemetry', 'metrics:\n- overrides:\n  - match: {metric: REQUEST_CONT}'), 'error', 'spec.metrics[0].overrides[0].match.metric', 'SNW0103', /did you mean "REQUEST_COUNT"/);
  });
});
