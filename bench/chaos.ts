/**
 * Faults and load, measured. The Bookinfo demo runs under `sinew up` (the real runner, every
 * part its own process) with productpage-v1 at two replicas, while wrk sends a steady,
 * fixed-rate load of `/productpage` requests through the ingress gateway
 * (bench/chaos-load.lua: every answer is checked; a 200 page that says a backend is
 * "currently unavailable" counts as lost too). Each scenario runs its own load window and
 * reports the requests lost in it, how long the mesh took to recover, and whether the config
 * in force survived:
 *
 *   baseline        no fault: the reference (must lose nothing)
 *   control plane   kill -9 of the control plane: requests lost while it is away, time until
 *                   it answers again and until every proxy is SYNCED, config unchanged
 *   config changes  N changes of the reviews split (alternating weights) applied under load
 *   app kill        kill -9 of one productpage app replica (of two), with Istio's default
 *                   retries and with retries on (retryOn gateway-error,connect-failure,reset)
 *   sidecar kill    kill -9 of that replica's sidecar, the same two ways
 *   runner kill     kill -9 of `sinew up` itself: the parts keep serving without it
 *   apply kill      kill -9 of `sinew up` and the control plane in the middle of a large apply,
 *                   then `sinew up` again: the config is the one before or the one after,
 *                   never half of it (atomic writes)
 *
 *   npm run bench -- chaos [--rate 50] [--duration 20] [--changes 100] [--trials 4] [--json]
 *
 * Needs wrk (apt-get install wrk). Runs the built dist/ (bench/run.ts builds it first), as
 * `sinew up` does after `npm ci`. test/chaos runs the same scenarios, shorter, and asserts
 * that nothing is lost.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import type { MeshStatus } from '../src/api/mesh-status.js';
import { ControlPlaneClient } from '../src/mesh/control-plane-client.js';
import { readMeshFile, readRecordedProcesses } from '../src/mesh/state.js';

const repo = resolve(import.meta.dirname, '..');
const bin = join(repo, 'bin/sinew.js');
const bookinfo = join(repo, 'examples/bookinfo');
const loadScript = join(repo, 'bench/chaos-load.lua');

// === the mesh under test ===

/**
 * Reviews' subsets and the split the config-change scenario alternates, transcribed from
 * Istio's samples/bookinfo/networking/destination-rule-reviews.yaml and
 * virtual-service-reviews-90-10.yaml (weights varied).
 */
const REVIEWS_SUBSETS = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`;
const reviewsSplit = (v1: number, v3: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: ${v1}
    - destination: {host: reviews, subset: v3}
      weight: ${v3}
`;

/**
 * Writes a copy of the Bookinfo manifests with productpage-v1 at two replicas (the apps stay
 * where they are: commands get absolute paths, and run in examples/bookinfo so that
 * `--import tsx` resolves).
 */
