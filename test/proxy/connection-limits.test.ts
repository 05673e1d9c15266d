/**
 * Downstream connection limits (Envoy's overload manager and per-listener limits): past a
 * limit a new connection is closed as soon as it is accepted, and counted, while the clients
 * already connected keep being served. Before, nothing bounded connections: a flood took the
 * proxy to its file-descriptor limit, where it could no longer open the upstream connections
 * its established clients needed (about 40% of their requests failed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { defaultMaxDownstreamConnections, fileDescriptorLimit } from '../../src/proxy/overload.js';
import { edgeConfig, eventually, rawConnection, type EdgeListener, type RawConnection } from './support/edge.js';
import { startRawApp, type RawApp } from './support/raw-app.js';
import { startProxy, type Harness } from './support/harness.js';

const repo = path.resolve(import.meta.dirname, '../..');

interface Flood {
  /** Connections the proxy closed so far (a refused one is closed as soon as it is accepted). */
  closed(): number;
  /** Connections still open. */
  open(): number;
  closeAll(): void;
}

/** Opens `n` connections that say nothing; resolves once each has connected or been closed. */
async function flood(port: number, n: number): Promise<Flood> {
  const all: net.Socket[] = [];
  let closed = 0;
  await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        all.push(s);
        s.on('error', () => {});
        s.on('close', () => {
          closed++;
          resolve();
        });
        s.on('connect', () => resolve());
      }),
    ),
  );
  return { closed: () => closed, open: () => n - closed, closeAll: () => all.forEach((s) => s.destroy()) };
}

/**
 * Waits until the proxy has counted `refused` refusals and closed that many connections, then
 * checks that exactly that many were: the rest stay open (no headers timeout comes soon).
 */
async function refusedExactly(attack: Flood, refused: number, counted: () => Promise<number> | number): Promise<void> {
  await eventually(() => attack.closed() >= refused, `${refused} connections to be refused`);
  let n = 0;
  for (const deadline = Date.now() + 10_000; (n = await counted()) < refused && Date.now() < deadline; ) await new Promise((r) => setImmediate(r));
  assert.equal(n, refused, 'refusals counted');
  assert.equal(attack.closed(), refused, 'refused, and no more');
}

/** One request on an established keep-alive connection; its status. */
async function ask(c: RawConnection, path: string): Promise<number> {
  const before = c.statuses().length;
  c.socket.write(`GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`);
  await eventually(() => c.statuses().length > before || c.isClosed(), 'an answer');
  return c.statuses()[before] ?? 0;
}

