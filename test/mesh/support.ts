/**
 * Helpers for the end-to-end tests of `sinew up`: start a mesh from manifests in its own state
 * directory on free ports, drive requests through a sidecar or the gateway, run `sinew`
 * commands against it, read what a proxy holds, and wait on conditions (never sleep).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { MeshStatus } from '../../src/api/mesh-status.js';
import type { ProxyConfig, Route } from '../../src/api/proxy-config.js';
import { fixtures } from '../support/reference-corpus.js';

export const repo = resolve(import.meta.dirname, '../..');
export const bin = join(repo, 'bin/sinew.js');
/** Istio's own samples, as the repository carries them (samples/, unchanged from istio/istio). */
export const istioSamples = fixtures.samples;
export const samples = join(istioSamples, 'bookinfo/networking');

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET through a proxy the way an HTTP_PROXY client does: absolute URI, Host header. */
export function viaProxy(proxy: string, url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const [host, port] = proxy.split(':');
  const target = new URL(url);
  return new Promise((resolvePromise, reject) => {
    const req = request({ host, port: Number(port), method: 'GET', path: url, headers: { host: target.host, ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return send('GET', url, headers);
}

/** One plain request (no proxy); `body` is sent as is. */
export function send(method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: u.hostname, port: Number(u.port), method, path: u.pathname + u.search, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One TCP exchange: connect to `host:port`, send `line` (newline added), read one line, close.
 * Fails after `timeoutMs` rather than hanging on a connection nobody answers.
 */
export function tcpLine(address: string, line: string, timeoutMs = 5000): Promise<string> {
  const [host, port] = address.split(':');
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host, port: Number(port) });
    let received = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no line back from ${address} within ${timeoutMs} ms (got ${JSON.stringify(received)})`)));
    socket.once('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const i = received.indexOf('\n');
      if (i >= 0) {
        socket.end();
        resolvePromise(received.slice(0, i));
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`${address} closed the connection before a whole line (got ${JSON.stringify(received)})`)));
  });
}

/**
 * Runs a sinew command. Asynchronously on purpose: a synchronous spawn would stop this process
 * from reading `sinew up`'s output pipe, and once that pipe fills, `sinew up` blocks in its
 * (synchronous, on Linux) stdout writes and can no longer react to `sinew down`.
 */
export function sinew(stateDir: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  // The state directory goes right after the subcommand: after `--` it would belong to exec's command.
  const [command, ...rest] = args;
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [bin, command, '--state-dir', stateDir, ...rest], { cwd: repo, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolvePromise({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    // A real multi-process system converging: poll, with a short pause between looks.
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Processes (other than this test) whose command line or environment mentions every one of
 * `needles`. Name the mesh's state directory as well to leave out another mesh's processes:
 * test files run side by side (`npm test` runs two at a time), and `sinew up` passes its
 * environment, SINEW_STATE_DIR included, to every process it starts.
 */
export function processesMentioning(...needles: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      if (needles.every((needle) => cmd.includes(needle) || env.includes(needle))) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

/** Reviews markers (acceptance/topology.yaml): v1 has no rating, v2 black stars, v3 red. */
export const isV1 = (body: string) => !body.includes('"rating"');
export const color = (body: string) => /"color": "(\w+)"/.exec(body)?.[1];
export const reviewsVersion = (body: string) => (isV1(body) ? 'v1' : color(body) === 'black' ? 'v2' : color(body) === 'red' ? 'v3' : 'unknown');

// === a running mesh ===

export interface Mesh {
  stateDir: string;
  process: ChildProcess;
  /** Everything `sinew up` printed so far. */
  log(): string;
  status(): Promise<MeshStatus>;
  /** Stops the mesh (SIGTERM, as `sinew down` does) and removes its state directory. */
  stop(): Promise<void>;
}

export interface StartOptions {
  timeoutMs?: number;
  /** More `sinew up` arguments (`--ready-timeout 5`). */
  args?: string[];
  /** Reuse this state directory (a second run); default a fresh one. */
  stateDir?: string;
  /** Resolve on a summary with replicas not ready too (default: only when every replica is ready). */
  allowNotReady?: boolean;
  /** Remove the state directory on stop (default true). */
  removeStateDir?: boolean;
}

/** `sinew up <paths> --gateway-port 0` in a fresh state directory; resolves once the mesh is up. */
export async function startMesh(paths: string[], options: StartOptions | number = {}): Promise<Mesh> {
  const opts: StartOptions = typeof options === 'number' ? { timeoutMs: options } : options;
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'sinew-up-'));
  const up = spawn(process.execPath, [bin, 'up', ...paths, '--state-dir', stateDir, '--gateway-port', '0', ...(opts.args ?? [])], {
    cwd: repo,
    env: { ...process.env, SINEW_STATE_DIR: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  up.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  up.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((r) => up.once('exit', () => r()));
  const mesh: Mesh = {
    stateDir,
    process: up,
    log: () => log,
    status: async () => {
      const res = await sinew(stateDir, 'status', '-o', 'json');
      if (res.status !== 0) throw new Error(`sinew status failed: ${res.stderr}`);
      return JSON.parse(res.stdout) as MeshStatus;
    },
    stop: async () => {
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGTERM');
      await exited;
      if (opts.removeStateDir !== false) rmSync(stateDir, { recursive: true, force: true });
    },
  };
  try {
    // `sinew up` says "✔ the mesh is up" once every replica is ready, "⚠ the mesh is up, but ..."
    // when some are late (it keeps retrying them); it exits only when it cannot start at all.
    const up$ = opts.allowNotReady ? /^(✔|⚠) the mesh is up/m : /^✔ the mesh is up/m;
    const failed = () => up.exitCode !== null || (!opts.allowNotReady && /^⚠ the mesh is up/m.test(log));
    await until('the mesh to come up', async () => (up$.test(log) ? true : failed() ? Promise.reject(new Error(log)) : undefined), opts.timeoutMs ?? 120_000);
  } catch (err) {
    await mesh.stop();
    throw err;
  }
  return mesh;
}

/** The config a proxy holds now, from its admin port's /config_dump. */
export async function configDump(admin: string): Promise<ProxyConfig> {
  const res = await get(`http://${admin}/config_dump`);
  if (res.status !== 200) throw new Error(`${admin}/config_dump answered ${res.status}`);
  const dump = JSON.parse(res.body) as { config?: ProxyConfig } & Partial<ProxyConfig>;
  return (dump.config ?? dump) as ProxyConfig;
}

/** `outbound|9080|v2|reviews.default.svc.cluster.local` -> `v2` (`-` without a subset). */
const subsetOf = (cluster: string) => cluster.split('|')[2] || '-';

/**
 * The routes a proxy holds for `host` (a virtual host domain), one entry per route in order:
 * the subsets it sends to, with weights when it splits, e.g. `["v2", "v1(80),v2(20)"]`. Lets a
 * test wait until a proxy holds a rule rather than guess from the traffic.
 */
export function routesFor(config: ProxyConfig, host: string): string[] {
  const routes: Route[] = [];
  for (const rc of config.routeConfigs) for (const vh of rc.virtualHosts) if (vh.domains.includes(host)) routes.push(...vh.routes);
  return routes.map((r) => (r.action.kind === 'route' ? describeSplit(r.action.destinations) : r.action.kind));
}

/** The TCP routes of the listener at `address` (`host:port`), described as routesFor does. */
export function tcpRoutesAt(config: ProxyConfig, address: string): string[] {
  const listener = config.listeners.find((l) => `${l.address.host}:${l.address.port}` === address && l.protocol === 'tcp');
  return listener?.tcp?.routes.map((r) => describeSplit(r.destinations)) ?? [];
}

function describeSplit(destinations: readonly { cluster: string; weight: number }[]): string {
  const live = destinations.filter((d) => d.weight > 0 || destinations.length === 1);
  return live.length === 1 ? subsetOf(live[0].cluster) : live.map((d) => `${subsetOf(d.cluster)}(${d.weight})`).join(',');
}

/** What a command a test runs (curl, openssl) printed, and its exit code. */
export interface CommandRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a client command with `input` on its stdin, within 20 s; never rejects. */
export function runCommand(command: string, args: string[], input = ''): Promise<CommandRun> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}

/** The samples of one Prometheus family in a scrape, with their labels. */
export function metricSamples(text: string, family: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${family}{`)) continue;
    const m = /^\w+\{(.*)\} ([\d.e+]+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[1].matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}
