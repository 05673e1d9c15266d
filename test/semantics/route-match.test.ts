/**
 * The compiled route match and virtual host selection (Envoy's semantics, the ProxyConfig
 * contract): what the proxy routes with and `explainRequest` explains with.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeaderMatcher, Route, RouteConfiguration, RouteMatch, StringMatch } from '../../src/api/proxy-config.js';
import { compileHeaderMatcher, compileRouteMatch, selectRoute, type RequestView } from '../../src/semantics/route-match.js';
import { routingClaimPath } from '../../src/semantics/jwt-claim-route.js';
import { claimValues } from '../../src/security/attributes.js';
import { compileStringMatch, type Problems } from '../../src/semantics/string-match.js';
import { compileVirtualHosts, selectByDomain } from '../../src/semantics/virtual-hosts.js';

const strict: Problems = { add: (path, message) => assert.fail(`${path}: ${message}`) };

function collect(): Problems & { all: string[] } {
  const all: string[] = [];
  return { all, add: (path, message) => all.push(`${path}: ${message}`) };
}

function view(path: string, init: Partial<Omit<RequestView, 'header' | 'claim'>> & { headers?: Record<string, string>; claims?: Record<string, unknown> } = {}): RequestView {
  const q = path.indexOf('?');
  const headers = new Map(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const method = init.method ?? 'GET';
  const authority = init.authority ?? 'reviews:9080';
  headers.set(':method', method);
  headers.set(':authority', authority);
  return {
    method,
    scheme: init.scheme ?? 'http',
    authority,
    path: q >= 0 ? path.slice(0, q) : path,
    query: q >= 0 ? path.slice(q + 1) : '',
    port: init.port ?? 9080,
    header: (name) => headers.get(name),
    // The proxy reads claims of the verified token the way authorization does.
    ...(init.claims ? { claim: (p: readonly string[]) => claimValues(init.claims, p) } : {}),
  };
}

/** The path length a match consumed, or -1. */
function run(m: RouteMatch, req: RequestView): number {
  return selectRoute([{ match: compileRouteMatch(m, 'm', strict) }], req)?.matchedLength ?? -1;
}

describe('string matches', () => {
  const matches = (m: StringMatch, v: string) => compileStringMatch(m, 'x', strict)(v);
  test('exact, prefix, case-insensitive exact and prefix, RE2 regex over the whole value', () => {
    assert.ok(matches({ exact: '/a' }, '/a'));
    assert.ok(!matches({ exact: '/a' }, '/A'));
    assert.ok(matches({ exact: '/a', ignoreCase: true }, '/A'));
    assert.ok(matches({ prefix: '/api' }, '/api/v1'));
    assert.ok(matches({ prefix: '/API', ignoreCase: true }, '/api/v1'));
    assert.ok(matches({ regex: 'v[0-9]+' }, 'v12'));
    assert.ok(!matches({ regex: 'v[0-9]+' }, 'xv12'));
    assert.ok(!matches({ regex: 'v[0-9]+' }, 'v12x'));
  });

  test('a regex RE2 cannot compile is a problem at its path, and matches nothing', () => {
    const p = collect();
    const f = compileStringMatch({ regex: '(unclosed' }, 'routes[0].match.path', p);
    assert.equal(p.all.length, 1);
    assert.match(p.all[0], /^routes\[0\]\.match\.path\.regex: invalid RE2 regex/);
    assert.equal(f('(unclosed'), false);
  });
});

describe('path matches and ignorePathCase (Istio ignoreUriCase)', () => {
  test('exact and prefix ignore case; the prefix consumed is its own length', () => {
    assert.equal(run({ path: { exact: '/Health' }, ignorePathCase: true }, view('/health')), 7);
    assert.equal(run({ path: { prefix: '/API' }, ignorePathCase: true }, view('/api/v1/x')), 4);
    assert.equal(run({ path: { prefix: '/API' } }, view('/api/v1/x')), -1);
  });

  test('regression: a regex stays case-sensitive, as Envoy ignores case_sensitive for safe_regex', () => {
    const m: RouteMatch = { path: { regex: '/api/v[0-9]+' }, ignorePathCase: true };
    assert.equal(run(m, view('/api/v1')), 7);
    assert.equal(run(m, view('/API/v1')), -1);
  });

  test('without a path condition every path matches (Envoy prefix "/"); the query is not part of the path', () => {
    assert.equal(run({}, view('/anything')), 1);
    assert.equal(run({ path: { exact: '/a' } }, view('/a?x=1')), 2);
  });
});

