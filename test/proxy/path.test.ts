/**
 * Path normalisation (Istio's default meshConfig.pathNormalization BASE = Envoy's
 * normalize_path): the cases of Envoy's test/common/http/path_utility_test.cc and of Istio's
 * normalization reference table, then the proxy over real sockets: routes match the normalised
 * path, the upstream receives it, and a path that cannot be normalised gets 400.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { canonicalPath, normalizeRequestPath } from '../../src/proxy/http/path.js';
import { protocols } from './support/client.js';
import { cluster, endpoint, meshConfig, route, routeTo } from './support/config.js';
import { startEcho, type EchoReply, type EchoServer } from './support/echo.js';
import { startProxy, type Harness } from './support/harness.js';

describe('canonicalPath: Envoy path_utility_test.cc', () => {
  test('already normal paths do not change', () => {
    for (const p of ['/xyz', '/x/y/z', '/', '/a/b/c/', '/A/B/C']) assert.equal(canonicalPath(p), p);
  });

  test('invalid paths are rejected (escaped NUL)', () => {
    for (const p of ['/xyz/.%00../abc', '/xyz/%00.%00./abc', '/xyz/AAAAA%%0000/abc']) assert.equal(canonicalPath(p), undefined, p);
  });

  test('NormalizeValidPaths', () => {
    const cases: [string, string][] = [
      ['/a/b/../c', '/a/c'], // parent dir
      ['/a/b/./c', '/a/b/c'], // current dir
      ['a/b/../c', '/a/c'], // non / start
      ['/a/b/../../../../c', '/c'], // more parents than segments
      ['/a/..\\c', '/c'], // backslash is a separator
      ['/%c0%af', '/%c0%af'], // two-byte sequences stay escaped
      ['/%5c%25', '/%5c%25'], // reserved characters stay escaped, hex case kept
      ['/a/b/%2E%2E/c', '/a/c'], // %2E is a dot
      ['/a/b/%2E./c', '/a/c'],
      ['/a/b/%2E/c', '/a/b/c'],
      ['..', '/'],
      ['/../a/b', '/a/b'],
      ['/./a/b', '/a/b'],
    ];
    for (const [input, want] of cases) assert.equal(canonicalPath(input), want, input);
  });

  test('NormalizeCasePath: no case folding; %2F is not decoded', () => {
    assert.equal(canonicalPath('/A/B/C'), '/A/B/C');
    assert.equal(canonicalPath('/a/b/%2e%2e/c'), '/a/c');
    assert.equal(canonicalPath('/a/%2F%2f/c'), '/a/%2F%2f/c');
  });

  test('slashes are not merged (merge_slashes is off under BASE)', () => {
    assert.equal(canonicalPath('//a//b/'), '//a//b/');
    assert.equal(canonicalPath('/a//../b'), '/a/b');
  });
});

describe('canonicalPath: Istio normalization reference (BASE)', () => {
  test('unreserved characters are decoded, everything else stays as sent', () => {
    assert.equal(canonicalPath('/%41%5a%61%7a%30%39'), '/AZaz09');
    assert.equal(canonicalPath('/%2d%5f%7e%2D%5F%7E'), '/-_~-_~');
    assert.equal(canonicalPath('/a%2eb'), '/a.b');
    assert.equal(canonicalPath('/a%2fb'), '/a%2fb');
    assert.equal(canonicalPath('/a%5Cb'), '/a%5Cb');
    assert.equal(canonicalPath('/a%20b%3f%23'), '/a%20b%3f%23');
  });

  test('backslashes become slashes before dot segments are removed', () => {
    assert.equal(canonicalPath('\\da'), '/da');
    assert.equal(canonicalPath('/a\\b\\..\\c'), '/a/c');
  });

  test('dot segments at the end keep the trailing slash; dots inside names are names', () => {
    assert.equal(canonicalPath('/foo/.'), '/foo/');
    assert.equal(canonicalPath('/foo/bar/..'), '/foo/');
    assert.equal(canonicalPath('/foo/..bar'), '/foo/..bar');
    assert.equal(canonicalPath('/foo/.../x'), '/foo/.../x');
    assert.equal(canonicalPath('/./.foo'), '/.foo');
    assert.equal(canonicalPath('/foo/%2e%2'), '/foo/.%2');
  });

  test('characters not allowed raw are percent-encoded; a raw NUL is invalid', () => {
    assert.equal(canonicalPath('/a b"<>^`{|}'), '/a%20b%22%3C%3E%5E%60%7B%7C%7D');
    assert.equal(canonicalPath('/caf\u00e9'), '/caf%E9');
    assert.equal(canonicalPath('/a\u0000b'), undefined);
  });

  test('a stray % is kept, but never allowed to form a new escape after decoding', () => {
    assert.equal(canonicalPath('/100%'), '/100%');
    assert.equal(canonicalPath('/%zz'), '/%zz');
    assert.equal(canonicalPath('/%%30%30'), '/%2500');
    assert.equal(canonicalPath('/%%3030'), '/%25030');
  });

  test('normalizeRequestPath leaves what the connection manager refuses or allows as-is', () => {
    assert.equal(normalizeRequestPath('*'), '*');
    assert.equal(normalizeRequestPath(''), '');
    assert.equal(normalizeRequestPath('/a/../b'), '/b');
  });
});

const ECHO = 'outbound|80||echo.default.svc.cluster.local';

describe('path normalisation in the proxy', () => {
  let echo: EchoServer;
  let h: Harness;
  before(async () => {
    echo = await startEcho('echo');
    h = await startProxy(
      meshConfig(
        [
          route('admin', { path: { prefix: '/admin' } }, { kind: 'direct', status: 403, body: 'no' }),
          route('r', {}, routeTo(ECHO)),
        ],
        [cluster(ECHO)],
        [{ clusterName: ECHO, endpoints: [endpoint(echo.port)] }],
      ),
    );
  });
  after(async () => {
    await h.close();
    await echo.close();
  });

  for (const proto of protocols) {
    test(`over ${proto.name}: routes see the normalised path and the upstream receives it`, async () => {
      const c = proto.client(h.port());
      try {
        // CVE-2021-31920's shape: a prefix rule must not be bypassed with dot segments or escapes.
        assert.equal((await c.request({ path: '/public/../admin/x' })).status, 403);
        assert.equal((await c.request({ path: '/public/%2e%2e/admin' })).status, 403);
        assert.equal((await c.request({ path: '/%61dmin' })).status, 403);
        const res = await c.request({ path: '/a/./b/../%7Euser/%2Fx?q=/../y' });
        assert.equal(res.status, 200);
        assert.equal((JSON.parse(res.body) as EchoReply).path, '/a/~user/%2Fx?q=/../y', 'the query is not touched');
      } finally {
        await c.close();
      }
    });

    test(`over ${proto.name}: a path with an escaped NUL gets 400 path_normalization_failed`, async () => {
      const before = echo.seen.length;
      const c = proto.client(h.port());
      try {
        const res = await c.request({ path: '/a/%00/b' });
        assert.equal(res.status, 400);
        assert.equal(res.headers['x-sinew-response-details'], 'path_normalization_failed');
        assert.equal(res.headers['x-sinew-response-flags'], 'DPE');
      } finally {
        await c.close();
      }
      assert.equal(echo.seen.length, before, 'nothing reached the upstream');
    });
  }

  test('a backslash path sent raw over HTTP/1.1 is normalised like Envoy does', async () => {
    const socket = net.connect(h.port(), '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'connect');
    socket.write('GET /x/..\\admin HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n');
    await once(socket, 'close');
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 403/);
  });
});