describe('downstream connection limits', () => {
  let app: RawApp;
  let h: Harness;
  const withLimits = (perListener: Partial<Record<EdgeListener, number>>, global?: number): ProxyConfig => {
    const config = edgeConfig(app.port);
    return {
      ...config,
      listeners: config.listeners.map((l) => ({ ...l, maxConnections: perListener[l.name as EdgeListener] })),
      overload: global === undefined ? undefined : { maxDownstreamConnections: global },
    };
  };
  before(async () => {
    app = await startRawApp();
    h = await startProxy(withLimits({ gateway: 10, inbound: 10 }));
  });
  after(async () => {
    await h.close();
    await app.close();
  });

  for (const listener of ['gateway', 'inbound'] as const) {
    test(`${listener}: past its maxConnections new connections are refused at once and counted; established clients are served`, async () => {
      const established = await rawConnection(h.port(listener));
      const overflowBefore = h.proxy.stats.get('downstream_cx_overflow');
      const attack = await flood(h.port(listener), 40);
      try {
        // The limit, less the established client, is let in.
        await refusedExactly(attack, 31, () => h.proxy.stats.get('downstream_cx_overflow') - overflowBefore);
        assert.equal(attack.open(), 9);
        for (let i = 0; i < 5; i++) assert.equal(await ask(established, `/api/during-${i}`), 200);
        // The listener's limit is its own: another listener takes new connections.
        const other = await rawConnection(h.port('outbound'));
        assert.equal(await ask(other, '/api/other'), 200);
        other.socket.destroy();
      } finally {
        attack.closeAll();
        established.socket.destroy();
      }
      await eventually(() => h.proxy.connections() === 0, 'the flood to close');
      const fresh = await rawConnection(h.port(listener));
      assert.equal(await ask(fresh, '/api/after'), 200, 'served again once under the limit');
      fresh.socket.destroy();
    });
  }

  test('overload.maxDownstreamConnections bounds all listeners together', async () => {
    h.proxy.apply({ ...withLimits({}, 12), version: 'v2' });
    const established = await rawConnection(h.port('outbound'));
    const globalBefore = h.proxy.stats.get('downstream_global_cx_overflow');
    const gw = await flood(h.port('gateway'), 6);
    const inbound = await flood(h.port('inbound'), 10);
    try {
      // 12 in all: the established client, the 6 on the gateway, 5 of the 10 on the inbound.
      await refusedExactly(inbound, 5, () => h.proxy.stats.get('downstream_global_cx_overflow') - globalBefore);
      assert.equal(gw.open() + inbound.open(), 11);
      assert.equal(await ask(established, '/api/global'), 200);
    } finally {
      gw.closeAll();
      inbound.closeAll();
      established.socket.destroy();
      h.proxy.apply(withLimits({ gateway: 10, inbound: 10 }));
    }
  });

  test('the default global limit is half the descriptor limit, less a reserve', () => {
    assert.equal(fileDescriptorLimit('Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                20000                files\n'), 20000);
    assert.equal(fileDescriptorLimit('Max open files            unlimited            unlimited            files\n'), undefined);
    assert.equal(defaultMaxDownstreamConnections(20000), 9968);
    assert.equal(defaultMaxDownstreamConnections(undefined), Infinity);
  });
});

test('at its file-descriptor limit, a proxy with no configured limit keeps its established clients served', async () => {
  // An app that closes every connection after its answer: each request then needs a new
  // upstream connection, hence a new descriptor, as a busy proxy's would.
  const appServer = http.createServer((req, res) => {
    res.writeHead(200, { connection: 'close', 'content-length': 2 });
    res.end('ok');
  });
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', () => resolve()));
  const dir = await mkdtemp(path.join(tmpdir(), 'sinew-fd-'));
  const file = path.join(dir, 'config.json');
  await writeFile(file, JSON.stringify(edgeConfig((appServer.address() as net.AddressInfo).port)));
  // 256 descriptors: the default admits (256 - 64) / 2 = 96 downstream connections.
  const proxy = spawn('bash', ['-c', `ulimit -n 256 && exec "${process.execPath}" bin/sinew.js proxy --config "${file}" --admin-port 0`], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proxy.stdout.on('data', (c: Buffer) => (out += c));
  proxy.stderr.on('data', (c: Buffer) => (out += c));
  let attack: Awaited<ReturnType<typeof flood>> | undefined;
  let established: RawConnection | undefined;
  try {
    await eventually(() => /serving config/.test(out) || proxy.exitCode !== null, 'the proxy to start', 60_000);
    const port = Number(/gateway=127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? assert.fail(`no gateway address in: ${out}`));
    const admin = Number(/admin=(\d+)/.exec(out)?.[1] ?? assert.fail(`no admin port in: ${out}`));
    const refusedSoFar = async () => Number(/^downstream_global_cx_overflow: (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${admin}/stats`)).text())?.[1] ?? 0);
    established = await rawConnection(port);
    assert.equal(await ask(established, '/api/before'), 200);
    attack = await flood(port, 300);
    let ok = 0;
    for (let i = 0; i < 20; i++) if ((await ask(established, `/api/during-${i}`)) === 200) ok++;
    assert.equal(ok, 20, `established client: ${ok}/20 served`);
    // The default limit (96), less the established client, is let in.
    await refusedExactly(attack, 300 - 95, refusedSoFar);
  } finally {
    attack?.closeAll();
    established?.socket.destroy();
    if (proxy.exitCode === null) {
      proxy.kill('SIGTERM');
      await new Promise((resolve) => proxy.once('exit', resolve));
    }
    await new Promise<void>((resolve) => appServer.close(() => resolve()));
    appServer.closeAllConnections();
    await rm(dir, { recursive: true, force: true });
  }
});
