/**
 * Authorization as Istio documents it (https://istio.io/latest/docs/reference/config/security/authorization-policy/,
 * .../conditions/, the "Authorization policy precedence" and "Dry run" sections), table by
 * table: each case is an AuthorizationPolicy as a user writes it, compiled by the compiler's
 * translation, evaluated on a request.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { authorizer, request } from './support.js';
import type { RequestAttributes } from '../../src/security/attributes.js';

const ap = (spec: string, meta = 'name: p') => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {${meta}}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
const allow = (rule: string) => ap(`action: ALLOW\nrules:\n- ${rule.replace(/\n/g, '\n  ')}`);
const deny = (rule: string) => ap(`action: DENY\nrules:\n- ${rule.replace(/\n/g, '\n  ')}`);
const jwt = (claims: Record<string, unknown> = {}): RequestAttributes['auth'] => ({
  principal: 'https://issuer.example/alice',
  audiences: ['app', 'other'],
  presenter: 'web-client',
  claims: { iss: 'https://issuer.example', sub: 'alice', ...claims },
});

type Case = [name: string, yaml: string, over: Partial<RequestAttributes>, allowed: boolean];

function table(name: string, cases: Case[], opts: { tcp?: boolean } = {}): void {
  describe(name, () => {
    for (const [what, yaml, over, allowed] of cases) {
      test(`${what}: ${allowed ? 'allowed' : 'denied'}`, () => {
        assert.equal(authorizer(yaml, opts).authorize(request(over)).allowed, allowed);
      });
    }
  });
}

table('precedence: CUSTOM, then DENY, then ALLOW (DESIGN behaviour 8)', [
  ['no policy', '', {}, true],
  ['`spec: {}` denies everything', ap('{}'), {}, false],
  ['ALLOW with an empty rule allows everything', ap('rules:\n- {}'), { method: 'DELETE' }, true],
  ['a DENY policy that does not match', deny('to: [{operation: {methods: [POST]}}]'), {}, true],
  ['a DENY policy that matches', deny('to: [{operation: {methods: [GET]}}]'), {}, false],
  ['DENY wins over a matching ALLOW', allow('{}') + '---\n' + ap('action: DENY\nrules:\n- to: [{operation: {paths: ["/admin"]}}]', 'name: d'), { path: '/admin' }, false],
  ['an ALLOW policy applies and none matches', allow('to: [{operation: {methods: [POST]}}]'), {}, false],
  ['one of two ALLOW policies matches', allow('to: [{operation: {methods: [POST]}}]') + '---\n' + ap('rules:\n- to: [{operation: {methods: [GET]}}]', 'name: q'), {}, true],
  ['AUDIT never decides', ap('action: AUDIT\nrules:\n- {}'), {}, true],
]);

table('operations: methods and paths case-sensitive, hosts not, query and fragment ignored', [
  ['exact path', allow('to: [{operation: {paths: ["/ip"]}}]'), { path: '/ip' }, true],
  ['exact path, other path', allow('to: [{operation: {paths: ["/ip"]}}]'), { path: '/headers' }, false],
  ['exact path, query stripped', allow('to: [{operation: {paths: ["/ip"]}}]'), { path: '/ip?x=/admin' }, true],
  ['exact path, fragment stripped', allow('to: [{operation: {paths: ["/ip"]}}]'), { path: '/ip#top' }, true],
  ['paths are case-sensitive', allow('to: [{operation: {paths: ["/ip"]}}]'), { path: '/IP' }, false],
  ['prefix path', allow('to: [{operation: {paths: ["/public/*"]}}]'), { path: '/public/a/b' }, true],
  ['prefix path needs its slash', allow('to: [{operation: {paths: ["/public/*"]}}]'), { path: '/publicity' }, false],
  ['suffix path', allow('to: [{operation: {paths: ["*/info"]}}]'), { path: '/a/b/info' }, true],
  ['`*` path: any', allow('to: [{operation: {paths: ["*"]}}]'), { path: '/x' }, true],
  ['template {*}: one segment', allow('to: [{operation: {paths: ["/foo/{*}/bar"]}}]'), { path: '/foo/x/bar' }, true],
  ['template {*}: not two', allow('to: [{operation: {paths: ["/foo/{*}/bar"]}}]'), { path: '/foo/x/y/bar' }, false],
  ['template {*}: not none', allow('to: [{operation: {paths: ["/foo/{*}/bar"]}}]'), { path: '/foo//bar' }, false],
  ['template {**}: the rest', allow('to: [{operation: {paths: ["/foo/{**}"]}}]'), { path: '/foo/x/y/z' }, true],
  ['template {**}: not another prefix', allow('to: [{operation: {paths: ["/foo/{**}"]}}]'), { path: '/food/x' }, false],
  ['methods are case-sensitive', allow('to: [{operation: {methods: [GET]}}]'), { method: 'get' }, false],
  ['notMethods', allow('to: [{operation: {notMethods: [DELETE]}}]'), { method: 'DELETE' }, false],
  ['notPaths', allow('to: [{operation: {notPaths: ["/admin/*"]}}]'), { path: '/admin/x' }, false],
  ['hosts are case-insensitive and any port', allow('to: [{operation: {hosts: ["httpbin.foo"]}}]'), { host: 'HTTPBIN.Foo:8000' }, true],
  ['hosts: another host', allow('to: [{operation: {hosts: ["httpbin.foo"]}}]'), { host: 'httpbin.bar' }, false],
  ['hosts: suffix wildcard', allow('to: [{operation: {hosts: ["*.example.com"]}}]'), { host: 'www.EXAMPLE.com' }, true],
  ['notHosts', allow('to: [{operation: {notHosts: ["evil.example"]}}]'), { host: 'evil.example:80' }, false],
  ['ports', allow('to: [{operation: {ports: ["8000"]}}]'), { destinationPort: 8000 }, true],
  ['ports: another port', allow('to: [{operation: {ports: ["8000"]}}]'), { destinationPort: 9000 }, false],
  ['notPorts', allow('to: [{operation: {notPorts: ["8000"]}}]'), { destinationPort: 8000 }, false],
  ['fields of one operation are ANDed', allow('to: [{operation: {methods: [GET], paths: ["/ip"]}}]'), { path: '/headers' }, false],
  ['operations are ORed', allow('to: [{operation: {methods: [POST]}}, {operation: {paths: ["/"]}}]'), {}, true],
]);