describe('headers (Envoy HeaderMatcher)', () => {
  const holds = (h: HeaderMatcher, headers: Record<string, string>) => compileHeaderMatcher(h, 'h', strict)(view('/', { headers }).header);

  test('present, value, absent', () => {
    assert.ok(holds({ name: 'x-canary' }, { 'x-canary': '' }));
    assert.ok(!holds({ name: 'x-canary' }, {}));
    assert.ok(holds({ name: 'end-user', match: { exact: 'jason' } }, { 'end-user': 'jason' }));
    assert.ok(!holds({ name: 'end-user', match: { exact: 'jason' } }, {}));
    assert.ok(holds({ name: ':method', match: { exact: 'GET' } }, {}), 'pseudo-headers match too');
  });

  test('invert: an absent header holds unless treatMissingAsEmpty reads it as ""', () => {
    assert.ok(holds({ name: 'end-user', invert: true }, {}));
    assert.ok(!holds({ name: 'end-user', invert: true }, { 'end-user': 'x' }));
    assert.ok(holds({ name: 'end-user', match: { regex: '.*' }, invert: true }, {}), 'Envoy: a missing header is a non-match, inverted');
    // Istio's withoutHeaders: "" is not jason (holds), "" matches .* (never holds).
    assert.ok(holds({ name: 'end-user', match: { exact: 'jason' }, invert: true, treatMissingAsEmpty: true }, {}));
    assert.ok(!holds({ name: 'end-user', match: { exact: 'jason' }, invert: true, treatMissingAsEmpty: true }, { 'end-user': 'jason' }));
    assert.ok(!holds({ name: 'end-user', match: { regex: '.*' }, invert: true, treatMissingAsEmpty: true }, {}));
    assert.ok(holds({ name: 'end-user', match: { exact: '' }, treatMissingAsEmpty: true }, {}));
  });
});

describe('the other conditions, ANDed', () => {
  test('method, scheme, authority, port, query parameters', () => {
    assert.equal(run({ method: { exact: 'PUT' } }, view('/', { method: 'PUT' })), 1);
    assert.equal(run({ method: { exact: 'PUT' } }, view('/')), -1);
    assert.equal(run({ scheme: { exact: 'https' } }, view('/', { scheme: 'https' })), 1);
    assert.equal(run({ authority: { prefix: 'reviews:' } }, view('/')), 1);
    assert.equal(run({ port: 9080 }, view('/')), 1);
    assert.equal(run({ port: 80 }, view('/')), -1);
    assert.equal(run({ queryParams: [{ name: 'v', match: { exact: '2' } }, { name: 'flag' }] }, view('/x?v=2&flag')), 1);
    assert.equal(run({ queryParams: [{ name: 'v', match: { exact: '2' } }, { name: 'flag' }] }, view('/x?v=2')), -1);
    assert.equal(run({ queryParams: [{ name: 'q', match: { regex: 'ab+' } }] }, view('/x?q=abc')), -1);
    assert.equal(run({ path: { prefix: '/a' }, method: { exact: 'GET' }, headers: [{ name: 'x' }] }, view('/a', { headers: { x: '1' } })), 2);
  });

  test('routes are tried in order and the first match wins', () => {
    const routes = [
      { name: 'jason', match: compileRouteMatch({ headers: [{ name: 'end-user', match: { exact: 'jason' } }] }, 'r0', strict) },
      { name: 'rest', match: compileRouteMatch({ path: { prefix: '/' } }, 'r1', strict) },
      { name: 'never', match: compileRouteMatch({}, 'r2', strict) },
    ];
    assert.equal(selectRoute(routes, view('/', { headers: { 'end-user': 'jason' } }))?.route.name, 'jason');
    assert.equal(selectRoute(routes, view('/'))?.route.name, 'rest');
    assert.equal(selectRoute(routes.slice(0, 1), view('/')), undefined);
  });
});

