/**
 * Host names: Istio's reading of config hosts (ResolveShortnameToFQDN) beside a Kubernetes
 * client's DNS search path, the two rules that `reviews.default` tells apart.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dnsSearchCandidates,
  namespaceOfServiceHost,
  resolveClientHost,
  resolveShortName,
  serviceFqdn,
  spiffeIdentity,
  splitServiceDotNamespace,
} from '../../src/semantics/names.js';

describe("Istio's ResolveShortnameToFQDN (config hosts)", () => {
  test('a name without dots is a Service in the namespace of the resource that wrote it', () => {
    assert.equal(resolveShortName('reviews', 'default'), 'reviews.default.svc.cluster.local');
    assert.equal(resolveShortName('reviews', 'prod', 'corp.example'), 'reviews.prod.svc.corp.example');
    assert.equal(resolveShortName('Reviews', 'default'), 'reviews.default.svc.cluster.local');
  });

  test('any name with a dot is taken as written: reviews.default is not the reviews Service', () => {
    assert.equal(resolveShortName('reviews.default', 'other'), 'reviews.default');
    assert.equal(resolveShortName('reviews.default.svc', 'other'), 'reviews.default.svc');
    assert.equal(resolveShortName('reviews.default.svc.cluster.local', 'other'), 'reviews.default.svc.cluster.local');
    assert.equal(resolveShortName('*.example.com', 'default'), '*.example.com');
  });

  test('* and IP addresses stay as they are; an empty host stays empty', () => {
    assert.equal(resolveShortName('*', 'default'), '*');
    assert.equal(resolveShortName('10.0.0.1', 'default'), '10.0.0.1');
    assert.equal(resolveShortName('::1', 'default'), '::1');
    assert.equal(resolveShortName('', 'default'), '');
  });

  test('<service>.<namespace> is recognised, and nothing else', () => {
    assert.deepEqual(splitServiceDotNamespace('reviews.default'), { name: 'reviews', namespace: 'default' });
    assert.equal(splitServiceDotNamespace('reviews'), undefined);
    assert.equal(splitServiceDotNamespace('reviews.default.svc'), undefined);
    assert.equal(splitServiceDotNamespace('*.default'), undefined);
    assert.equal(splitServiceDotNamespace('10.0.0.1'), undefined);
    assert.equal(splitServiceDotNamespace('.default'), undefined);
  });

  test('the namespace of a Service FQDN', () => {
    assert.equal(namespaceOfServiceHost(serviceFqdn('reviews', 'prod')), 'prod');
    assert.equal(namespaceOfServiceHost('reviews.prod'), undefined);
    assert.equal(namespaceOfServiceHost('a.b.prod.svc.cluster.local'), undefined);
    assert.equal(namespaceOfServiceHost('api.example.com'), undefined);
  });
});

describe("a Kubernetes client's DNS search path (client hosts)", () => {
  test('search candidates in resolv.conf order; ndots 5 and a trailing dot make a name absolute', () => {
    assert.deepEqual(dnsSearchCandidates('reviews.default', 'foo'), [
      'reviews.default.foo.svc.cluster.local',
      'reviews.default.svc.cluster.local',
      'reviews.default.cluster.local',
      'reviews.default',
    ]);
    assert.deepEqual(dnsSearchCandidates('a.b.c.d.e.f', 'foo'), ['a.b.c.d.e.f']);
    assert.deepEqual(dnsSearchCandidates('Reviews.default.svc.cluster.local.', 'foo'), ['reviews.default.svc.cluster.local']);
  });

  test('the first candidate that is a service wins; unknown single labels are Services of the caller namespace', () => {
    const known = new Set(['reviews.default.svc.cluster.local']);
    const exists = (h: string) => known.has(h);
    assert.equal(resolveClientHost('reviews.default', 'foo', exists), 'reviews.default.svc.cluster.local');
    assert.equal(resolveClientHost('reviews', 'default', exists), 'reviews.default.svc.cluster.local');
    assert.equal(resolveClientHost('x', 'ns'), 'x.ns.svc.cluster.local');
    assert.equal(resolveClientHost('unknown.org', 'ns'), 'unknown.org');
  });

  test('SPIFFE identities of service accounts', () => {
    assert.equal(spiffeIdentity('default', 'bookinfo-reviews'), 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.equal(spiffeIdentity('default', undefined, 'example.org'), 'spiffe://example.org/ns/default/sa/default');
  });
});