table('sources: identities come from mTLS, and match nothing without it', [
  ['principals over mTLS', allow('from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]'), {}, true],
  ['principals without mTLS', allow('from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]'), { peerPrincipal: undefined }, false],
  ['`*` principals without mTLS', allow('from: [{source: {principals: ["*"]}}]'), { peerPrincipal: undefined }, false],
  ['principal suffix', allow('from: [{source: {principals: ["*/sa/sleep"]}}]'), {}, true],
  ['notPrincipals without mTLS holds', allow('from: [{source: {notPrincipals: ["cluster.local/ns/foo/sa/sleep"]}}]'), { peerPrincipal: undefined }, true],
  ['namespaces over mTLS', allow('from: [{source: {namespaces: [foo]}}]'), {}, true],
  ['namespaces: another namespace', allow('from: [{source: {namespaces: [bar]}}]'), {}, false],
  ['namespaces without mTLS', allow('from: [{source: {namespaces: [foo]}}]'), { peerPrincipal: undefined }, false],
  ['notNamespaces', allow('from: [{source: {notNamespaces: [foo]}}]'), {}, false],
  ['serviceAccounts', allow('from: [{source: {serviceAccounts: ["foo/sleep"]}}]'), {}, true],
  ['serviceAccounts in the policy namespace', allow('from: [{source: {serviceAccounts: ["other"]}}]'), {}, false],
  ['ipBlocks: the direct peer', allow('from: [{source: {ipBlocks: ["10.0.0.0/24"]}}]'), {}, true],
  ['ipBlocks: an IPv4-mapped peer', allow('from: [{source: {ipBlocks: ["10.0.0.5"]}}]'), { sourceIp: '::ffff:10.0.0.5' }, true],
  ['notIpBlocks', allow('from: [{source: {notIpBlocks: ["10.0.0.0/8"]}}]'), {}, false],
  ['remoteIpBlocks: the original client', allow('from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]'), { remoteIp: '203.0.113.7' }, true],
  ['remoteIpBlocks: not the direct peer', allow('from: [{source: {remoteIpBlocks: ["10.0.0.5"]}}]'), { remoteIp: '203.0.113.7' }, false],
  ['requestPrincipals `*` without a token', allow('from: [{source: {requestPrincipals: ["*"]}}]'), {}, false],
  ['requestPrincipals `*` with a token', allow('from: [{source: {requestPrincipals: ["*"]}}]'), { auth: jwt() }, true],
  ['requestPrincipals exact', allow('from: [{source: {requestPrincipals: ["https://issuer.example/alice"]}}]'), { auth: jwt() }, true],
  ['notRequestPrincipals without a token holds', allow('from: [{source: {notRequestPrincipals: ["*"]}}]'), {}, true],
  ['sources are ORed', allow('from: [{source: {namespaces: [bar]}}, {source: {ipBlocks: ["10.0.0.5"]}}]'), {}, true],
  ['from and to are ANDed', allow('from: [{source: {namespaces: [foo]}}]\nto: [{operation: {methods: [POST]}}]'), {}, false],
]);

