/** `sinew proxy --config file.json`: loads, serves, drains on stop; bad files exit 1 with a code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runProxyCommand } from '../../src/cli/proxy.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Proxy } from '../../src/proxy/proxy.js';
import { h1Client } from './support/client.js';
import { meshConfig, route } from './support/config.js';

const io = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) } };
};

test('sinew proxy serves a ProxyConfig file and drains when told to stop', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sinew-proxy-'));
  try {
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify(meshConfig([route('d', {}, { kind: 'direct', status: 200, body: 'from file' })], [], [])));
    let stop: () => void = () => {};
    const until = new Promise<void>((resolve) => { stop = resolve; });
    let proxy: Proxy | undefined;
    const out = io();
    const run = runProxyCommand({ config: file, adminPort: 0, until, logger: silentLogger, onReady: (p) => { proxy = p; } }, out.io);
    while (!proxy) await new Promise((resolve) => setImmediate(resolve));
    const c = h1Client(Object.values(proxy.listenerAddresses())[0].port);
    const r = await c.request({ path: '/' });
    assert.equal(r.status, 200);
    assert.match(r.body, /from file/);
    await c.close();
    stop();
    assert.equal(await run, 0);
    assert.match(out.out.join(''), /serving config v1/);

    const bad = io();
    await writeFile(file, '{ not json');
    assert.equal(await runProxyCommand({ config: file, logger: silentLogger }, bad.io), 1);
    assert.match(bad.err.join(''), /SNW_ERR_PROXY_CONFIG_FILE/);
    await writeFile(file, JSON.stringify({ ...meshConfig([], [], []), listeners: [{ name: 'x', protocol: 'udp', address: { host: '127.0.0.1', port: 0 } }] }));
    assert.equal(await runProxyCommand({ config: file, logger: silentLogger }, bad.io), 1);
    assert.match(bad.err.join(''), /SNW_ERR_PROXY_INVALID_CONFIG/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
