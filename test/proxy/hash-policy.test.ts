/** The route's hash policy (Envoy's Http::HashPolicy) on its own: each source, and the generated cookie. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generatedCookieValue, hashRequest, setCookieValue, type GeneratedCookies } from '../../src/proxy/http/hash-policy.js';
import { hashString } from '../../src/proxy/upstream/hash.js';

const base = { headers: {}, query: '', peer: '10.0.0.7' };

/** Records what the policy asked to set; the generated value is fixed. */
function jar(value = 'c0ffee'): GeneratedCookies & { asked: [string, string | undefined, number][] } {
  const asked: [string, string | undefined, number][] = [];
  return { asked, addSetCookie: (name, path, maxAge) => (asked.push([name, path, maxAge]), value) };
}

describe('hashRequest', () => {
  test('header (name case-insensitive, repeated values joined), source IP and query parameter', () => {
    const j = jar();
    assert.equal(hashRequest({ header: 'X-User' }, { ...base, headers: { 'x-user': 'jason' } }, j), hashString('jason'));
    assert.equal(hashRequest({ header: 'x-user' }, { ...base, headers: { 'x-user': ['a', 'b'] } }, j), hashString('a,b'));
    assert.equal(hashRequest({ header: 'x-user' }, base, j), undefined);
    assert.equal(hashRequest({ sourceIp: true }, base, j), hashString('10.0.0.7'));
    assert.equal(hashRequest({ sourceIp: true }, { ...base, peer: '' }, j), undefined);
    assert.equal(hashRequest({ queryParameter: 'q' }, { ...base, query: 'x=1&q=bar&q=baz' }, j), hashString('bar'));
    assert.equal(hashRequest({ queryParameter: 'q' }, { ...base, query: 'x=1' }, j), undefined);
    assert.deepEqual(j.asked, []);
  });

  test('a cookie present is hashed (quoted or not, in any of several cookie fields); an empty one counts as absent', () => {
    const j = jar();
    const policy = { cookie: { name: 'user', path: '/', ttlMs: 60_000 } };
    assert.equal(hashRequest(policy, { ...base, headers: { cookie: 'a=1; user=abc' } }, j), hashString('abc'));
    assert.equal(hashRequest(policy, { ...base, headers: { cookie: 'user="abc"' } }, j), hashString('abc'));
    assert.equal(hashRequest(policy, { ...base, headers: { cookie: ['a=1', 'user=abc'] } }, j), hashString('abc'));
    assert.equal(hashRequest(policy, { ...base, headers: { cookie: 'username=x' } }, j), hashString('c0ffee'), 'another cookie with the name as prefix is not it');
    assert.equal(j.asked.length, 1);
    assert.equal(hashRequest(policy, { ...base, headers: { cookie: 'user=' } }, j), hashString('c0ffee'));
  });

  test('a missing cookie: generated with the TTL in seconds when there is a TTL (0 = session), no hash without', () => {
    const j = jar();
    assert.equal(hashRequest({ cookie: { name: 'user', path: '/', ttlMs: 60_500 } }, base, j), hashString('c0ffee'));
    assert.equal(hashRequest({ cookie: { name: 'user', ttlMs: 0 } }, base, j), hashString('c0ffee'));
    assert.equal(hashRequest({ cookie: { name: 'user' } }, base, j), undefined);
    assert.deepEqual(j.asked, [['user', '/', 60], ['user', undefined, 0]]);
  });
});

describe("Envoy's generated cookie", () => {
  test('Set-Cookie as Envoy writes it: quoted value, Max-Age unless 0, Path when given, HttpOnly', () => {
    assert.equal(setCookieValue('user', 'abc', '/', 3600), 'user="abc"; Max-Age=3600; Path=/; HttpOnly');
    assert.equal(setCookieValue('user', 'abc', undefined, 0), 'user="abc"; HttpOnly');
  });

  test('one value per downstream connection, another for another connection', () => {
    const a = generatedCookieValue('10.0.0.7:40000', '10.0.0.1:15001');
    assert.match(a, /^[0-9a-f]{14}$/);
    assert.equal(generatedCookieValue('10.0.0.7:40000', '10.0.0.1:15001'), a);
    assert.notEqual(generatedCookieValue('10.0.0.7:40001', '10.0.0.1:15001'), a);
  });
});