table("conditions: every key of Istio's condition table", [
  ['request.headers', allow('when: [{key: "request.headers[version]", values: [v1]}]'), { headers: { version: 'v1' } }, true],
  ['request.headers: absent', allow('when: [{key: "request.headers[version]", values: [v1]}]'), {}, false],
  ['request.headers: notValues', allow('when: [{key: "request.headers[version]", notValues: [v2]}]'), { headers: { version: 'v2' } }, false],
  ['request.headers: prefix', allow('when: [{key: "request.headers[User-Agent]", values: ["curl/*"]}]'), { headers: { 'user-agent': 'curl/8.5' } }, true],
  ['source.ip', allow('when: [{key: source.ip, values: ["10.0.0.0/16"]}]'), {}, true],
  ['remote.ip', allow('when: [{key: remote.ip, values: ["10.0.0.5"]}]'), {}, true],
  ['remote.ip from X-Forwarded-For', allow('when: [{key: remote.ip, values: ["10.0.0.5"]}]'), { remoteIp: '192.0.2.1' }, false],
  ['source.namespace', allow('when: [{key: source.namespace, values: [foo]}]'), {}, true],
  ['source.namespace without mTLS', allow('when: [{key: source.namespace, values: [foo]}]'), { peerPrincipal: undefined }, false],
  ['source.principal', allow('when: [{key: source.principal, values: ["cluster.local/ns/foo/sa/sleep"]}]'), {}, true],
  ['request.auth.principal', allow('when: [{key: request.auth.principal, values: ["https://issuer.example/alice"]}]'), { auth: jwt() }, true],
  ['request.auth.audiences: any of the list', allow('when: [{key: request.auth.audiences, values: [other]}]'), { auth: jwt() }, true],
  ['request.auth.presenter', allow('when: [{key: request.auth.presenter, values: [web-client]}]'), { auth: jwt() }, true],
  ['request.auth.claims: a string', allow('when: [{key: "request.auth.claims[sub]", values: [alice]}]'), { auth: jwt() }, true],
  ['request.auth.claims: a list claim', allow('when: [{key: "request.auth.claims[groups]", values: [group1]}]'), { auth: jwt({ groups: ['group1', 'group2'] }) }, true],
  ['request.auth.claims: nested', allow('when: [{key: "request.auth.claims[nested][key1]", values: [value1]}]'), { auth: jwt({ nested: { key1: 'value1' } }) }, true],
  ['request.auth.claims: nested, other value', allow('when: [{key: "request.auth.claims[nested][key1]", values: [value1]}]'), { auth: jwt({ nested: { key1: 'value2' } }) }, false],
  ['request.auth.claims: a number never matches a string', allow('when: [{key: "request.auth.claims[level]", values: ["3"]}]'), { auth: jwt({ level: 3 }) }, false],
  ['request.auth.claims without a token', allow('when: [{key: "request.auth.claims[sub]", values: ["*"]}]'), {}, false],
  ['destination.ip', allow('when: [{key: destination.ip, values: ["10.0.0.9"]}]'), {}, true],
  ['destination.port', allow('when: [{key: destination.port, values: ["8000"]}]'), {}, true],
  ['connection.sni', allow('when: [{key: connection.sni, values: ["*.foo.svc.cluster.local"]}]'), { sni: 'outbound_.8000_._.httpbin.foo.svc.cluster.local' }, true],
  ['connection.sni without TLS', allow('when: [{key: connection.sni, values: ["*"]}]'), {}, false],
  ['conditions are ANDed', allow('when: [{key: source.namespace, values: [foo]}, {key: destination.port, values: ["9000"]}]'), {}, false],
]);

