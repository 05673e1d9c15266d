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
