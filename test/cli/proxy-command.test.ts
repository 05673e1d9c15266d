/**
 * `sinew proxy` starts without commander when its command line is well formed, and anything
 * else (help, a typo, a missing value) gets commander's answer, from the same option table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';
import { parseProxyArgs, PROXY_OPTIONS } from '../../src/cli/proxy-command.js';

const argv = (...args: string[]) => ['node', 'sinew', 'proxy', ...args];

function capture(): Io & { text: () => string } {
  let text = '';
  return { out: (s: string) => void (text += s), err: (s: string) => void (text += s), text: () => text };
}

test('a well-formed command line is parsed without commander, defaults applied', () => {
  assert.deepEqual(parseProxyArgs(argv('--xds', '127.0.0.1:15010', '--node', 'n.json', '--admin-port=15000', '--metrics-port', '0')), {
    xds: '127.0.0.1:15010',
    node: 'n.json',
    adminPort: '15000',
    metricsPort: '0',
    host: '127.0.0.1',
  });
  assert.deepEqual(parseProxyArgs(argv('--config', 'p.json', '--host', '0.0.0.0')), { config: 'p.json', host: '0.0.0.0' });
});

test('help, unknown options, missing values and other commands are left to commander', () => {
  for (const args of [argv('--help'), argv('-h'), argv('--bogus'), argv('--config'), argv('extra'), ['node', 'sinew', 'status']]) {
    assert.equal(parseProxyArgs(args), undefined, args.join(' '));
  }
});

test('commander answers those with the same options: help lists every one, a typo is a usage error', async () => {
  const help = capture();
  assert.equal(await main(argv('--help'), help), 0);
  for (const option of PROXY_OPTIONS) assert.ok(help.text().includes(option.flag), `${option.flag} in\n${help.text()}`);
  const typo = capture();
  assert.equal(await main(argv('--confg', 'p.json'), typo), 2);
  assert.match(typo.text(), /unknown option '--confg'/);
});

test('the fast path checks its options as the full command line did', async () => {
  const io = capture();
  assert.equal(await main(argv('--config', 'p.json', '--metrics-port', '1'), io), 2);
  assert.match(io.text(), /the metrics ports come with --xds/);
  const none = capture();
  assert.equal(await main(argv(), none), 2);
  assert.match(none.text(), /needs --config <file>, or --xds <host:port> with --node <file>/);
});

test('a push credential file that others may read is refused before the proxy starts, with the fix', async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'sinew-proxy-token-'));
  try {
    const node = join(dir, 'node.json');
    writeFileSync(node, JSON.stringify({ id: 'sidecar~a-0.default', mode: 'sidecar', workload: 'a', namespace: 'default', labels: {} }));
    const token = join(dir, 'proxy.token');
    writeFileSync(token, 'snwp1.x.y.z', { mode: 0o644 });
    const io = capture();
    assert.equal(await main(argv('--xds', '127.0.0.1:1', '--node', node, '--token-file', token), io), 1);
    assert.match(io.text(), /others may read it \(mode 644\); make it owner-only: chmod 600 /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a pod's service-account token (a JWT, mode 0644 as kubelet writes it) is presented, and read again at every reconnect", async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const { PushServer } = await import('../../src/xds/server.js');
  const jwt = (sub: string) => `${Buffer.from(JSON.stringify({ alg: 'RS256' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.c2lnbmF0dXJl`;
  const dir = mkdtempSync(join(tmpdir(), 'sinew-proxy-sa-token-'));
  const presented: (string | undefined)[] = [];
  // A real push server that refuses the first token and accepts the renewed one.
  const server = new PushServer({
    source: () => ({ version: 'v1', listeners: [], routeConfigs: [], clusters: [], endpoints: [] }) as never,
    authenticate: (_node, credential) => {
      presented.push(credential);
      return credential === jwt('renewed') ? undefined : 'expired';
    },
  });
  const child = { current: undefined as import('node:child_process').ChildProcess | undefined };
  try {
    const { port } = await server.listen(0, '127.0.0.1');
    const node = join(dir, 'node.json');
    writeFileSync(node, JSON.stringify({ id: 'sidecar~a-0.default', mode: 'sidecar', workload: 'a', namespace: 'default', labels: {}, serviceAccount: 'a' }));
    const token = join(dir, 'istio-token');
    writeFileSync(token, jwt('first') + '\n', { mode: 0o644 });
    const repo = fileURLToPath(new URL('../../', import.meta.url));
    child.current = spawn(process.execPath, [join(repo, 'bin/sinew.js'), 'proxy', '--xds', `127.0.0.1:${port}`, '--node', node, '--token-file', token, '--admin-port', '0'], { stdio: 'ignore' });
    const deadline = Date.now() + 60_000;
    while (presented.length === 0) {
      assert.ok(Date.now() < deadline && child.current.exitCode === null, 'the proxy started and said HELLO');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(presented[0], jwt('first'));
    // kubelet renews the token in place; the proxy's next HELLO carries the new one.
    writeFileSync(token, jwt('renewed') + '\n', { mode: 0o644 });
    while (server.status().length === 0) {
      assert.ok(Date.now() < deadline && child.current.exitCode === null, `the proxy reconnected with the renewed token (presented: ${presented.length})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(presented.at(-1), jwt('renewed'));
  } finally {
    child.current?.kill('SIGKILL');
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