table(
  'TCP: HTTP-only fields make ALLOW rules drop and DENY rules widen (Istio authz-tcp)',
  [
    ['ALLOW on ports', allow('to: [{operation: {ports: ["9000"]}}]'), { method: undefined, path: undefined, destinationPort: 9000 }, true],
    ['ALLOW with methods: the rule is dropped, nothing is allowed', allow('to: [{operation: {ports: ["9000"], methods: [GET]}}]'), { method: undefined, path: undefined, destinationPort: 9000 }, false],
    ['DENY with methods: the rule denies every connection', deny('to: [{operation: {methods: [GET]}}]'), { method: undefined, path: undefined, destinationPort: 9000 }, false],
    ['DENY on another port', deny('to: [{operation: {ports: ["9001"]}}]'), { method: undefined, path: undefined, destinationPort: 9000 }, true],
  ],
  { tcp: true },
);

describe('dry run (istio.io/dry-run) and AUDIT', () => {
  const dryDeny = ap('action: DENY\nrules:\n- to: [{operation: {methods: [GET]}}]', 'name: dry, annotations: {"istio.io/dry-run": "true"}');
  test('a dry-run DENY that matches does not deny, and says it would have', () => {
    const d = authorizer(dryDeny).authorize(request());
    assert.equal(d.allowed, true);
    assert.deepEqual(d.shadow, { allowed: false, policy: 'ns[foo]-policy[dry]' });
  });
  test('a dry-run ALLOW does not make other requests denied', () => {
    const d = authorizer(ap('rules:\n- to: [{operation: {methods: [POST]}}]', 'name: dry, annotations: {"istio.io/dry-run": "true"}')).authorize(request());
    assert.equal(d.allowed, true);
    assert.deepEqual(d.shadow, { allowed: false });
  });
  test('an AUDIT policy marks the requests it matches', () => {
    const a = authorizer(ap('action: AUDIT\nrules:\n- to: [{operation: {paths: ["/headers"]}}]', 'name: audit'));
    assert.deepEqual(a.authorize(request({ path: '/headers' })).audited, ['ns[foo]-policy[audit]']);
    assert.deepEqual(a.authorize(request({ path: '/ip' })).audited, []);
  });
  test('a denial names the policy for the access log', () => {
    assert.equal(authorizer(deny('to: [{operation: {methods: [GET]}}]')).authorize(request()).reason, 'rbac_access_denied_matched_policy[ns[foo]-policy[p]]');
    assert.equal(authorizer(ap('{}')).authorize(request()).reason, 'rbac_access_denied_matched_policy[none]');
  });
});