function writeManifests(dir: string): void {
  const docs = parseAllDocuments(readFileSync(join(bookinfo, 'bookinfo.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>);
  for (const doc of docs) {
    if (doc.kind !== 'Workload') continue;
    doc.spec.workingDir = bookinfo;
    doc.spec.command = doc.spec.command.map((a: string) => (a.startsWith('./') ? join(bookinfo, a) : a));
    if (doc.metadata.name === 'productpage-v1') doc.spec.replicas = 2;
  }
  writeFileSync(join(dir, 'bookinfo.yaml'), docs.map((d) => JSON.stringify(d)).join('\n---\n') + '\n');
  writeFileSync(join(dir, 'bookinfo-gateway.yaml'), readFileSync(join(bookinfo, 'bookinfo-gateway.yaml'), 'utf8'));
  writeFileSync(join(dir, 'reviews.yaml'), REVIEWS_SUBSETS + '---\n' + reviewsSplit(50, 50));
}

/** The bookinfo VirtualService (bookinfo-gateway.yaml) with a retry policy, or as shipped. */
function gatewayRoute(retries: boolean): string {
  const text = readFileSync(join(bookinfo, 'bookinfo-gateway.yaml'), 'utf8');
  const vs = parseAllDocuments(text).map((d) => d.toJS() as Record<string, any>).find((d) => d.kind === 'VirtualService')!;
  if (retries) for (const rule of vs.spec.http) rule.retries = { attempts: 3, perTryTimeout: '10s', retryOn: 'gateway-error,connect-failure,refused-stream,reset' };
  return JSON.stringify(vs);
}

export class BookinfoMesh {
  readonly dir = mkdtempSync(join(tmpdir(), 'sinew-chaos-'));
  readonly manifests = join(this.dir, 'manifests');
  readonly stateDir = join(this.dir, 'state');
  runner?: ChildProcess;
  log = '';
  gateway = '';
  client!: ControlPlaneClient;

  constructor() {
    mkdirSync(this.manifests);
    writeManifests(this.manifests);
  }

  /** `sinew up` (again, on the same state directory after a kill); resolves once every replica is ready. */
  async start(): Promise<number> {
    const began = Date.now();
    const runner = spawn(process.execPath, [bin, 'up', this.manifests, '--state-dir', this.stateDir, '--gateway-port', '0'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    this.runner = runner;
    const logged = (c: Buffer) => (this.log += c.toString());
    runner.stdout!.on('data', logged);
    runner.stderr!.on('data', logged);
    const mark = this.log.length;
    await until('the mesh to come up', () => (/^✔ the mesh is up/m.test(this.log.slice(mark)) ? true : runner.exitCode !== null || /^⚠ the mesh is up/m.test(this.log.slice(mark)) ? fail(`sinew up did not bring every replica up:\n${this.log.slice(mark)}`) : undefined), 180_000);
    const mesh = readMeshFile(this.stateDir)!;
    this.client = new ControlPlaneClient(mesh.controlPlane.api, { tokenFile: mesh.controlPlane.tokenFile! });
    const status = await this.client.status();
    this.gateway = status.gateways[0].replicas[0].proxy.inbound!;
    return Date.now() - began;
  }

  /** The pid the state directory records for a process of the mesh (`control-plane`, `productpage-v1-0/proxy`). */
  pidOf(id: string): number {
    const record = readRecordedProcesses(this.stateDir).find((r) => r.id === id);
    if (!record?.pid) throw new Error(`no running ${id} recorded in ${this.stateDir}`);
    return record.pid;
  }

  async apply(text: string): Promise<void> {
    const res = await this.client.request('/api/v1/apply', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: text, timeoutMs: 60_000 });
    if (res.status !== 200) throw new Error(`apply refused (${res.status}): ${await res.text()}`);
    await res.arrayBuffer();
  }

  /** Every resource in force, as the config API lists them (for before/after comparisons). */
  async resources(): Promise<string[]> {
    const res = await this.client.request('/api/v1/resources');
    const body = (await res.json()) as { items: { kind: string; metadata: { namespace?: string; name: string }; spec: unknown }[] };
    return body.items.map((r) => JSON.stringify([r.kind, r.metadata.namespace, r.metadata.name, r.spec])).sort();
  }

  async status(): Promise<MeshStatus> {
    return this.client.status();
  }

  /** Every replica ready and every proxy holding the config in force. */
  async allSynced(): Promise<boolean> {
    try {
      const s = await this.status();
      return [...s.workloads, ...s.gateways].every((w) => w.replicas.every((r) => r.ready && r.proxy.sync === 'SYNCED'));
    } catch {
      return false;
    }
  }

  async replicaReady(id: string): Promise<boolean | undefined> {
    try {
      const s = await this.status();
      return [...s.workloads, ...s.gateways].flatMap((w) => w.replicas).find((r) => r.id === id)?.ready;
    } catch {
      return undefined;
    }
  }

  /** Waits until every proxy is SYNCED; ms taken. */
  async waitSynced(timeoutMs = 60_000): Promise<number> {
    const began = Date.now();
    await until('every proxy SYNCED', async () => ((await this.allSynced()) ? true : undefined), timeoutMs);
    return Date.now() - began;
  }

  /** Stops the runner (SIGTERM, as `sinew down`); then stops whatever a killed runner left. */
  async stop(): Promise<void> {
    const runner = this.runner;
    if (runner && runner.exitCode === null && runner.signalCode === null) {
      runner.kill('SIGTERM');
      await new Promise((r) => runner.once('exit', r));
    }
    spawnSync(process.execPath, [bin, 'down', '--state-dir', this.stateDir], { cwd: repo, stdio: 'ignore' });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// === load ===

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  degraded: number;
  /** Connection errors and timeouts (wrk's socket errors). */
  errors: number;
  /** Every request that did not get a complete, non-degraded 2xx page. */
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Each failure: ms since the load began, and what it was (`503/UC`, `degraded`). */
  failures: { atMs: number; what: string }[];
}

/** A fixed-rate load through the gateway until stop() (wrk prints its summary on SIGINT). */
export class Load {
  private readonly child: ChildProcess;
  private out = '';
  private readonly closed: Promise<void>;
  readonly startedAt = Date.now();

  constructor(url: string, rate: number) {
    // Connections enough for the rate at the slowest page (productpage's reviews calls may take seconds when one fails).
    const connections = Math.max(8, Math.ceil(rate / 4));
    this.child = spawn('wrk', ['-t1', `-c${connections}`, '-d3600s', '--timeout', '15s', '-s', loadScript, url, '--', String(rate)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (c: Buffer) => (this.out += c.toString()));
    this.child.stderr!.on('data', (c: Buffer) => (this.out += c.toString()));
    this.closed = new Promise((r) => this.child.once('close', () => r()));
  }

  async stop(): Promise<LoadResult> {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
    await this.closed;
    const line = /CHAOSLOAD (\{.*\})/.exec(this.out)?.[1];
    if (!line) throw new Error(`wrk printed no result:\n${this.out}`);
    const r = JSON.parse(line) as Record<string, number> & { failures: string };
    const errors = r.connect_errors + r.read_errors + r.write_errors + r.timeouts;
    const failures = r.failures
      .split(';')
      .filter(Boolean)
      .map((f) => {
        const [at, what] = f.split(':');
        return { atMs: Number(at), what };
      });
    return { requests: r.requests, ok: r.ok, non2xx: r.non2xx, degraded: r.degraded, errors, lost: r.requests - r.ok + errors, p50Ms: r.p50_ms, p99Ms: r.p99_ms, maxMs: r.max_ms, failures };
  }

  /** Kills wrk without a result (cleanup after an error). */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

export function wrkAvailable(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

// === scenarios ===

export interface ScenarioResult {
  name: string;
  load?: LoadResult;
  /** Recovery times, in words (`back 1.2 s, SYNCED 1.9 s`). */
  recovery: string;
  /** What else was checked (`config unchanged`). */
  outcome: string;
  /** Requests the goal allows to lose (0 unless the scenario says why not). */
  allowedLoss: number;
  /** Whether the scenario met its goal. */
  ok: boolean;
  /** Figures for -o json. */
  figures: Record<string, number | string | boolean>;
}

export interface ChaosOptions {
  rate: number;
  /** Seconds of load before and after each fault. */
  settleS: number;
  configChanges: number;
  applyTrials: number;
  /** Resources in the apply that is cut short. */
  applySize: number;
  /** Scenarios to run (default all). */
  only?: readonly string[];
  /** For the app and sidecar kills: with Istio's default retries, with retries on, or both (default). */
  retryVariants?: readonly ('defaults' | 'retries')[];
  progress?: (line: string) => void;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function underLoad(mesh: BookinfoMesh, rate: number, settleS: number, fault: () => Promise<void>, progress: (line: string) => void = () => undefined): Promise<LoadResult> {
  const load = new Load(`http://${mesh.gateway}/productpage`, rate);
  const logFrom = mesh.log.length;
  try {
    await sleep(settleS * 1000);
    await fault();
    await sleep(settleS * 1000);
    const result = await load.stop();
    if (result.lost > 0) {
      // What the mesh said meanwhile, to tell why: the apps' and proxies' complaints.
      const said = mesh.log.slice(logFrom).split('\n').filter((l) => /error|warn|fail|unavailable|ECONN|EPIPE|exited/i.test(l));
      if (said.length) progress(`the mesh said, during the ${result.lost} lost:\n  ${said.slice(0, 30).join('\n  ')}`);
    }
    return result;
  } catch (err) {
    load.kill();
    throw err;
  }
}

/** `5 lost of 1123: 503 UC x1, 503 UF x4` (the response flags say why; `degraded/details` is a page without details). */
function lostWords(l: LoadResult): string {
  if (l.lost === 0) return `0 lost of ${l.requests}`;
  const kinds = new Map<string, number>();
  for (const f of l.failures) kinds.set(f.what.replace('/', ' '), (kinds.get(f.what.replace('/', ' ')) ?? 0) + 1);
  if (l.errors) kinds.set('connection errors', l.errors);
  return `${l.lost} lost of ${l.requests}: ${[...kinds].map(([what, n]) => `${what} x${n}`).join(', ')}`;
}

export async function runChaos(options: ChaosOptions): Promise<ScenarioResult[]> {
  const progress = options.progress ?? (() => undefined);
  const wanted = (name: string) => !options.only || options.only.includes(name);
  const results: ScenarioResult[] = [];
  const mesh = new BookinfoMesh();
  try {
    progress('starting Bookinfo (productpage-v1 at 2 replicas)');
    const upMs = await mesh.start();
    progress(`up in ${seconds(upMs)}; gateway ${mesh.gateway}`);
    await mesh.waitSynced();

    if (wanted('baseline')) {
      const load = await underLoad(mesh, options.rate, options.settleS, async () => undefined, progress);
      results.push({ name: 'baseline (no fault)', load, recovery: '-', outcome: lostWords(load), allowedLoss: 0, ok: load.lost === 0, figures: {} });
      progress(`baseline: ${lostWords(load)}`);
    }

    if (wanted('control-plane')) {
      const before = await mesh.resources();
      let backMs = NaN;
      let syncedMs = NaN;
      const load = await underLoad(mesh, options.rate, options.settleS, async () => {
        const pid = mesh.pidOf('control-plane');
        const killed = Date.now();
        process.kill(pid, 'SIGKILL');
        await until('a new control plane', async () => {
          try {
            const res = await mesh.client.request('/healthz', { timeoutMs: 500 });
            return ((await res.json()) as { pid: number }).pid !== pid ? true : undefined;
          } catch {
            return undefined;
          }
        }, 60_000, 20);
        backMs = Date.now() - killed;
        await mesh.waitSynced();
        syncedMs = Date.now() - killed;
      }, progress);
      const unchanged = JSON.stringify(await mesh.resources()) === JSON.stringify(before);
      results.push({
        name: 'control plane kill -9',
        load,
        recovery: `back ${seconds(backMs)}, all SYNCED ${seconds(syncedMs)}`,
        outcome: `${lostWords(load)}; config ${unchanged ? 'unchanged' : 'CHANGED'}`,
        allowedLoss: 0,
        ok: load.lost === 0 && unchanged,
        figures: { backMs, syncedMs, configUnchanged: unchanged },
      });
      progress(`control plane: ${results.at(-1)!.recovery}; ${results.at(-1)!.outcome}`);
    }

    if (wanted('config-changes')) {
      let appliedMs = NaN;
      let syncedMs = NaN;
      const load = await underLoad(mesh, options.rate, options.settleS, async () => {
        const began = Date.now();
        for (let i = 0; i < options.configChanges; i++) await mesh.apply(i % 2 === 0 ? reviewsSplit(80, 20) : reviewsSplit(20, 80));
        appliedMs = Date.now() - began;
        await mesh.waitSynced();
        syncedMs = Date.now() - began - appliedMs;
      }, progress);
      results.push({
        name: `${options.configChanges} config changes (reviews weights)`,
        load,
        recovery: `applied in ${seconds(appliedMs)}, all SYNCED ${seconds(syncedMs)} after the last`,
        outcome: lostWords(load),
        allowedLoss: 0,
        ok: load.lost === 0,
        figures: { changes: options.configChanges, appliedMs, syncedMs },
      });
      progress(`config changes: ${results.at(-1)!.recovery}; ${results.at(-1)!.outcome}`);
    }

    for (const part of ['app', 'sidecar'] as const) {
      for (const retries of [false, true]) {
        if (!wanted(`${part}-kill`) || !(options.retryVariants ?? ['defaults', 'retries']).includes(retries ? 'retries' : 'defaults')) continue;
        await mesh.apply(gatewayRoute(retries));
        await mesh.waitSynced();
        const target = part === 'app' ? 'productpage-v1-0' : 'productpage-v1-0/proxy';
        let notReadyMs = NaN;
        let backMs = NaN;
        const load = await underLoad(mesh, options.rate, options.settleS, async () => {
          const pid = mesh.pidOf(target);
          const killed = Date.now();
          process.kill(pid, 'SIGKILL');
          await until('the runner to mark it not ready', async () => ((await mesh.replicaReady('productpage-v1-0')) === false ? true : undefined), 30_000, 10);
          notReadyMs = Date.now() - killed;
          await until('it to be back', async () => ((await mesh.replicaReady('productpage-v1-0')) ? true : undefined), 60_000, 50);
          await mesh.waitSynced();
          backMs = Date.now() - killed;
        }, progress);
        // Without retries on the route, a request in flight to the killed replica is lost
        // (Istio's default policy retries no 503 and no reset); with them, none may be.
        results.push({
          name: `productpage ${part} kill -9 (${retries ? 'retries on' : "Istio's default retries"})`,
          load,
          recovery: `marked not ready ${seconds(notReadyMs)}, back ${seconds(backMs)}`,
          outcome: lostWords(load),
          allowedLoss: retries ? 0 : Infinity,
          ok: retries ? load.lost === 0 : true,
          figures: { retries, notReadyMs, backMs },
        });
        progress(`${part} kill (${retries ? 'retries' : 'defaults'}): ${results.at(-1)!.recovery}; ${results.at(-1)!.outcome}; failures ${JSON.stringify(load.failures.slice(0, 10))}`);
      }
    }
    await mesh.apply(gatewayRoute(false));

    if (wanted('runner-kill')) {
      const load = await underLoad(mesh, options.rate, options.settleS, async () => {
        mesh.runner!.kill('SIGKILL');
        await new Promise((r) => mesh.runner!.once('exit', r));
      }, progress);
      const restartMs = await mesh.start();
      await mesh.waitSynced();
      results.push({
        name: 'sinew up kill -9 (the parts run on)',
        load,
        recovery: `sinew up again: up in ${seconds(restartMs)}`,
        outcome: lostWords(load),
        allowedLoss: 0,
        ok: load.lost === 0,
        figures: { restartMs },
      });
      progress(`runner kill: ${results.at(-1)!.outcome}`);
    }

    if (wanted('apply-kill')) {
      // How long an apply of this size takes, to aim the kills inside it.
      const calibration = batch('calibration', options.applySize);
      const began = Date.now();
      await mesh.apply(calibration);
      const applyMs = Date.now() - began;
      let intact = 0;
      let halves = 0;
      const outcomes: string[] = [];
      for (let trial = 0; trial < options.applyTrials; trial++) {
        const before = await mesh.resources();
        const offsetMs = Math.round((applyMs * (trial + 0.5)) / options.applyTrials);
        const applying = mesh.apply(batch(`trial-${trial}`, options.applySize)).catch(() => undefined);
        await sleep(offsetMs);
        // Everything that decides the config dies at once: the runner and the control plane.
        const cp = mesh.pidOf('control-plane');
        mesh.runner!.kill('SIGKILL');
        process.kill(cp, 'SIGKILL');
        await new Promise((r) => mesh.runner!.once('exit', r));
        await applying;
        await mesh.start();
        const after = await mesh.resources();
        const added = after.filter((r) => r.includes(`"chaos-trial-${trial}-`)).length;
        const kept = before.every((r) => after.includes(r));
        const whole = added === 0 || added === options.applySize;
        if (whole && kept) intact++;
        if (!whole) halves++;
        outcomes.push(`kill at ${offsetMs} ms: ${added === 0 ? 'not applied' : added === options.applySize ? 'applied' : `${added} of ${options.applySize} (HALF)`}${kept ? '' : ', EARLIER CONFIG LOST'}`);
        progress(`apply kill, trial ${trial}: ${outcomes.at(-1)}`);
      }
      await mesh.waitSynced();
      results.push({
        name: `sinew up + control plane kill -9 during a ${options.applySize}-resource apply, then sinew up`,
        recovery: `apply takes ${applyMs} ms; ${outcomes.join('; ')}`,
        outcome: `config intact ${intact}/${options.applyTrials}, half-applied ${halves}`,
        allowedLoss: 0,
        ok: intact === options.applyTrials,
        figures: { applyMs, intact, trials: options.applyTrials, halfApplied: halves },
      });
    }
  } finally {
    await mesh.stop();
    if (results.every((r) => r.ok)) mesh.remove();
    else progress(`kept ${mesh.dir} (the runner's log is in memory only; see above)`);
  }
  return results;
}

/** `size` VirtualServices for hosts of their own, named `chaos-<label>-<i>`. */
function batch(label: string, size: number): string {
  const docs: string[] = [];
  for (let i = 0; i < size; i++) docs.push(JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: `chaos-${label}-${i}` }, spec: { hosts: [`chaos-${label}-${i}.example.com`], http: [{ route: [{ destination: { host: 'details' } }] }] } }));
  return docs.join('\n---\n');
}

// === helpers ===

function fail(message: string): never {
  throw new Error(message);
}

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, pollMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

export function report(results: readonly ScenarioResult[], rate: number): string {
  const rows = results.map((r) => [r.name, r.load ? String(r.load.requests) : '-', r.load ? String(r.load.lost) : '-', r.load ? `${r.load.p99Ms.toFixed(0)} / ${r.load.maxMs.toFixed(0)}` : '-', r.recovery, r.outcome, r.allowedLoss === Infinity ? 'reported' : r.ok ? 'met' : 'MISSED']);
  const header = ['scenario', 'requests', 'lost', 'p99/max ms', 'recovery', 'outcome', 'goal'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [
    `Bookinfo through the ingress gateway at ${rate} req/s (wrk, fixed rate); lost = not a complete 2xx page.`,
    `Goal: nothing lost, except with Istio's default retries (no 503 and no reset is retried), where the loss is reported.`,
    line(header),
    ...rows.map(line),
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '50' },
      duration: { type: 'string', default: '8' },
      changes: { type: 'string', default: '100' },
      trials: { type: 'string', default: '4' },
      size: { type: 'string', default: '300' },
      only: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const results = await runChaos({
    rate: Number(values.rate),
    settleS: Number(values.duration),
    configChanges: Number(values.changes),
    applyTrials: Number(values.trials),
    applySize: Number(values.size),
    only: values.only?.split(','),
    progress: (line) => process.stderr.write(`chaos: ${line}\n`),
  });
  process.stdout.write(values.json ? JSON.stringify(results) + '\n' : report(results, Number(values.rate)));
}
