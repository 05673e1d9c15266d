/** Host and wildcard comparison, with the cases of Istio's pkg/config/host/name.go. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hostIntersection, hostSpecificity, hostSubsetOf, hostsOverlap, isWildcardHost } from '../../src/semantics/hosts.js';

describe("Istio's host.Name.Matches (overlap, either direction)", () => {
  const cases: [string, string, boolean][] = [
    ['foo.com', 'foo.com', true],
    ['foo.com', 'bar.com', false],
    ['*.com', 'foo.com', true],
    ['bar.com', '*.com', true],
    ['*.foo.com', 'foo.com', false],
    ['*', 'foo.com', true],
    ['*', '*.com', true],
    ['*.com', '*.foo.com', true],
    ['*.foo.com', '*.com', true],
    ['*.foo.com', '*.bar.com', false],
  ];
  for (const [a, b, want] of cases) {
    test(`${a} ~ ${b}: ${want}`, () => {
      assert.equal(hostsOverlap(a, b), want);
      assert.equal(hostsOverlap(b, a), want, 'symmetric');
    });
  }
});

describe("Istio's host.Name.SubsetOf (one direction)", () => {
  const cases: [string, string, boolean][] = [
    ['foo.com', 'foo.com', true],
    ['foo.com', '*.com', true],
    ['*.com', 'foo.com', false],
    ['*.foo.com', '*.com', true],
    ['*.com', '*.foo.com', false],
    ['*.foo.com', '*.foo.com', true],
    ['foo.com', '*', true],
    ['*', 'foo.com', false],
    ['foo.com', '*.foo.com', false],
  ];
  for (const [a, b, want] of cases) {
    test(`${a} within ${b}: ${want}`, () => assert.equal(hostSubsetOf(a, b), want));
  }
});

describe('what a gateway serves and which DestinationRule host is most specific', () => {
  test('the narrower of two overlapping hosts, or nothing', () => {
    assert.equal(hostIntersection('*', 'bookinfo.example.com'), 'bookinfo.example.com');
    assert.equal(hostIntersection('*.example.com', '*'), '*.example.com');
    assert.equal(hostIntersection('*.example.com', 'a.example.com'), 'a.example.com');
    assert.equal(hostIntersection('a.example.com', 'b.example.com'), undefined);
  });

  test('a name beats any wildcard; a longer wildcard beats a shorter one', () => {
    assert.ok(hostSpecificity('a.example.com') > hostSpecificity('*.example.com'));
    assert.ok(hostSpecificity('*.example.com') > hostSpecificity('*.com'));
    assert.ok(hostSpecificity('*.com') > hostSpecificity('*'));
    assert.ok(isWildcardHost('*') && isWildcardHost('*.a') && !isWildcardHost('a.*') && !isWildcardHost(''));
  });
});