describe('JWT claim conditions (Istio `@request.auth.claims.<name>`)', () => {
  test('the key names a claim path with `.` or `[]`, the prefix in any case (Istio ToRoutingClaim); anything else is a header', () => {
    assert.deepEqual(routingClaimPath('@request.auth.claims.groups'), ['groups']);
    assert.deepEqual(routingClaimPath('@request.auth.claims.group.id'), ['group', 'id']);
    assert.deepEqual(routingClaimPath('@request.auth.claims[group][id]'), ['group', 'id']);
    assert.deepEqual(routingClaimPath('@Request.Auth.Claims.Groups'), ['Groups']);
    for (const header of ['@request.auth.claims', '@request.auth.claims.', '@request.auth.claims[]', '@request.auth.claimsx', 'request.auth.claims.groups', 'end-user']) {
      assert.equal(routingClaimPath(header), undefined, header);
    }
  });

  const groups: RouteMatch = { claims: [{ path: ['groups'], match: { exact: 'group1' } }] };

  test('a string claim matches by value; a list claim when any element matches; other types, a missing claim and no token never', () => {
    assert.equal(run(groups, view('/headers', { claims: { groups: 'group1' } })), 1);
    assert.equal(run(groups, view('/headers', { claims: { groups: ['group2', 'group1'] } })), 1);
    assert.equal(run(groups, view('/headers', { claims: { groups: ['group2'] } })), -1);
    assert.equal(run(groups, view('/headers', { claims: { groups: 1 } })), -1);
    assert.equal(run(groups, view('/headers', { claims: { groups: { group1: true } } })), -1);
    assert.equal(run(groups, view('/headers', { claims: {} })), -1);
    assert.equal(run(groups, view('/headers')), -1, 'no verified token');
  });

  test('regression: a header named like the claim never satisfies it (only the verified token does)', () => {
    assert.equal(run(groups, view('/headers', { headers: { '@request.auth.claims.groups': 'group1' } })), -1);
    assert.equal(run(groups, view('/headers', { headers: { '@request.auth.claims.groups': 'group1' }, claims: { groups: ['group2'] } })), -1);
  });

  test('nested claims; prefix and regex as for headers; no match = present; claim names are case-sensitive', () => {
    const nested: RouteMatch = { claims: [{ path: ['org', 'team'], match: { prefix: 'plat' } }] };
    assert.equal(run(nested, view('/', { claims: { org: { team: 'platform' } } })), 1);
    assert.equal(run(nested, view('/', { claims: { org: { team: 'web' } } })), -1);
    assert.equal(run(nested, view('/', { claims: { 'org.team': 'platform' } })), -1);
    const regex: RouteMatch = { claims: [{ path: ['scope'], match: { regex: 'read|write' } }] };
    assert.equal(run(regex, view('/', { claims: { scope: ['admin', 'write'] } })), 1);
    assert.equal(run(regex, view('/', { claims: { scope: 'readwrite' } })), -1, 'the regex matches the whole value');
    assert.equal(run({ claims: [{ path: ['sub'] }] }, view('/', { claims: { sub: 'alice' } })), 1);
    assert.equal(run({ claims: [{ path: ['Sub'] }] }, view('/', { claims: { sub: 'alice' } })), -1);
  });

  test('invert (withoutHeaders) holds for a request without a verified token, and for a claim that does not match', () => {
    const without: RouteMatch = { claims: [{ path: ['groups'], match: { exact: 'group1' }, invert: true }] };
    assert.equal(run(without, view('/')), 1);
    assert.equal(run(without, view('/', { claims: { groups: ['group2'] } })), 1);
    assert.equal(run(without, view('/', { claims: { groups: ['group1'] } })), -1);
  });

  test('claim conditions are ANDed with the rest of the match; an empty claim name is a problem', () => {
    const both: RouteMatch = { path: { prefix: '/headers' }, claims: [{ path: ['groups'], match: { exact: 'group1' } }, { path: ['iss'], match: { exact: 'testing@secure.istio.io' } }] };
    const claims = { iss: 'testing@secure.istio.io', groups: ['group1'] };
    assert.equal(run(both, view('/headers', { claims })), 8);
    assert.equal(run(both, view('/ip', { claims })), -1);
    assert.equal(run(both, view('/headers', { claims: { ...claims, iss: 'other' } })), -1);
    const problems = collect();
    compileRouteMatch({ claims: [{ path: ['a', ''] }] }, 'm', problems);
    assert.deepEqual(problems.all, ['m.claims[0].path: claim path ["a",""] has an empty name']);
  });
});

describe('virtual host selection (Envoy order)', () => {
  const vh = (name: string, ...domains: string[]) => ({ name, domains, routes: [] as Route[] });
  const rc: RouteConfiguration = { name: 't', virtualHosts: [vh('any', '*'), vh('suffix-short', '*.com'), vh('suffix-long', '*.example.com'), vh('prefix', 'api.*'), vh('exact', 'API.example.com', 'api.example.com:8080')] };
  const index = compileVirtualHosts(rc, 't', strict, () => ({ match: () => -1 }));
  const pick = (authority: string) => selectByDomain(index, authority)?.name;

  test('exact, then longest *.suffix, then longest prefix.*, then *; the port counts as sent', () => {
    assert.equal(pick('api.example.com'), 'exact');
    assert.equal(pick('api.example.com:8080'), 'exact');
    assert.equal(pick('www.example.com'), 'suffix-long');
    assert.equal(pick('www.other.com'), 'suffix-short');
    assert.equal(pick('api.other.org'), 'prefix');
    assert.equal(pick('api.example.com:9090'), 'prefix');
    assert.equal(pick('x'), 'any');
    assert.equal(pick('.com'), 'any', 'a wildcard stands for at least one character');
    assert.equal(selectByDomain(compileVirtualHosts({ name: 't', virtualHosts: rc.virtualHosts.slice(1) }, 't', strict, () => ({ match: () => -1 })), 'x'), undefined);
  });

  test('a domain in two virtual hosts, or a virtual host without domains, is a problem', () => {
    const p = collect();
    compileVirtualHosts({ name: 't', virtualHosts: [vh('a', 'x', 'y'), vh('b', 'Y'), vh('c')] }, 'rc', p, () => ({ match: () => -1 }));
    assert.deepEqual(p.all, [
      'rc.virtualHosts[1].domains: domain "Y" appears in more than one virtual host',
      'rc.virtualHosts[2].domains: a virtual host needs at least one domain',
    ]);
  });
});
