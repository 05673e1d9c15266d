/**
 * Runs the Gateway API conformance tests (./suite.ts) against a real `sinew up`: the suite's
 * base (./base.ts) is brought up once, with echo servers as the backends; each test then
 * applies its manifests through the control plane's API, takes its steps, and deletes them, as
 * the upstream suite does against a cluster.
 *
 * The steps are the upstream helpers (conformance/utils/kubernetes, utils/http, utils/echo)
 * carried out here: status checks read the status the control plane shows with each resource
 * (what `sinew get -o yaml` prints), requests go to the gateway's listener (its address from
 * `sinew status`) or, for the mesh, out through the client workload's sidecar, and responses
 * are compared as utils/http CompareRoundTrip and utils/echo compareRequest compare them. Every
 * wait is "eventually": polled until it holds (requests: three consecutive matching answers,
 * as the suite requires) or a deadline passes. A helper the runner does not implement fails
 * the test, naming it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { isIP } from 'node:net';
import { WebSocket } from 'ws';
import { request as httpsRequest } from 'node:https';
import { connect as connectHttp2 } from 'node:http2';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { MeshStatus } from '../../../src/api/mesh-status.js';
import { GATEWAY_NAME_LABEL } from '../../../src/semantics/gateway-api/binding.js';
import { startMesh, type Mesh } from '../../mesh/support.js';
import { readApiTokenFile } from '../../../src/controlplane/credentials.js';
import { readMeshFile } from '../../../src/mesh/state.js';
import { prepareManifest, runnableBase, TLS_BACKEND, tlsBackendCommand, tlsBackendEntry, type BaseOptions } from './base.js';
import { fixturesDir, type ConformanceTest, type Outcome, type Step, type Value } from './suite.js';
import { b64, makeCa, makeClientCertificate, makeSelfSignedCertificate, makeServerCertificate, type Pem } from '../../support/tls.js';
import { connect as connectTls } from 'node:tls';
import { connect as connectTcp, type Socket } from 'node:net';

export interface RunnerOptions extends BaseOptions {
  /** How long an "eventually" check may take (default 15 s; the suite allows 30 to 60 s on a cluster). */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** The features declared supported, for the tests that ask (`suite.SupportedFeatures.Has`). */
  supportedFeatures?: ReadonlySet<string>;
}

type NN = { Name: string; Namespace: string };
interface GatewayAddress {
  $gateway: NN;
  /** The listener port the test names (a NewGatewayRef's listeners, or the Gateway's first). */
  port?: number;
}
interface AppClient {
  $app: { namespace: string; labels: Record<string, string> };
  Address: string;
}
type Resolved = Value | GatewayAddress | AppClient | undefined;
interface WebSocketConnection {
  socket: WebSocket;
  /** The next frame the server sent. */
  next(): Promise<{ data: Buffer; binary: boolean }>;
}
interface Pod {
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  status: { podIP: string; podIPs: { ip: string }[] };
}

class StepFailure extends Error {}
/** A failure no later attempt can undo (the suite's t.Fatalf inside a convergence loop). */
class FatalFailure extends StepFailure {}
class Unsupported extends Error {}

const REQUIRED_CONSECUTIVE_SUCCESSES = 3;
/**
 * The suite's MaxTimeToConsistency (utils/config), which its TCP and TLS connection checks
 * poll for: a Gateway made again for a test gets a proxy of its own, which takes a while to
 * start on a loaded machine.
 */
const MAX_TIME_TO_CONSISTENCY_MS = 30_000;

export class ConformanceRunner {
  readonly #options: RunnerOptions;
  #mesh: Mesh | undefined;
  #dir: string | undefined;
  /** The TLS Secrets the suite's setup makes, by `namespace/name`. */
  readonly #tlsSecrets = new Map<string, Pem>();
  /** The ConfigMaps the suite's setup makes (the CA of its TLS checks), by `namespace/name`. */
  readonly #configMaps = new Map<string, Record<string, string>>();
  #api = '';
  #token = '';
  #status: MeshStatus | undefined;
  /** The uuid of the current attempt (`uuid.New()` in a test's convergence function). */
  #attemptUuid: string | undefined;
  /** The WebSockets a test opened (closed after each attempt and at the test's end). */
  readonly #sockets = new Set<WebSocket>();
  /** The TLS backend the runner runs outside the mesh (./base.ts TLS_BACKEND). */
  #tlsBackend: ChildProcess | undefined;
  /**
   * ExpectMirroredRequest's watchers: the backends whose logs must show a request to the path,
   * from where the mesh's output stood when the test asked (checked before the test passes, as
   * the suite waits for its watchers).
   */
  readonly #mirrorWatches: { backends: NN[]; path: string; from: number }[] = [];
  /** Objects a test applied with MustApplyObjectsWithCleanup: deleted when it ends. */
  readonly #applied: Record<string, unknown>[] = [];

  constructor(options: RunnerOptions = {}) {
    this.#options = options;
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  /** How long an "eventually" check may take. */
  timeoutMs: number;

  async start(): Promise<void> {
    this.#dir = mkdtempSync(join(tmpdir(), 'sinew-conformance-'));
    const base = join(this.#dir, 'base.yaml');
    // The suite's setup makes these certificates (MustCreateSelfSignedCertSecret): for the HTTPS
    // listeners of its base Gateways (tests read it back with GetTLSSecret to trust the
    // gateway), and the one the ReferenceGrant tests refer to across namespaces.
    this.#tlsSecrets.set('gateway-conformance-infra/tls-validity-checks-certificate', await makeSelfSignedCertificate(['*', '*.org']));
    this.#tlsSecrets.set('gateway-conformance-web-backend/certificate', await makeSelfSignedCertificate(['*']));
    // And for the backends that speak TLS (MustCreateCASignedCertSecret, MustCreateCACertConfigMap):
    // a CA; the TLS echo's certificate it signs (tls-backend, tls-backend-2), which BackendTLSPolicies
    // verify against the CA as a ConfigMap's ca.crt and TLSRoute tests trust as it is
    // (GetTLSSecret: its tls.crt carries the CA after the leaf, as a chain); the TCP echo's for
    // abc.example.com (TLSRoute passthrough); another CA, which signed nothing, to verify
    // against and fail.
    const ca = await makeCa('gateway-conformance CA');
    const unusedCa = await makeCa('gateway-conformance unused CA');
    const backendLeaf = await makeServerCertificate(ca, ['abc.example.com', 'spiffe://abc.example.com/test-identity', 'other.example.com']);
    const backendCertificate = { ...backendLeaf, cert: backendLeaf.cert + ca.cert };
    this.#tlsSecrets.set(`${TLS_BACKEND.namespace}/tls-checks-certificate`, backendCertificate);
    const passthrough = await makeServerCertificate(ca, ['abc.example.com']);
    this.#tlsSecrets.set('gateway-conformance-infra/tls-passthrough-checks-certificate', passthrough);
    this.#tlsSecrets.set('gateway-conformance-app-backend/tls-passthrough-checks-certificate', passthrough);
    this.#configMaps.set('gateway-conformance-infra/tls-checks-ca-certificate', { 'ca.crt': ca.cert });
    // Client certificates for the gateways' client certificate validation, each under a CA of
    // its own that a ConfigMap holds (the default validation's and the per-port one's).
    const clientCa = await makeCa('gateway-conformance client CA');
    const perPortClientCa = await makeCa('gateway-conformance per-port client CA');
    this.#tlsSecrets.set('gateway-conformance-infra/tls-validity-checks-client-certificate', await makeClientCertificate(clientCa, 'client.example.org'));
    this.#tlsSecrets.set('gateway-conformance-infra/tls-validity-checks-per-port-client-certificate', await makeClientCertificate(perPortClientCa, 'per-port-client.example.org'));
    const secrets = [...this.#tlsSecrets].map(([key, pem]) => {
      const [namespace, name] = key.split('/');
      return `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: ${namespace}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${b64(pem.cert)}\n  tls.key: ${b64(pem.key)}\n`;
    });
    const configMaps = [
      ['gateway-conformance-infra', 'tls-checks-ca-certificate', ca.cert],
      ['gateway-conformance-infra', 'mismatch-ca-certificate', unusedCa.cert],
      ['gateway-conformance-infra', 'tls-validity-checks-ca-certificate', clientCa.cert],
      ['gateway-conformance-infra', 'tls-validity-checks-per-port-ca-certificate', perPortClientCa.cert],
      // one in another namespace, which a Gateway may not use without a ReferenceGrant
      ['gateway-conformance-web-backend', 'web-backend-cm', clientCa.cert],
    ].map(([namespace, name, pem]) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data: { 'ca.crt': pem } }) + '\n');
    const extra: string[] = [];
    if (this.#options.gateway !== false && (!this.#options.backends || this.#options.backends.includes(TLS_BACKEND.name))) {
      extra.push(tlsBackendEntry(await this.#startTlsBackend(backendCertificate)));
    }
    // The backends that mount a Secret read it from files, as a pod reads its volume.
    const secretFiles = (key: string) => {
      const pem = this.#tlsSecrets.get(key);
      if (!pem) return undefined;
      const stem = join(this.#dir!, key.replace('/', '.'));
      writeFileSync(`${stem}.crt`, pem.cert);
      writeFileSync(`${stem}.key`, pem.key, { mode: 0o600 });
      return { cert: `${stem}.crt`, key: `${stem}.key` };
    };
    writeFileSync(base, [runnableBase({ ...this.#options, secretFiles }), ...secrets, ...configMaps, ...extra].join('---\n'));
    this.#mesh = await startMesh([base], 240_000);
    const status = await this.#mesh.status();
    this.#api = `http://${status.controlPlane.api}`;
    // The control plane's API asks for its token, which `sinew up` keeps in its state directory.
    this.#token = await readApiTokenFile(readMeshFile(this.#mesh.stateDir)!.controlPlane.tokenFile!);
  }

  /** A call to the control plane's API as its operator. */
  #call(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.#token}`);
    return fetch(`${this.#api}${path}`, { ...init, headers });
  }

  async stop(): Promise<void> {
    try {
      await this.#mesh?.stop();
    } finally {
      await this.#stopTlsBackend();
      if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    }
  }

  /** Starts the TLS backend (the echo server over HTTPS with `pem`) and answers the port it listens on. */
  async #startTlsBackend(pem: Pem): Promise<number> {
    const certFile = join(this.#dir!, 'tls-backend.crt');
    const keyFile = join(this.#dir!, 'tls-backend.key');
    writeFileSync(certFile, pem.cert);
    writeFileSync(keyFile, pem.key, { mode: 0o600 });
    const { command, args, cwd, env } = tlsBackendCommand(certFile, keyFile);
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#tlsBackend = child;
    let output = '';
    return new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`the TLS backend did not start within 30 s: ${output}`)), 30_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const m = /listening on [^\s]+:(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the TLS backend exited (${code}): ${output}`));
      });
    });
  }

  async #stopTlsBackend(): Promise<void> {
    const child = this.#tlsBackend;
    this.#tlsBackend = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  log(): string {
    return this.#mesh?.log() ?? '';
  }

  /** Runs one test: applies its manifests, takes its steps, deletes its manifests. */
  async run(test: ConformanceTest): Promise<Outcome> {
    const unsupported = test.steps.find((s) => s.unsupported);
    if (unsupported) return { result: 'failed', reason: `the runner cannot take a step of this test: ${unsupported.unsupported}` };
    const manifests = test.manifests.map((m) => prepareManifest(readFileSync(join(fixturesDir, m), 'utf8')));
    try {
      for (const m of manifests) await this.#post('apply', m);
      const results = new Map<number, Resolved>();
      /** A subtest that returned early (`if ... { return }` in it): its further steps are not taken. */
      let returned: string[] | undefined;
      for (const step of test.steps) {
        if (returned && returned.every((name, i) => step.subtest?.[i] === name)) continue;
        returned = undefined;
        if (step.call === '$returnIf' && this.#resolve(step.args?.[0], results) === true) {
          if (!step.subtest?.length) return { result: 'passed' };
          returned = step.subtest;
          continue;
        }
        try {
          await this.#step(step, results);
        } catch (err) {
          const where = step.subtest?.length ? ` (subtest "${step.subtest.join(' / ')}")` : '';
          if (err instanceof Unsupported) return { result: 'failed', reason: `${step.call}: not implemented by the runner (${err.message})${where}` };
          return { result: 'failed', reason: `${step.call}${where}: ${(err as Error).message}` };
        }
      }
      for (const watch of this.#mirrorWatches) {
        try {
          await this.#eventually(async () => this.#mirroredTo(watch));
        } catch (err) {
          return { result: 'failed', reason: `http.ExpectMirroredRequest: ${(err as Error).message}` };
        }
      }
      return { result: 'passed' };
    } catch (err) {
      return { result: 'failed', reason: (err as Error).message };
    } finally {
      this.#closeSockets();
      this.#mirrorWatches.splice(0);
      for (const o of this.#applied.splice(0)) await this.#post('delete', JSON.stringify(o)).catch(() => undefined);
      for (const m of manifests.reverse()) await this.#post('delete', m).catch(() => undefined);
      // The next test must not meet this one's routes: wait until the gateways hold the config
      // without them (on a cluster the suite's cleanup races the next test; here it need not).
      // SYNCED alone is not enough: until the debounced push goes out, a gateway is SYNCED on
      // the config from before the deletes. Its acknowledged version must carry the config
      // revision the deletes made (`<config revision>.<registry revision>`).
      const revision = Number((await this.#meshStatus(true)).controlPlane.configRevision);
      await this.#eventually(async () => {
        const status = await this.#meshStatus(true);
        const behind = status.gateways.flatMap((g) =>
          g.replicas.filter((r) => r.ready && (r.proxy.sync !== 'SYNCED' || !(Number(String(r.proxy.configVersion ?? '').split('.')[0]) >= revision))).map((r) => r.id),
        );
        if (behind.length) throw new StepFailure(`gateways not synced with config revision ${revision} yet: ${behind.join(', ')}`);
      }, 10_000).catch(() => undefined);
    }
  }

  async #post(action: 'apply' | 'delete', body: string): Promise<void> {
    const res = await this.#call(`/api/v1/${action}`, { method: 'POST', body, headers: { 'content-type': 'application/yaml' } });
    if (!res.ok) throw new Error(`${action} refused (${res.status}): ${(await res.text()).slice(0, 2000)}`);
  }

  async #resource(kind: string, nn: NN): Promise<Record<string, any> | undefined> {
    // Istio's Gateway has the name too: the Gateway API's is stored under its qualified key.
    const key = kind === 'Gateway' ? 'Gateway.gateway.networking.k8s.io' : kind;
    const res = await this.#call(`/api/v1/resources/${key}/${encodeURIComponent(nn.Namespace)}/${encodeURIComponent(nn.Name)}`);
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`GET ${kind} ${nn.Namespace}/${nn.Name}: ${res.status}`);
    return (await res.json()) as Record<string, any>;
  }

  /** A GatewayClass (cluster-scoped: found in the listing). */
  async #gatewayClass(name: string): Promise<Record<string, any> | undefined> {
    const res = await this.#call(`/api/v1/resources?kind=GatewayClass`);
    const list = (await res.json()) as { items: Record<string, any>[] };
    return list.items.find((i) => i.metadata?.name === name);
  }

  async #meshStatus(fresh = false): Promise<MeshStatus> {
    if (!this.#status || fresh) {
      const res = await this.#call(`/api/v1/status`);
      this.#status = (await res.json()) as MeshStatus;
    }
    return this.#status;
  }

  /** Polls `check` (it throws while the condition does not hold) until it holds or the deadline passes. */
  async #eventually<T>(check: () => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await check();
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      // A multi-process mesh converging: look again shortly.
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  #resolve(v: Value | undefined, results: Map<number, Resolved>): Resolved {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => this.#resolve(x, results) as Value);
    if ('$ref' in v) {
      const r = results.get(Number(v.$ref));
      // a result of a step that returns several (GetTLSSecret's key)
      if ('$result' in v) return ((r as { $results?: Value[] } | undefined)?.$results?.[Number(v.$result)] ?? null) as Value;
      return r;
    }
    // a fresh uuid per attempt of an AwaitConvergence (the same within the attempt)
    if ('$uuid' in v) return (this.#attemptUuid ??= randomUUID());
    if ('$urlencode' in v) {
      // url.Values.Encode: keys sorted, each value escaped as a query component
      const values = this.#resolve(v.$urlencode as Value, results) as Record<string, Value[]>;
      return Object.keys(values)
        .sort()
        .flatMap((k) => values[k].map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(String(x))}`))
        .join('&');
    }
    if ('$concat' in v) {
      const parts = (v.$concat as Value[]).map((p) => this.#resolve(p, results));
      if (parts.some((p) => typeof p !== 'string' && typeof p !== 'number')) throw new Unsupported(`a value built from what a run gives: ${JSON.stringify(v.$concat)}`);
      return parts.join('');
    }
    if ('$field' in v) {
      let at = this.#resolve(v.$of as Value, results) as unknown;
      for (const part of v.$field as (string | number)[]) at = goField(at, part);
      return at as Value;
    }
    if ('$append' in v) {
      const [base, ...added] = (v.$append as Value[]).map((x) => this.#resolve(x, results));
      return [...((Array.isArray(base) ? base : []) as Value[]), ...added.map((a) => toKubernetes(a as Value))];
    }
    if ('$filter' in v || '$map' in v) {
      // a loop of the test over a list the run gave (scripts/gateway-api/transcribe.ts #rangeOverRun)
      const list = this.#resolve(('$filter' in v ? v.$filter : v.$map) as Value, results);
      const items = Array.isArray(list) ? (list as Value[]) : [];
      const elem = Number(v.elem);
      const out: Value[] = [];
      for (const item of items) {
        results.set(elem, item);
        if ('$filter' in v) {
          if (this.#resolve(v.$where as Value, results) === true) out.push(item);
        } else if (!('$unless' in v) || this.#resolve(v.$unless as Value, results) !== true) out.push(this.#resolve(v.$value as Value, results) as Value);
      }
      results.delete(elem);
      return out;
    }
    if ('$cmp' in v) {
      const [a, b] = [this.#resolve(v.x as Value, results), this.#resolve(v.y as Value, results)];
      const same = JSON.stringify(a) === JSON.stringify(b);
      switch (v.$cmp) {
        case '==':
          return same;
        case '!=':
          return !same;
        default:
          if (typeof a !== 'number' || typeof b !== 'number') throw new Unsupported(`${String(v.$cmp)} of ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
          return v.$cmp === '<' ? a < b : v.$cmp === '>' ? a > b : v.$cmp === '<=' ? a <= b : a >= b;
      }
    }
    if ('$not' in v) {
      const x = this.#resolve(v.$not as Value, results);
      if (typeof x !== 'boolean') throw new Unsupported(`not of ${JSON.stringify(x)}`);
      return !x;
    }
    if ('$len' in v) {
      const resolved = this.#resolve(v.$len as Value, results) as unknown;
      // a PEM the suite's GetTLSSecret gave is a []byte in Go
      const x = resolved && typeof resolved === 'object' && '$pem' in resolved ? (resolved as { $pem: string }).$pem : resolved;
      // a nil slice (a field the API leaves out) has length 0, as in Go
      return Array.isArray(x) ? x.length : typeof x === 'string' ? x.length : x && typeof x === 'object' ? Object.keys(x).length : 0;
    }
    if ('$call' in v) {
      const args = (v.args as Value[]).map((a) => this.#resolve(a, results));
      if (v.$call === 'kubernetes.NewGatewayRef') {
        const listeners = args.slice(1).filter((a): a is string => typeof a === 'string');
        return { $gateway: args[0] as NN, ...(listeners.length ? { listeners } : {}) } as unknown as Value;
      }
      if (v.$call === 'http.Ipv6SafeHost') return args[0];
      // net.SplitHostPort(gwAddr): the host is the gateway's address (its port set again by JoinHostPort)
      if (v.$call === 'net.SplitHostPort') return args[0] as Value;
      // net.JoinHostPort(gwAddr, "443"): the gateway's address at that port
      if (v.$call === 'net.JoinHostPort' && args[0] && typeof args[0] === 'object' && '$gateway' in args[0]) return { ...(args[0] as object), port: Number(args[1]) } as unknown as Value;
      // a Deployment's selector (its matchLabels) and a namespace, for suite.Client.List
      if (v.$call === 'metav1.LabelSelectorAsSelector') return args[0] as Value;
      if (v.$call === 'client.InNamespace') return { $namespace: args[0] as Value };
      if (v.$call === 'bytes.Equal') return JSON.stringify(args[0]) === JSON.stringify(args[1]);
      if (v.$call === 'strings.HasPrefix') return typeof args[0] === 'string' && typeof args[1] === 'string' ? args[0].startsWith(args[1]) : false;
      throw new Unsupported(String(v.$call));
    }
    if ('$sym' in v) {
      if ('$of' in v) {
        const of = this.#resolve(v.$of as Value, results) as Record<string, unknown> | undefined;
        const field = String(v.$sym).split('.').pop()!;
        if (of && field in of) return of[field] as Value;
      }
      return v;
    }
    const out: Record<string, Value> = {};
    for (const [k, x] of Object.entries(v)) out[k] = this.#resolve(x, results) as Value;
    return out;
  }

  async #step(step: Step, results: Map<number, Resolved>): Promise<void> {
    const call = step.call!;
    if (call === 'weight.NewFunctionBasedSender' || call === 'weight.NewBatchFunctionBasedSender') {
      // The closure is kept as transcribed: its steps say where it sends; TestWeightedDistribution sends.
      results.set(step.id, { $sender: (step.args?.[0] as Record<string, Value>)?.steps ?? [] } as unknown as Value);
      return;
    }
    if (call === 'weight.TestWeightedDistribution' || call === 'weight.TestWeightedDistributionBatch') {
      const sender = this.#resolve(step.args?.[0], results) as unknown as { $sender: Step[] } | undefined;
      const weights = step.args?.[1] as Record<string, number>;
      return this.#weightedDistribution(this.#senderOf(sender?.$sender ?? [], results), weights);
    }
    if (call === '$each') {
      // a loop of the test over a list the run gave: its steps, per element
      const list = this.#resolve(step.args?.[0], results);
      for (const item of Array.isArray(list) ? (list as Value[]) : []) {
        results.set(step.elem!, item);
        if (step.unless !== undefined && this.#resolve(step.unless, results) === true) continue;
        for (const inner of step.steps ?? []) await this.#step(inner, results);
      }
      results.delete(step.elem!);
      return;
    }
    if (call === 'http.AwaitConvergence') {
      // (t, timeoutConfig, fn): fn's steps until they pass RequiredConsecutiveSuccesses times in a row
      const fn = step.args?.[2] as { steps?: Step[] } | undefined;
      if (!fn?.steps) throw new Unsupported('AwaitConvergence without the steps of its function');
      return this.#consistently(async () => {
        this.#attemptUuid = undefined;
        try {
          for (const inner of fn.steps!) await this.#step(inner, results);
        } finally {
          // the function's deferred Close of what it opened
          this.#closeSockets();
        }
      });
    }
    if (call === 'http.CompareRoundTrip') {
      // (t, &req, cReq, cRes, expected): the captured round trip against the expectation
      const captured = this.#resolve(step.args?.[2], results) as unknown as { $response?: Captured } | undefined;
      const expected = this.#resolve(step.args?.[4], results) as Record<string, any>;
      if (!captured?.$response) throw new Unsupported('CompareRoundTrip of a round trip the runner did not capture');
      const req = expected.Request ?? {};
      compareRoundTrip({ scheme: 'http', path: String(req.Path || '/').split('?')[0], method: req.Method || 'GET' }, captured.$response, expected, statusCodesOf(expected));
      return;
    }
    if (call === 'suite.WebSocketDialer.Dial') {
      // (url, protocol, origin): the url is "ws://" + the gateway's address + path
      const parts = ((step.args?.[0] as { $concat?: Value[] })?.$concat ?? [step.args?.[0] as Value]).map((p) => this.#resolve(p, results));
      const url = (await Promise.all(parts.map(async (p) => (p && typeof p === 'object' && '$gateway' in p ? this.#localAddress(p as GatewayAddress) : String(p ?? ''))))).join('');
      results.set(step.id, { $ws: await this.#dialWebSocket(url) } as unknown as Value);
      return;
    }
    if (call === 'websocket.Message.Send' || call === 'websocket.Message.Receive') {
      const conn = (this.#resolve(step.args?.[0], results) as unknown as { $ws?: WebSocketConnection })?.$ws;
      if (!conn) throw new Unsupported(`${call} on no WebSocket`);
      if (call === 'websocket.Message.Send') {
        // a string is a text frame, a []byte a binary one (golang.org/x/net/websocket Message)
        const message = step.args?.[1];
        conn.socket.send(Array.isArray(message) ? Buffer.from(message as number[]) : String(message));
        return;
      }
      const frame = await conn.next();
      results.set(step.id, (frame.binary ? [...frame.data] : frame.data.toString('utf8')) as Value);
      return;
    }
    if (call === '$failIf') {
      // `if <check> { t.Fatalf(...) }` of the test: fails when the check holds
      if (this.#resolve(step.args?.[0], results) === true) throw new StepFailure(String(step.args?.[1] ?? 'a check of the test failed'));
      return;
    }
    if (call === 'http.MakeRequest') {
      // (t, &expected, gwAddr, protocol, scheme): the request, sent later by CaptureRoundTrip
      results.set(step.id, { $request: this.#resolve(step.args?.[1], results), address: this.#resolve(step.args?.[2], results) } as unknown as Value);
      return;
    }
    if (call.endsWith('.CaptureRoundTrip')) {
      // the request the backend saw (echo-basic's answer: Path, Host, Method, Headers, Namespace, Pod), and the response beside it
      const made = this.#resolve(step.args?.[0], results) as unknown as { $request?: Record<string, any>; address?: GatewayAddress } | undefined;
      if (!made?.$request || !made.address) throw new Unsupported(`CaptureRoundTrip of ${JSON.stringify(made)}`);
      const res = await this.#gatewayOnce(made.address, made.$request);
      let echo: Record<string, unknown> = {};
      if ((res.headers['content-type']?.[0] ?? '').startsWith('application/json')) echo = JSON.parse(res.body) as Record<string, unknown>;
      results.set(step.id, { ...echo, $response: res } as unknown as Value);
      return;
    }
    if (call === 'require.Eventually') {
      // (t, condition, waitFor, tick, msg): the closure's steps, until what it returns is true
      const condition = step.args?.[1] as { steps?: Step[]; returns?: Value } | undefined;
      if (condition?.returns === undefined) throw new Unsupported('require.Eventually with a condition the transcription could not work out');
      return this.#eventually(async () => {
        for (const inner of condition.steps ?? []) await this.#step(inner, results);
        if (this.#resolve(condition.returns, results) !== true) throw new StepFailure(String(step.args?.[4] ?? 'condition never held'));
      });
    }
    const args = (step.args ?? []).map((a) => this.#resolve(a, results));
    const method = call.split('.').pop()!;
    const receiver = step.receiver !== undefined ? results.get(step.receiver) : undefined;
    if (receiver && typeof receiver === 'object' && '$app' in receiver) {
      if (method === 'MakeRequestAndExpectEventuallyConsistentResponse') return this.#meshRequest(receiver as AppClient, args[1] as Record<string, any>);
      throw new Unsupported(call);
    }
    // The test's own Kubernetes client calls, on what the API shows.
    if (/^(s|suite)\.Client\.Get$/.test(call)) {
      const nn = args[1] as NN;
      // into a new object of a type (`&v1.Gateway{}`), or again into one fetched before
      const into = args[2] as Record<string, Value> | undefined;
      const kind = String(into?.$type ?? into?.kind ?? '').split('.').pop()!;
      const obj = kind === 'GatewayClass' ? await this.#gatewayClass(nn.Name) : kind === 'Deployment' ? await this.#deployment(nn) : await this.#resource(kind, nn);
      if (!obj) throw new StepFailure(`${kind} ${nn.Namespace ?? ''}/${nn.Name} not found`);
      results.set(step.id, obj as Value);
      return;
    }
    if (/^(s|suite)\.Client\.List$/.test(call)) {
      const kind = String((args[1] as Record<string, Value>)?.$type ?? '').split('.').pop();
      if (kind !== 'PodList') throw new Unsupported(`listing ${kind}`);
      const options = args.slice(2) as Record<string, any>[];
      const selector = (options.find((o) => o && 'Selector' in o)?.Selector ?? {}) as { matchLabels?: Record<string, string> };
      const namespace = options.find((o) => o && '$namespace' in o)?.$namespace as string | undefined;
      results.set(step.id, { items: await this.#pods(namespace, selector.matchLabels ?? {}) } as unknown as Value);
      return;
    }
    if (call === 'tests.setupEndpointSlices') return this.#setupEndpointSlices(args[2] as string[], String(args[3]), args[4] as unknown as { items: Pod[] });
    if (method === 'DeepCopy' && receiver && typeof receiver === 'object') {
      results.set(step.id, structuredClone(receiver) as Value);
      return;
    }
    if (call === '$set') {
      const target = receiver as Record<string, unknown>;
      const [path, value] = args as [(string | number)[], Value];
      setGoField(target, path, toKubernetes(value));
      return;
    }
    if (/^(s|suite)\.Client\.Patch$/.test(call)) {
      // client.MergeFrom(original): the patch is the difference between the fetched object and
      // the changed copy, so the object the API holds afterwards is the changed copy — spec and
      // metadata as the test left them (a field set to Go's nil is left out, as JSON omits it).
      // It is applied as a user applies a changed manifest, through `sinew apply`.
      const obj = args[1] as Record<string, any>;
      const { status: _status, ...manifest } = obj;
      void _status;
      await this.#post('apply', JSON.stringify(withoutNulls(manifest)));
      return;
    }
    switch (call) {
      case 'require.NotEqual':
      case 'require.Equal': {
        const same = JSON.stringify(args[1]) === JSON.stringify(args[2]);
        if (same !== (call === 'require.Equal')) throw new StepFailure(`${String(args[3] ?? call)}: ${JSON.stringify(args[1])} and ${JSON.stringify(args[2])}`);
        return;
      }
      case 'require.NotEmpty': {
        const list = args[1] as unknown as { items?: unknown[] } | unknown[] | undefined;
        const items = Array.isArray(list) ? list : list?.items;
        if (!items?.length) throw new StepFailure(String(args[2] ?? 'expected a list with items'));
        return;
      }
      case 'require.Contains':
      case 'require.NotContains': {
        if (!Array.isArray(args[1])) throw new Unsupported(`${call} in ${JSON.stringify(args[1])}, not a list`);
        const found = (args[1] as Value[]).some((x) => JSON.stringify(x) === JSON.stringify(args[2]));
        if (found !== (call === 'require.Contains')) throw new StepFailure(`${String(args[3] ?? call)}: ${JSON.stringify(args[2])} in ${JSON.stringify(args[1])}`);
        return;
      }
      case 'require.Len':
      case 'require.Lenf': {
        if (!Array.isArray(args[1])) throw new Unsupported(`${call} of ${JSON.stringify(args[1])}, not a list`);
        if (args[1].length !== args[2]) throw new StepFailure(`${String(args[3] ?? call)}: ${args[1].length} items, not ${String(args[2])}`);
        return;
      }
      case 'kubernetes.GWCMustHaveAcceptedConditionAny':
        return this.#eventually(async () => {
          const gwc = await this.#gatewayClass(String(args[3]));
          const accepted = (gwc?.status?.conditions ?? []).find((c: any) => c.type === 'Accepted');
          if (!accepted) throw new StepFailure(`GatewayClass ${String(args[3])} has no Accepted condition`);
        });
      case 'kubernetes.GatewayClassMustHaveLatestConditions': {
        const name = (args[3] as NN).Name;
        return this.#eventually(async () => {
          const gwc = await this.#gatewayClass(name);
          const conditions = gwc?.status?.conditions ?? [];
          if (!conditions.length) throw new StepFailure(`GatewayClass ${name} has no conditions`);
          const stale = conditions.filter((c: any) => c.observedGeneration !== gwc?.metadata?.generation);
          if (stale.length) throw new StepFailure(`GatewayClass ${name}: conditions of generation ${stale.map((c: any) => c.observedGeneration).join(',')}, the resource is at ${gwc?.metadata?.generation}`);
        });
      }
      case 'kubernetes.WaitForGatewayAddress': {
        // the Gateway is programmed and its status names an address
        const ref = args[3] as unknown as { $gateway: NN; listeners?: string[] };
        const address = await this.#gatewayAddress(ref.$gateway, ref.listeners);
        await this.#eventually(async () => {
          const gw = await this.#resource('Gateway', ref.$gateway);
          const addresses = (gw?.status?.addresses ?? []) as { value?: string }[];
          if (!addresses.some((a) => a.value)) throw new StepFailure(`Gateway ${ref.$gateway.Name} has no address in its status (${JSON.stringify(gw?.status?.addresses ?? [])})`);
        });
        results.set(step.id, address);
        return;
      }
      case 'kubernetes.NamespacesMustBeReady':
        // The namespaces' workloads are ready once `sinew up` says the mesh is up.
        return;
      case 'kubernetes.GatewayAndHTTPRoutesMustBeAccepted':
      case 'kubernetes.GatewayAndRoutesMustBeAccepted': {
        const routeKind = call === 'kubernetes.GatewayAndHTTPRoutesMustBeAccepted' ? 'HTTPRoute' : String(((args[5] as Record<string, Value>)?.$type ?? 'v1.HTTPRoute')).split('.').pop()!;
        const ref = args[4] as unknown as { $gateway: NN; listeners?: string[] };
        // the routes' names (GatewayAndRoutesMustBeAccepted has a bool before them in this release)
        const routes = (call === 'kubernetes.GatewayAndHTTPRoutesMustBeAccepted' ? args.slice(5) : args.slice(6)).flat().filter((a): a is NN => !!a && typeof a === 'object' && 'Name' in a) as NN[];
        const address = await this.#gatewayAddress(ref.$gateway, ref.listeners);
        for (const route of routes) await this.#eventually(() => this.#routeParentCondition(routeKind, route, ref.$gateway, { Type: 'Accepted', Status: 'True' }));
        results.set(step.id, address);
        return;
      }
      case 'kubernetes.GatewayAndTLSRoutesMustBeAccepted': {
        // (t, c, timeouts, controllerName, gw, routeNNs...) -> (gwAddr, the last route's spec.hostnames)
        const ref = args[4] as unknown as { $gateway: NN; listeners?: string[] };
        const routes = args.slice(5).flat() as NN[];
        const address = await this.#gatewayAddress(ref.$gateway, ref.listeners);
        let hostnames: string[] = [];
        for (const route of routes) {
          await this.#eventually(() => this.#routeParentCondition('TLSRoute', route, ref.$gateway, { Type: 'Accepted', Status: 'True' }));
          hostnames = (await this.#resource('TLSRoute', route))?.spec?.hostnames ?? [];
        }
        results.set(step.id, { ...address, $1: hostnames } as unknown as Value);
        return;
      }
      case 'kubernetes.HTTPRouteMustHaveResolvedRefsConditionsTrue':
      case 'kubernetes.TLSRouteMustHaveResolvedRefsConditionsTrue':
        return this.#eventually(() => this.#routeParentCondition(call.includes('TLSRoute') ? 'TLSRoute' : 'HTTPRoute', args[3] as NN, args[4] as NN, { Type: 'ResolvedRefs', Status: 'True' }));
      case 'kubernetes.HTTPRouteMustHaveCondition':
      case 'kubernetes.TLSRouteMustHaveCondition':
        return this.#eventually(() => this.#routeParentCondition(call.includes('TLSRoute') ? 'TLSRoute' : 'HTTPRoute', args[3] as NN, args[4] as NN, args[5] as Record<string, string>));
      case 'kubernetes.HTTPRouteMustHaveNoAcceptedParents':
      case 'kubernetes.TLSRouteMustHaveNoAcceptedParents':
        return this.#eventually(async () => {
          const route = await this.#resource(call.includes('TLSRoute') ? 'TLSRoute' : 'HTTPRoute', args[3] as NN);
          const accepted = (route?.status?.parents ?? []).filter((p: any) => (p.conditions ?? []).some((c: any) => c.type === 'Accepted' && c.status === 'True'));
          if (accepted.length) throw new StepFailure(`route has accepted parents: ${JSON.stringify(accepted.map((p: any) => p.parentRef))}`);
        });
      case 'kubernetes.HTTPRouteMustHaveParents':
        return this.#eventually(() => this.#routeParents('HTTPRoute', args[3] as NN, args[4] as Record<string, any>[], args[5] === true));
      case 'kubernetes.GatewayMustHaveCondition':
        return this.#eventually(async () => {
          const gw = await this.#resource('Gateway', args[3] as NN);
          this.#hasCondition(gw?.status?.conditions, args[4] as Record<string, string>, `Gateway ${(args[3] as NN).Name}`);
        });
      case 'kubernetes.BackendTLSPolicyMustHaveCondition': {
        // (t, client, timeouts, policyNN, gatewayNN, condition): the policy's status for that
        // Gateway as an ancestor carries the condition
        const [policy, gateway, want] = [args[3] as NN, args[4] as NN, args[5] as Record<string, string>];
        return this.#eventually(async () => {
          const p = await this.#resource('BackendTLSPolicy', policy);
          if (!p) throw new StepFailure(`BackendTLSPolicy ${policy.Namespace}/${policy.Name} not found`);
          const ancestors = (p.status?.ancestors ?? []) as { ancestorRef?: { name?: string; namespace?: string }; conditions?: any[] }[];
          const ancestor = ancestors.find((a) => a.ancestorRef?.name === gateway.Name && (a.ancestorRef?.namespace ?? p.metadata.namespace) === gateway.Namespace);
          if (!ancestor) throw new StepFailure(`BackendTLSPolicy ${policy.Name} has no status for ancestor ${gateway.Namespace}/${gateway.Name} (ancestors: ${JSON.stringify(ancestors.map((a) => a.ancestorRef))})`);
          this.#hasCondition(ancestor.conditions, want, `BackendTLSPolicy ${policy.Name} ancestor ${gateway.Name}`);
        });
      }
      case 'kubernetes.BackendTLSPolicyMustHaveLatestConditions': {
        // (t, policy): every ancestor's conditions observed the generation of the policy as fetched
        const policy = args[1] as Record<string, any>;
        const generation = policy?.metadata?.generation;
        const conditions = ((policy?.status?.ancestors ?? []) as { conditions?: any[] }[]).flatMap((a) => a.conditions ?? []);
        if (!conditions.length) throw new StepFailure(`BackendTLSPolicy ${policy?.metadata?.name} has no conditions`);
        const stale = conditions.filter((c) => c.observedGeneration !== generation);
        if (stale.length) throw new StepFailure(`BackendTLSPolicy ${policy?.metadata?.name}: conditions of generation ${stale.map((c) => c.observedGeneration).join(',')}, the policy is at ${generation}`);
        return;
      }
      case 'http.ExpectMirroredRequest': {
        // (t, client, clientset, mirrorPods, path, timeouts): each mirror backend's log must show
        // the request to the path (echo-basic logs "Echoing back request made to <path> to
        // client"); the returned wait is checked before the test passes
        const backends = ((args[3] ?? []) as { BackendRef?: NN }[]).map((m) => m.BackendRef!).filter(Boolean);
        if (backends.some((b) => !b.Name)) throw new StepFailure('Mirrored BackendRef.Name wasn\'t provided in the testcase');
        this.#mirrorWatches.push({ backends, path: String(args[4]), from: this.log().length });
        return;
      }
      case 'http.MakeRequestAndExpectFailure':
        return this.#gatewayFailure(args[3] as unknown as GatewayAddress, args[4] as Record<string, any>);
      case 'suite.Applier.MustApplyObjectsWithCleanup': {
        // (t, client, timeouts, objects, cleanup): objects the test built, applied; deleted when it ends
        for (const o of (args[3] ?? []) as Record<string, any>[]) {
          const manifest = kubernetesObject(o);
          await this.#post('apply', JSON.stringify(manifest));
          this.#applied.push(manifest);
        }
        return;
      }
      case 'kubernetes.GatewayMustHaveZeroRoutes':
        return this.#eventually(async () => {
          const gw = await this.#resource('Gateway', args[3] as NN);
          const attached = (gw?.status?.listeners ?? []).reduce((n: number, l: any) => n + (l.attachedRoutes ?? 0), 0);
          if (attached !== 0) throw new StepFailure(`Gateway has ${attached} attached routes, expected 0`);
        });
      case 'kubernetes.GatewayStatusMustHaveListeners':
        return this.#eventually(async () => {
          const gw = await this.#resource('Gateway', args[3] as NN);
          this.#listenersMatch(gw?.status?.listeners ?? [], args[4] as Record<string, any>[]);
        });
      case 'kubernetes.GatewayMustHaveLatestConditions':
      case 'kubernetes.HTTPRouteMustHaveLatestConditions': {
        const kind = call.includes('HTTPRoute') ? 'HTTPRoute' : 'Gateway';
        const nn = (args.find((a) => a && typeof a === 'object' && 'Name' in (a as object)) ?? args[args.length - 1]) as NN;
        return this.#eventually(async () => {
          const r = await this.#resource(kind, nn);
          const generation = r?.metadata?.generation;
          const conditions = kind === 'Gateway' ? (r?.status?.conditions ?? []) : (r?.status?.parents ?? []).flatMap((p: any) => p.conditions ?? []);
          if (!conditions.length) throw new StepFailure(`${kind} ${nn.Name} has no conditions`);
          const stale = conditions.filter((c: any) => c.observedGeneration !== generation);
          if (stale.length) throw new StepFailure(`${kind} ${nn.Name}: conditions of generation ${stale.map((c: any) => c.observedGeneration).join(',')}, the resource is at ${generation}`);
        });
      }
      case 'suite.Client.Delete':
      case 's.Client.Delete': {
        // the test deletes one of its objects mid-way (a ReferenceGrant)
        const obj = args[1] as Record<string, any>;
        const kind = String(obj?.$type ?? '').split('.').pop();
        const meta = obj?.ObjectMeta ?? {};
        if (!kind || !meta.Name) throw new Unsupported(`deleting ${JSON.stringify(obj)}`);
        const res = await this.#call(`/api/v1/resources/${kind === 'Gateway' ? 'Gateway.gateway.networking.k8s.io' : kind}/${encodeURIComponent(meta.Namespace ?? 'default')}/${encodeURIComponent(meta.Name)}`, { method: 'DELETE' });
        if (!res.ok) throw new StepFailure(`deleting ${kind} ${meta.Namespace}/${meta.Name}: ${res.status} ${await res.text()}`);
        return;
      }
      case 'http.MakeRequestAndExpectEventuallyConsistentResponse':
        return this.#gatewayRequest(args[3] as unknown as GatewayAddress, args[4] as Record<string, any>);
      case 'kubernetes.GetTLSSecret': {
        const ref = args[1] as NN;
        const pem = this.#tlsSecrets.get(`${ref.Namespace}/${ref.Name}`);
        if (!pem) throw new Unsupported(`the TLS secret ${ref.Namespace}/${ref.Name}, which the runner does not make`);
        // (cert, key, err): the key is the step's $result 1
        results.set(step.id, { $pem: pem.cert, $results: [null, { $pem: pem.key }] } as unknown as Value);
        return;
      }
      case 'tls.MakeTLSRequestAndExpectEventuallyConsistentResponse':
      case 'tls.MakeTLSRequestAndExpectEventuallyConsistentFailureResponse': {
        // (t, roundTripper, timeouts, gwAddr, serverCertPem, clientCertPem, clientKeyPem, serverName, expected)
        const pem = (x: Resolved) => (x && typeof x === 'object' && '$pem' in x ? String((x as { $pem: string }).$pem) : undefined);
        const ca = pem(args[4]);
        if (!ca) throw new Unsupported('a TLS request without the server certificate to trust');
        const [cert, key] = [pem(args[5]), pem(args[6])];
        if ((args[5] !== null && !cert) || (args[6] !== null && !key)) throw new Unsupported(`a client certificate the runner does not have: ${JSON.stringify([args[5], args[6]])}`);
        const tls: TlsClient = { ca, servername: String(args[7]), ...(cert && key ? { cert, key } : {}) };
        if (call.endsWith('FailureResponse')) return this.#gatewayTlsFailure(args[3] as unknown as GatewayAddress, args[8] as Record<string, any>, tls);
        return this.#gatewayRequest(args[3] as unknown as GatewayAddress, args[8] as Record<string, any>, tls);
      }
      case 'kubernetes.GatewayListenerMustHaveConditions': {
        // (t, client, timeouts, gatewayNN, listenerName, conditions)
        const [gateway, name, wants] = [args[3] as NN, String(args[4]), args[5] as Record<string, string>[]];
        return this.#eventually(async () => {
          const gw = await this.#resource('Gateway', gateway);
          const listener = (gw?.status?.listeners ?? []).find((l: any) => l.name === name);
          if (!listener) throw new StepFailure(`Gateway ${gateway.Name} has no status for listener ${name}`);
          for (const want of wants) this.#hasCondition(listener.conditions, want, `Gateway ${gateway.Name} listener ${name}`);
        });
      }
      case 'suite.SupportedFeatures.Has': {
        const supported = this.#options.supportedFeatures;
        if (!supported) throw new Unsupported('the features declared supported were not given to the runner');
        results.set(step.id, supported.has(String(args[0])));
        return;
      }
      case '$returnIf':
        return;
      case 'kubernetes.GetConfigMapData': {
        const ref = args[2] as NN;
        const data = this.#configMaps.get(`${ref.Namespace}/${ref.Name}`);
        if (!data) throw new Unsupported(`the ConfigMap ${ref.Namespace}/${ref.Name}, which the runner does not make`);
        results.set(step.id, data);
        return;
      }
      case 'tcp.MakeTCPRequestAndExpectEventuallyValidResponse':
        // (t, timeouts, gwAddr, serverCertificate, serverName, useTLS, expected)
        return this.#tcpEchoRequest(args[2] as unknown as GatewayAddress, args[3] as string | null, String(args[4] ?? ''), args[5] === true, args[6] as Record<string, any>);
      case 'tls.MakeTLSConnectionAndExpectEventuallyConnectionRejection':
        // (t, timeouts, gwAddr, serverName)
        return this.#expectTlsRejection(args[2] as unknown as GatewayAddress, String(args[3]));
      case 'echo.ConnectToApp':
      case 'echo.ConnectToAppInNamespace': {
        const selector = String(args[2]);
        const namespace = call === 'echo.ConnectToAppInNamespace' ? String(args[3]) : 'gateway-conformance-mesh';
        const labels = Object.fromEntries(selector.split(',').map((kv) => kv.split('=')));
        const replica = await this.#appReplica(namespace, labels);
        results.set(step.id, { $app: { namespace, labels }, Address: replica.app?.split(':')[0] ?? '' });
        return;
      }
      default:
        throw new Unsupported(call);
    }
  }

  // === the cluster's objects behind the mesh's ===

  /**
   * A Deployment of the suite is a Sinew Workload of the same name (./base.ts): its selector is
   * the Workload's pod labels, as the Deployment's is its template's.
   */
  async #deployment(nn: NN): Promise<Record<string, any> | undefined> {
    const workload = await this.#resource('Workload', nn);
    if (!workload) return undefined;
    const labels = workload.metadata?.labels ?? {};
    return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: workload.metadata, spec: { replicas: workload.spec?.replicas ?? 1, selector: { matchLabels: labels }, template: { metadata: { labels } } } };
  }

  /** The running replicas of the workloads a selector picks, as the Pods a cluster would list. */
  async #pods(namespace: string | undefined, matchLabels: Record<string, string>): Promise<Pod[]> {
    const status = await this.#meshStatus(true);
    return status.workloads
      .filter((w) => (!namespace || w.namespace === namespace) && Object.entries(matchLabels).every(([k, v]) => w.labels[k] === v))
      .flatMap((w) =>
        w.replicas
          .filter((r) => r.ready && r.app)
          .map((r) => {
            const ip = r.app!.slice(0, r.app!.lastIndexOf(':')).replace(/^\[|\]$/g, '');
            return { apiVersion: 'v1', kind: 'Pod', metadata: { name: r.id, namespace: w.namespace, labels: { ...w.labels } }, spec: {}, status: { podIP: ip, podIPs: [{ ip }] } };
          }),
      );
  }

  /**
   * httproute-service-types.go setupEndpointSlices: for each IP family and each prefix, the
   * EndpointSlice `<prefix>-ip4|ip6` the test's manifest made, given an endpoint per pod IP of
   * that family (ready, its pod as targetRef), and patched; a slice with none is left alone.
   */
  async #setupEndpointSlices(prefixes: string[], namespace: string, pods: { items: Pod[] }): Promise<void> {
    for (const family of [{ suffix: 'ip4', version: 4 }, { suffix: 'ip6', version: 6 }]) {
      for (const prefix of prefixes) {
        const name = `${prefix}-${family.suffix}`;
        const slice = await this.#resource('EndpointSlice', { Name: name, Namespace: namespace });
        if (!slice) throw new StepFailure(`Unable to fetch EndpointSlice "${name}"`);
        const endpoints = pods.items.flatMap((pod) =>
          pod.status.podIPs
            .filter((p) => isIP(p.ip) === family.version)
            .map((p) => ({
              addresses: [p.ip],
              conditions: { ready: true, serving: true, terminating: false },
              targetRef: { kind: 'Pod', name: pod.metadata.name, namespace: pod.metadata.namespace },
            })),
        );
        if (!endpoints.length) continue;
        const { status: _status, ...manifest } = slice;
        void _status;
        await this.#post('apply', JSON.stringify({ ...manifest, endpoints }));
      }
    }
  }

  // === weighted distribution (utils/weight) ===

  /** What a sender closure does, as one request that answers with the pod that served it. */
  #senderOf(steps: Step[], results: Map<number, Resolved>): () => Promise<string> {
    const gateway = steps.find((s) => s.call === 'http.MakeRequest');
    if (gateway) {
      const expected = this.#resolve(gateway.args?.[1], results) as Record<string, any>;
      const address = this.#resolve(gateway.args?.[2], results) as unknown as GatewayAddress;
      return async () => {
        const local = await this.#localAddress(address);
        const req = expected.Request ?? {};
        // AddEntropy: a random header, so that no cache or hash pins the answers
        const res = await send(local, req.Method || 'GET', req.Path || '/', { host: req.Host || '127.0.0.1', ...(req.Headers ?? {}), 'X-Jitter': String(Math.random()) });
        compareRoundTrip({ scheme: 'http', path: req.Path || '/', method: req.Method || 'GET' }, res, expected, [200]);
        return (JSON.parse(res.body) as EchoRequest).pod;
      };
    }
    const mesh = steps.find((s) => s.call?.endsWith('.RequestBatch'));
    if (mesh && mesh.receiver !== undefined) {
      const client = results.get(mesh.receiver) as AppClient;
      const expected = this.#resolve(mesh.args?.[1], results) as Record<string, any>;
      return async () => {
        const replica = await this.#appReplica(client.$app.namespace, client.$app.labels);
        const req = expected.Request ?? {};
        const host = req.Host || 'echo';
        const res = await send(replica.proxy.outbound!, 'GET', `http://${host}${req.Path || '/'}`, { host });
        compareMesh(res, { ...expected, Backend: '' }, [200]);
        return /^Hostname=(.*)$/m.exec(res.body)?.[1] ?? '';
      };
    }
    throw new Unsupported('a sender that makes neither a gateway request nor a mesh batch');
  }

  /**
   * weight.TestWeightedDistribution: 500 requests, 10 at a time; each backend's share within
   * 5 percentage points of its weight, a backend of weight 0 never seen; tried up to 3 times
   * (MaxTestRetries), as the suite does.
   */
  async #weightedDistribution(send1: () => Promise<string>, weights: Record<string, number>): Promise<void> {
    const TOTAL = 500;
    const CONCURRENCY = 10;
    const TOLERANCE = 0.05;
    const total = Object.values(weights).reduce((a, b) => a + b, 0);
    let last = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const seen = new Map<string, number>();
      let sent = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (sent < TOTAL) {
            sent++;
            const pod = await send1();
            const backend = Object.keys(weights).find((b) => pod.startsWith(b));
            if (!backend) throw new StepFailure(`a request reached ${pod}, which is none of ${Object.keys(weights).join(', ')}`);
            seen.set(backend, (seen.get(backend) ?? 0) + 1);
          }
        }),
      );
      const problems: string[] = [];
      for (const [backend, weight] of Object.entries(weights)) {
        const share = (seen.get(backend) ?? 0) / TOTAL;
        const want = weight / total;
        if (want === 0 ? share > 0 : Math.abs(share - want) > TOLERANCE) problems.push(`${backend}: ${(share * 100).toFixed(1)}% of requests, expected ${(want * 100).toFixed(1)}%`);
      }
      if (!problems.length) return;
      last = problems.join('; ');
    }
    throw new StepFailure(`traffic distribution off after 3 tries: ${last}`);
  }

  // === status ===

  #hasCondition(conditions: any[] | undefined, want: Record<string, string>, what: string): void {
    const found = (conditions ?? []).find((c) => c.type === want.Type);
    if (!found) throw new StepFailure(`${what} has no ${want.Type} condition (has ${JSON.stringify(conditions ?? [])})`);
    if (want.Status && found.status !== want.Status) throw new StepFailure(`${what}: ${want.Type} is ${found.status} (${found.reason}: ${found.message ?? ''}), expected ${want.Status}`);
    if (want.Reason && found.reason !== want.Reason) throw new StepFailure(`${what}: ${want.Type} reason is ${found.reason}, expected ${want.Reason}`);
  }

  async #routeParentCondition(kind: string, route: NN, gateway: NN, want: Record<string, string>): Promise<void> {
    const r = await this.#resource(kind, route);
    if (!r) throw new StepFailure(`${kind} ${route.Namespace}/${route.Name} not found`);
    const parent = (r.status?.parents ?? []).find((p: any) => p.parentRef?.name === gateway.Name && (p.parentRef?.namespace ?? r.metadata.namespace) === gateway.Namespace);
    if (!parent) throw new StepFailure(`${kind} ${route.Name} has no status for parent ${gateway.Namespace}/${gateway.Name} (parents: ${JSON.stringify(r.status?.parents ?? [])})`);
    this.#hasCondition(parent.conditions, want, `${kind} ${route.Name} parent ${gateway.Name}`);
  }

  async #routeParents(kind: string, route: NN, want: Record<string, any>[], namespaceRequired: boolean): Promise<void> {
    const r = await this.#resource(kind, route);
    const got = (r?.status?.parents ?? []) as any[];
    if (got.length !== want.length) throw new StepFailure(`${kind} ${route.Name}: ${got.length} parents, expected ${want.length}`);
    for (const w of want) {
      const ref = w.ParentRef ?? {};
      const p = got.find((g) => g.parentRef?.name === ref.Name && (!ref.SectionName || g.parentRef?.sectionName === ref.SectionName) && (!namespaceRequired || !ref.Namespace || g.parentRef?.namespace === ref.Namespace));
      if (!p) throw new StepFailure(`${kind} ${route.Name}: no parent ${JSON.stringify(ref)} in ${JSON.stringify(got.map((g) => g.parentRef))}`);
      for (const c of w.Conditions ?? []) this.#hasCondition(p.conditions, c, `${kind} ${route.Name} parent ${ref.Name}`);
    }
  }

  #listenersMatch(got: any[], want: Record<string, any>[]): void {
    if (got.length !== want.length) throw new StepFailure(`${got.length} listeners in status (${got.map((g) => g.name).join(', ')}), expected ${want.length}`);
    for (const w of want) {
      const l = got.find((g) => g.name === w.Name);
      if (!l) throw new StepFailure(`no listener status ${w.Name} (have ${got.map((g) => g.name).join(', ')})`);
      if (typeof w.AttachedRoutes === 'number' && l.attachedRoutes !== w.AttachedRoutes) throw new StepFailure(`listener ${w.Name}: ${l.attachedRoutes} attached routes, expected ${w.AttachedRoutes}`);
      // utils/kubernetes listenersMatch: the expected kinds must be among the supported ones
      // ("the implementation might support more Kinds than defined in the test"); none expected, none supported.
      if (Array.isArray(w.SupportedKinds)) {
        const kinds = (l.supportedKinds ?? []).map((k: any) => k.kind);
        const wantKinds = w.SupportedKinds.map((k: any) => k.Kind);
        if (!wantKinds.length && kinds.length) throw new StepFailure(`listener ${w.Name}: supported kinds ${kinds}, expected none`);
        const missing = wantKinds.filter((k: string) => !kinds.includes(k));
        if (missing.length) throw new StepFailure(`listener ${w.Name}: supported kinds ${kinds}, expected ${wantKinds}`);
      }
      for (const c of w.Conditions ?? []) this.#hasCondition(l.conditions, c, `listener ${w.Name}`);
    }
  }

  // === addresses ===

  async #gatewayAddress(gateway: NN, listeners?: string[]): Promise<GatewayAddress> {
    const gw = await this.#eventually(async () => {
      const r = await this.#resource('Gateway', gateway);
      if (!r) throw new StepFailure(`Gateway ${gateway.Namespace}/${gateway.Name} not found`);
      this.#hasCondition(r.status?.conditions, { Type: 'Programmed', Status: 'True' }, `Gateway ${gateway.Name}`);
      return r;
    });
    const specListeners = (gw.spec?.listeners ?? []) as { name: string; port: number }[];
    const listener = listeners?.length ? specListeners.find((l) => l.name === listeners[0]) : specListeners[0];
    return { $gateway: gateway, port: listener?.port };
  }

  async #localAddress(address: GatewayAddress, timeoutMs = this.timeoutMs): Promise<string> {
    return this.#eventually(async () => {
      const status = await this.#meshStatus(true);
      // The Gateway's proxy carries its name as a label, as Istio's Deployment does.
      const gw = status.gateways.find((g) => g.labels[GATEWAY_NAME_LABEL] === address.$gateway.Name && g.namespace === address.$gateway.Namespace);
      const servers = gw?.replicas.find((r) => r.ready)?.proxy.servers;
      const local = servers?.[String(address.port ?? 80)];
      if (!local) throw new StepFailure(`no running gateway proxy serves ${address.$gateway.Namespace}/${address.$gateway.Name} port ${address.port} (gateways: ${status.gateways.map((g) => `${g.namespace}/${g.name}`).join(', ')})`);
      return local;
    }, timeoutMs);
  }

  async #appReplica(namespace: string, labels: Record<string, string>) {
    return this.#eventually(async () => {
      const status = await this.#meshStatus(true);
      const w = status.workloads.find((x) => x.namespace === namespace && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      const replica = w?.replicas.find((r) => r.ready && r.proxy.outbound);
      if (!replica) throw new StepFailure(`no ready workload with ${JSON.stringify(labels)} in ${namespace}`);
      return replica;
    });
  }

  // === requests ===

  /** http.MakeRequestAndExpectEventuallyConsistentResponse: to the gateway, compared as CompareRoundTrip does. */
  async #gatewayRequest(address: GatewayAddress, expected: Record<string, any>, tls?: TlsClient): Promise<void> {
    if (!address || typeof address !== 'object' || !('$gateway' in address)) throw new Unsupported(`a request to an address the runner cannot place: ${JSON.stringify(address)}`);
    const local = await this.#localAddress(address);
    const req = expected.Request ?? {};
    const port = address.port ?? 80;
    // The Host a client of the cluster's gateway would send: its address, without :80.
    const host = req.Host || (port === 80 ? '127.0.0.1' : `127.0.0.1:${port}`);
    const statusCodes: number[] = [...(expected.Response?.StatusCodes ?? [])];
    if (expected.Response?.StatusCode && !statusCodes.includes(expected.Response.StatusCode)) statusCodes.push(expected.Response.StatusCode);
    if (!statusCodes.length) statusCodes.push(200);
    const headers: Record<string, string> = { host, ...(req.Headers ?? {}) };
    const backendSet = Object.entries(expected.BackendSetResponseHeaders ?? {}).map(([k, v]) => `${k}:${v}`);
    headers['X-Echo-Set-Header'] = backendSet.join(',');
    await this.#consistently(async () => {
      // roundtripper.H2CPriorKnowledgeProtocol: HTTP/2 without TLS, with prior knowledge (RFC 9113 3.3)
      const h2c = String((req.Protocol as { $sym?: string } | undefined)?.$sym ?? req.Protocol ?? '').endsWith('H2CPriorKnowledgeProtocol');
      const res = h2c ? await sendH2c(local, req.Method || 'GET', req.Path || '/', headers, req.Body) : await send(local, req.Method || 'GET', req.Path || '/', headers, req.Body, tls);
      compareRoundTrip({ scheme: tls ? 'https' : 'http', path: (req.Path || '/').split('?')[0], method: req.Method || 'GET' }, res, expected, statusCodes);
    });
  }

  /**
   * http.MakeRequestAndExpectFailure (WaitForConsistentFailureResponse): the request, until it
   * consistently gets an answer that is neither a transport error nor a timeout (504); a 200 at
   * any point fails the test at once.
   */
  async #gatewayFailure(address: GatewayAddress, expected: Record<string, any>): Promise<void> {
    const local = await this.#localAddress(address);
    const req = expected.Request ?? {};
    const port = address.port ?? 80;
    const host = req.Host || (port === 80 ? '127.0.0.1' : `127.0.0.1:${port}`);
    await this.#consistently(async () => {
      const res = await send(local, req.Method || 'GET', req.Path || '/', { host, ...(req.Headers ?? {}) }, req.Body);
      if (res.status === 504) throw new StepFailure(`a timeout (504), not ready yet`);
      if (res.status === 200) throw new FatalFailure(`the request to ${host}${req.Path || '/'} should have failed, but was answered 200 OK: ${res.body.slice(0, 300)}`);
    });
  }

  /**
   * tls.MakeTLSRequestAndExpectEventuallyConsistentFailureResponse: the TLS request, until it
   * consistently fails without an answer (the gateway refused the handshake: a client
   * certificate it does not accept, or none where one is required); an answer is not yet.
   */
  async #gatewayTlsFailure(address: GatewayAddress, expected: Record<string, any>, tls: TlsClient): Promise<void> {
    // A port the gateway's proxy does not serve (its listener is not programmed) refuses the
    // connection: that is a failure too.
    const local = await this.#localAddress(address, 3000).catch(() => undefined);
    if (local === undefined) return;
    const req = expected.Request ?? {};
    const port = address.port ?? 443;
    const host = req.Host || `127.0.0.1:${port}`;
    await this.#consistently(async () => {
      const res = await send(local, req.Method || 'GET', req.Path || '/', { host, ...(req.Headers ?? {}) }, req.Body, tls).then(
        (r) => r,
        () => undefined,
      );
      if (res) throw new StepFailure(`the TLS request to ${host} should have failed, but was answered ${res.status}`);
    });
  }

  /**
   * Whether each backend of a mirror watch logged the request since the watch began: the lines
   * its replicas printed through `sinew up` (`[<replica>] Echoing back request made to <path> to
   * client (...)`; a replica is `<workload>-<n>`, or `<workload>-<n>.<namespace>`).
   */
  #mirroredTo(watch: { backends: NN[]; path: string; from: number }): void {
    const lines = this.log().slice(watch.from).split('\n');
    const missing = watch.backends.filter((b) => {
      const prefix = new RegExp(`^\\[${escapeRegExp(b.Name)}-\\d+(\\.${escapeRegExp(b.Namespace)})?\\] `);
      return !lines.some((l) => prefix.test(l) && l.includes(`Echoing back request made to ${watch.path} to client`));
    });
    if (missing.length) throw new StepFailure(`Couldn't find mirrored request to ${watch.path} in the logs of ${missing.map((b) => `${b.Namespace}/${b.Name}`).join(', ')}`);
  }

  /**
   * utils/tcp MakeTCPRequestAndExpectEventuallyValidResponse: a fresh connection (TLS with the
   * server name, trusting the certificate given, when useTLS) each attempt, until the TCP echo
   * greets, answers PING and IS_TLS, and its TEST answer names the expected backend, namespace
   * and, when given, the server name and TLS protocol the backend saw.
   */
  async #tcpEchoRequest(address: GatewayAddress, ca: string | null, serverName: string, useTls: boolean, expected: Record<string, any>): Promise<void> {
    await this.#eventually(async () => {
      // Asked each attempt: a Gateway made again gets a new proxy, on a new port.
      const [host, port] = splitAddress(await this.#localAddress(address));
      const socket: Socket = useTls
        ? connectTls({ host, port, servername: serverName, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) })
        : connectTcp({ host, port });
      try {
        const lines = lineReader(socket, 5000);
        const welcome = await lines.next();
        if (welcome !== 'Gateway API Test TCP Server') throw new StepFailure(`TCP server welcome message does not match: got ${JSON.stringify(welcome)}`);
        socket.write('PING\n');
        if ((await lines.next()) !== 'PONG') throw new StepFailure('TCP server PING response does not match');
        socket.write('IS_TLS\n');
        const isTls = await lines.next();
        if (isTls !== String(Boolean(expected.BackendIsTLS))) throw new StepFailure(`TCP server TLS response does not match: got ${JSON.stringify(isTls)}`);
        socket.write('TEST\n');
        const payload = JSON.parse(await lines.next()) as { namespace?: string; pod?: string; tls?: { serverName?: string; negotiatedProtocol?: string } };
        if (payload.namespace !== expected.Namespace) throw new StepFailure(`namespace does not match: got ${payload.namespace}, want ${expected.Namespace}`);
        if (!payload.pod?.startsWith(`${expected.Backend}-`)) throw new StepFailure(`backend name does not match with pod prefix: pod=${payload.pod} backend=${expected.Backend}`);
        if (expected.Hostname && payload.tls?.serverName !== expected.Hostname) throw new StepFailure(`TLS server name does not match: got ${payload.tls?.serverName}, want ${expected.Hostname}`);
        if (expected.TLSProtocol && payload.tls?.negotiatedProtocol !== expected.TLSProtocol) throw new StepFailure(`TLS protocol does not match: got ${payload.tls?.negotiatedProtocol}, want ${expected.TLSProtocol}`);
      } finally {
        socket.destroy();
      }
    }, Math.max(this.timeoutMs, MAX_TIME_TO_CONSISTENCY_MS));
  }

  /**
   * utils/tls MakeTLSConnectionAndExpectEventuallyConnectionRejection: a TLS handshake with the
   * server name until the gateway closes or resets the connection before it completes (EOF or
   * ECONNRESET); a completed handshake, or a certificate refused, is not a rejection.
   */
  async #expectTlsRejection(address: GatewayAddress, serverName: string): Promise<void> {
    await this.#eventually(
      async () => {
        const [host, port] = splitAddress(await this.#localAddress(address));
        await new Promise<void>((resolve, reject) => {
          const socket = connectTls({ host, port, servername: serverName, minVersion: 'TLSv1.2' });
          const timer = setTimeout(() => finish(new StepFailure('the handshake neither completed nor was rejected within 5 s')), 5000);
          const finish = (err?: Error) => {
            clearTimeout(timer);
            socket.destroy();
            if (err) reject(err);
            else resolve();
          };
          socket.once('secureConnect', () => finish(new StepFailure(`the gateway completed a TLS handshake for ${serverName}`)));
          socket.once('error', (err: NodeJS.ErrnoException) => {
            // Node tells an EOF during the handshake as ECONNRESET ("socket disconnected before secure TLS connection was established").
            if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish();
            else finish(new StepFailure(`the connection was not rejected: ${err.code ?? ''} ${err.message}`));
          });
          socket.once('close', () => finish());
        });
      },
      Math.max(this.timeoutMs, MAX_TIME_TO_CONSISTENCY_MS),
    );
  }

  /** A WebSocket to the gateway, its frames queued for Receive; closed when the attempt or the test ends. */
  async #dialWebSocket(url: string): Promise<WebSocketConnection> {
    const socket = new WebSocket(url, { handshakeTimeout: 10_000 });
    this.#sockets.add(socket);
    const frames: { data: Buffer; binary: boolean }[] = [];
    const waiting: ((f: { data: Buffer; binary: boolean } | Error) => void)[] = [];
    const deliver = (f: { data: Buffer; binary: boolean } | Error) => {
      const w = waiting.shift();
      if (w) w(f);
      else if (!(f instanceof Error)) frames.push(f);
    };
    socket.on('message', (data, binary) => deliver({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), binary }));
    socket.on('close', () => deliver(new StepFailure('the WebSocket closed')));
    await new Promise<void>((resolveOpen, reject) => {
      socket.once('open', () => resolveOpen());
      socket.once('error', (err) => reject(new StepFailure(`failed to dial ${url}: ${err.message}`)));
    });
    return {
      socket,
      next: () =>
        new Promise((resolveFrame, reject) => {
          const queued = frames.shift();
          if (queued) return resolveFrame(queued);
          const timer = setTimeout(() => reject(new StepFailure('no WebSocket frame within 10 s')), 10_000);
          waiting.push((f) => {
            clearTimeout(timer);
            if (f instanceof Error) reject(f);
            else resolveFrame(f);
          });
        }),
    };
  }

  #closeSockets(): void {
    for (const s of this.#sockets) s.terminate();
    this.#sockets.clear();
  }

  /** One request to the gateway as the suite's roundtripper makes it (no comparison). */
  async #gatewayOnce(address: GatewayAddress, expected: Record<string, any>): Promise<Captured> {
    const local = await this.#localAddress(address);
    const req = expected.Request ?? {};
    const port = address.port ?? 80;
    const host = req.Host || (port === 80 ? '127.0.0.1' : `127.0.0.1:${port}`);
    return send(local, req.Method || 'GET', req.Path || '/', { host, ...(req.Headers ?? {}) }, req.Body);
  }

  /** A mesh client's request (utils/echo MeshPod): out through its sidecar, compared as compareRequest does. */
  async #meshRequest(client: AppClient, expected: Record<string, any>): Promise<void> {
    const replica = await this.#appReplica(client.$app.namespace, client.$app.labels);
    const req = expected.Request ?? {};
    const statusCodes: number[] = [...(expected.Response?.StatusCodes ?? [])];
    if (expected.Response?.StatusCode && !statusCodes.includes(expected.Response.StatusCode)) statusCodes.push(expected.Response.StatusCode);
    if (!statusCodes.length) statusCodes.push(200);
    // utils/echo makeRequest: the host defaults to the `echo` Service
    const host = req.Host || 'echo';
    const url = `http://${host}${req.Path || '/'}`;
    await this.#consistently(async () => {
      const res = await send(replica.proxy.outbound!, req.Method || 'GET', url, { host, ...(req.Headers ?? {}) });
      compareMesh(res, expected, statusCodes);
    });
  }

  /** Eventually, the same answer several times in a row (the suite's RequiredConsecutiveSuccesses). */
  async #consistently(attempt: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    let streak = 0;
    let last: Error | undefined;
    while (streak < REQUIRED_CONSECUTIVE_SUCCESSES) {
      try {
        await attempt();
        streak++;
      } catch (err) {
        if (err instanceof FatalFailure) throw err;
        streak = 0;
        last = err as Error;
        if (Date.now() > deadline) throw new StepFailure(last.message);
        // Config still propagating: try again shortly.
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

// === one request and its comparison ===

export interface Captured {
  status: number;
  headers: Record<string, string[]>;
  body: string;
}

/**
 * The suite's client is Go's: crypto/x509 matches `*.org` against `example.org` (a wildcard
 * stands for one leftmost label, whatever follows), where node refuses a wildcard over a
 * top-level domain. The suite's certificate is `*, *.org`, so the runner checks as Go does.
 */
function goHostnameCheck(host: string, cert: { subjectaltname?: string }): Error | undefined {
  const name = host.toLowerCase().replace(/\.$/, '');
  const sans = (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
  const matches = (pattern: string) => {
    if (pattern === name) return true;
    const p = pattern.split('.');
    const n = name.split('.');
    return p[0] === '*' && p.length > 1 && p.length === n.length && p.slice(1).every((label, i) => label === n[i + 1]);
  };
  return sans.some(matches) ? undefined : new Error(`x509: certificate is valid for ${sans.join(', ')}, not ${name}`);
}

/** How a TLS request trusts the gateway and which name it asks for (SNI, and the name checked). */
export interface TlsClient {
  ca: string;
  servername: string;
  /** A client certificate and key to present. */
  cert?: string;
  key?: string;
}

export function send(address: string, method: string, path: string, headers: Record<string, string>, body?: string, tls?: TlsClient): Promise<Captured> {
  const [hostname, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolvePromise, reject) => {
    const options = { host: hostname, port, method, path, headers, agent: false, timeout: 10_000 };
    const onResponse = (res: import('node:http').IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const h: Record<string, string[]> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) (h[res.rawHeaders[i].toLowerCase()] ??= []).push(res.rawHeaders[i + 1]);
        resolvePromise({ status: res.statusCode ?? 0, headers: h, body: text });
      });
    };
    const req = tls
      ? httpsRequest({ ...options, ca: tls.ca, servername: tls.servername, checkServerIdentity: goHostnameCheck, ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}) }, onResponse)
      : httpRequest(options, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${address} within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A request over HTTP/2 with prior knowledge (h2c): the client starts with the HTTP/2 preface. */
export function sendH2c(address: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Captured> {
  return new Promise((resolvePromise, reject) => {
    const session = connectHttp2(`http://${address}`);
    const done = (err?: Error, captured?: Captured) => {
      session.close();
      if (err) reject(err);
      else resolvePromise(captured!);
    };
    session.on('error', (err) => done(err));
    session.setTimeout(10_000, () => session.destroy(new Error(`no answer from ${address} within 10 s`)));
    // HTTP/2 has :authority instead of Host (RFC 9113 8.3.1)
    const { host, ...rest } = headers;
    const stream = session.request({ ':method': method, ':path': path, ':authority': host ?? address, ':scheme': 'http', ...rest });
    let text = '';
    let status = 0;
    const h: Record<string, string[]> = {};
    stream.on('response', (head) => {
      status = Number(head[':status']);
      for (const [k, v] of Object.entries(head)) if (!k.startsWith(':') && v !== undefined) h[k] = Array.isArray(v) ? v : [String(v)];
    });
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => done(undefined, { status, headers: h, body: text }));
    stream.on('error', (err) => done(err));
    stream.end(body);
  });
}

interface EchoRequest {
  /** echo-basic's TLS of the connection it was reached over (HTTPS backends). */
  tls?: { serverName?: string; peerCertificates?: string[] };
  path: string;
  host: string;
  method: string;
  headers: Record<string, string[]>;
  namespace: string;
  pod: string;
}

/** The status codes an expectation accepts (Response.StatusCodes and StatusCode; 200 when neither). */
function statusCodesOf(expected: Record<string, any>): number[] {
  const codes: number[] = [...(expected.Response?.StatusCodes ?? [])];
  if (expected.Response?.StatusCode && !codes.includes(expected.Response.StatusCode)) codes.push(expected.Response.StatusCode);
  return codes.length ? codes : [200];
}

/** utils/http CompareRoundTrip, for an echo-basic backend. */
export function compareRoundTrip(request: { scheme: string; path: string; method: string }, res: Captured, expected: Record<string, any>, statusCodes: number[]): void {
  if (!statusCodes.includes(res.status)) throw new StepFailure(`expected status code to be one of ${JSON.stringify(statusCodes)}, got ${res.status} (${res.body.slice(0, 200)})`);
  const respHeaders = res.headers;
  if (res.status === 200 || res.status === 204) {
    // The suite's roundtripper reads the echo only from a JSON answer; from any other (a
    // preflight the proxy answers itself) it captures only the method it sent.
    let echo: EchoRequest = { path: '', host: '', method: request.method, headers: {}, namespace: '', pod: '' };
    if ((res.headers['content-type']?.[0] ?? '').startsWith('application/json')) {
      try {
        echo = JSON.parse(res.body) as EchoRequest;
      } catch {
        throw new StepFailure(`the answer says it is JSON but is not: ${res.body.slice(0, 200)}`);
      }
    }
    const want = expectedRequest(expected);
    const method = want.Method || 'GET';
    if (want.Host && want.Host !== echo.host) throw new StepFailure(`expected host to be ${want.Host}, got ${echo.host}`);
    if ((want.Path ?? '') !== echo.path) throw new StepFailure(`expected path to be ${want.Path}, got ${echo.path}`);
    if (method !== echo.method) throw new StepFailure(`expected method to be ${method}, got ${echo.method}`);
    if ((expected.Namespace ?? '') !== echo.namespace) throw new StepFailure(`expected namespace to be ${expected.Namespace}, got ${echo.namespace}`);
    const reqHeaders = lower(echo.headers);
    for (const [name, value] of Object.entries((want.Headers ?? {}) as Record<string, string>)) {
      const actual = reqHeaders[name.toLowerCase()];
      if (!actual) throw new StepFailure(`expected ${name} header to be set, actual headers: ${JSON.stringify(echo.headers)}`);
      if (actual.join(',') !== value) throw new StepFailure(`expected ${name} header to be set to ${value}, got ${actual.join(',')}`);
    }
    for (const [name, values] of Object.entries((expected.Response?.ValidHeaderValues ?? {}) as Record<string, string[]>)) {
      const actual = respHeaders[name.toLowerCase()];
      if (!actual) throw new StepFailure(`expected ${name} header to be set`);
      const ws = (s: string) => (expected.Response?.IgnoreWhitespace ? s.replace(/ /g, '') : s);
      if (!values.map(ws).includes(ws(actual.join(',')))) throw new StepFailure(`expected ${name} header to be one of ${JSON.stringify(values)}, got ${actual.join(',')}`);
    }
    for (const [name, value] of Object.entries((expected.Response?.Headers ?? {}) as Record<string, string>)) {
      const actual = respHeaders[name.toLowerCase()];
      if (!actual) throw new StepFailure(`expected ${name} header to be set, actual headers: ${JSON.stringify(respHeaders)}`);
      const ws = (s: string) => (expected.Response?.IgnoreWhitespace ? s.replace(/ /g, '') : s);
      if (ws(actual.join(',')) !== ws(value)) throw new StepFailure(`expected ${name} header to be set to ${value}, got ${actual.join(',')}`);
    }
    for (const name of (expected.Response?.AbsentHeaders ?? []) as string[]) if (respHeaders[name.toLowerCase()]) throw new StepFailure(`expected ${name} header to not be set, got ${respHeaders[name.toLowerCase()]}`);
    for (const name of (want.AbsentHeaders ?? []) as string[]) if (reqHeaders[name.toLowerCase()]) throw new StepFailure(`expected ${name} request header to not be set, got ${reqHeaders[name.toLowerCase()]}`);
    if (!echo.pod.startsWith(expected.Backend ?? '')) throw new StepFailure(`expected pod name to start with ${expected.Backend}, got ${echo.pod}`);
    // the SNI the backend was reached with (a gateway originating TLS to it: BackendTLSPolicy)
    if (want.SNI && want.SNI !== echo.tls?.serverName) throw new StepFailure(`expected SNI ${JSON.stringify(echo.tls?.serverName ?? '(no TLS)')} to be equal to ${JSON.stringify(want.SNI)}`);
  } else if (res.status >= 300 && res.status < 400 && expected.RedirectRequest) {
    const location = respHeaders.location?.[0];
    if (!location) throw new StepFailure(`a ${res.status} without Location`);
    const u = new URL(location, `${request.scheme}://placeholder`);
    const got = { Scheme: u.protocol.replace(':', ''), Host: u.hostname, Port: u.port, Path: u.pathname };
    const want = { ...expected.RedirectRequest } as Record<string, string>;
    want.Host ||= got.Host;
    want.Scheme ||= request.scheme;
    want.Path ||= request.path;
    if (want.Host !== got.Host) throw new StepFailure(`expected redirected hostname to be ${want.Host}, got ${got.Host}`);
    if (!want.Port) {
      if (got.Scheme === 'http' && got.Port && got.Port !== '80') throw new StepFailure(`for http scheme, expected redirected port to be 80 or not set, got ${got.Port}`);
      if (got.Scheme === 'https' && got.Port && got.Port !== '443') throw new StepFailure(`for https scheme, expected redirected port to be 443 or not set, got ${got.Port}`);
    } else if (String(want.Port) !== got.Port) throw new StepFailure(`expected redirected port to be ${want.Port}, got ${got.Port || '(none)'}`);
    if (want.Scheme !== got.Scheme) throw new StepFailure(`expected redirected scheme to be ${want.Scheme}, got ${got.Scheme}`);
    if (want.Path !== got.Path) throw new StepFailure(`expected redirected path to be ${want.Path}, got ${got.Path}`);
  }
}

/** utils/echo compareRequest, for Istio echo's text answer. */
export function compareMesh(res: Captured, expected: Record<string, any>, statusCodes: number[]): void {
  if (!statusCodes.includes(res.status)) throw new StepFailure(`wanted status code to be one of ${JSON.stringify(statusCodes)}, got ${res.status} (${res.body.slice(0, 200)})`);
  const fields: Record<string, string[]> = {};
  for (const line of res.body.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) (fields[line.slice(0, i)] ??= []).push(line.slice(i + 1));
  }
  const reqHeaders: Record<string, string[]> = {};
  for (const h of fields.RequestHeader ?? []) {
    const i = h.indexOf(':');
    (reqHeaders[h.slice(0, i).toLowerCase()] ??= []).push(h.slice(i + 1));
  }
  const want = expected.ExpectedRequest ? expectedRequest(expected) : {};
  for (const [name, value] of Object.entries((want.Headers ?? {}) as Record<string, string>)) {
    const actual = reqHeaders[name.toLowerCase()];
    if (!actual) throw new StepFailure(`expected ${name} header to be set, actual headers: ${JSON.stringify(reqHeaders)}`);
    if (actual.join(',') !== value) throw new StepFailure(`expected ${name} header to be set to ${value}, got ${actual.join(',')}`);
  }
  for (const name of (want.AbsentHeaders ?? []) as string[]) if (reqHeaders[name.toLowerCase()]) throw new StepFailure(`expected ${name} header to not be set, got ${reqHeaders[name.toLowerCase()]}`);
  for (const name of (expected.Response?.AbsentHeaders ?? []) as string[]) if (res.headers[name.toLowerCase()]) throw new StepFailure(`expected no header ${name}, got ${res.headers[name.toLowerCase()]}`);
  for (const [name, value] of Object.entries((expected.Response?.Headers ?? {}) as Record<string, string>)) {
    const got = res.headers[name.toLowerCase()]?.[0] ?? '';
    if (got !== value) throw new StepFailure(`expected header ${name}=${value}, got ${got}`);
  }
  const hostname = fields.Hostname?.[0] ?? '';
  if (!hostname.startsWith(expected.Backend ?? '')) throw new StepFailure(`expected pod name to start with ${expected.Backend}, got ${hostname || '(no echo)'}`);
}

/**
 * What the backend must see: ExpectedRequest, whose `Request` is an embedded struct in Go (its
 * fields are ExpectedRequest's own), or the request sent when the test gives none.
 */
function expectedRequest(expected: Record<string, any>): Record<string, any> {
  const er = expected.ExpectedRequest as Record<string, any> | undefined | null;
  if (!er) return { ...(expected.Request ?? {}) };
  const { Request: embedded, ...rest } = er;
  return { ...(embedded ?? {}), ...rest };
}

/**
 * A Go field of a Kubernetes object as the API gives it: ObjectMeta's fields are embedded
 * (`Generation` is `metadata.generation`), the others are the JSON names (`Spec.Rules` is
 * `spec.rules`).
 */
const OBJECT_META = new Set(['Name', 'Namespace', 'Generation', 'Labels', 'Annotations', 'UID', 'ResourceVersion', 'CreationTimestamp']);
function jsonName(field: string): string {
  // a leading initialism is lower-cased whole, as the API's JSON tags write it: UID -> uid,
  // CACertificateRefs -> caCertificateRefs, Spec -> spec
  const m = /^[A-Z]+(?=[A-Z][a-z]|[^A-Za-z]|$)/.exec(field);
  const head = m && m[0].length > 1 ? m[0] : field[0];
  return head.toLowerCase() + field.slice(head.length);
}
/** `host:port` (the host may be an IPv6 literal in brackets) as connect takes them. */
function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[|\]$/g, ''), Number(address.slice(colon + 1))];
}

/** The lines a socket receives, one per call, each within `timeoutMs` (the connection's end is an error). */
function lineReader(socket: Socket, timeoutMs: number): { next(): Promise<string> } {
  let buffered = '';
  let ended: Error | undefined;
  const waiting: (() => void)[] = [];
  const wake = () => waiting.splice(0).forEach((w) => w());
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    wake();
  });
  socket.on('error', (err) => {
    ended = err;
    wake();
  });
  socket.on('close', () => {
    ended ??= new StepFailure('the connection closed');
    wake();
  });
  return {
    next: () =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new StepFailure(`no line within ${timeoutMs} ms (got ${JSON.stringify(buffered)})`)), timeoutMs);
        const attempt = () => {
          const i = buffered.indexOf('\n');
          if (i >= 0) {
            clearTimeout(timer);
            const line = buffered.slice(0, i);
            buffered = buffered.slice(i + 1);
            resolve(line);
          } else if (ended) {
            clearTimeout(timer);
            reject(ended);
          } else waiting.push(attempt);
        };
        attempt();
      }),
  };
}

function goField(at: unknown, field: string | number): unknown {
  if (at === undefined || at === null) return undefined;
  if (typeof field === 'number') return (at as unknown[])[field];
  const obj = at as Record<string, unknown>;
  // a map's key (an echoed request's Headers["Backend"]) is as written
  if (Object.hasOwn(obj, field)) return obj[field];
  if (OBJECT_META.has(field) && obj.metadata && typeof obj.metadata === 'object') return (obj.metadata as Record<string, unknown>)[jsonName(field)];
  return obj[jsonName(field)];
}
function setGoField(target: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let at: any = target;
  for (let i = 0; i < path.length - 1; i++) {
    const part = path[i];
    const key = typeof part === 'number' ? part : OBJECT_META.has(part) && at.metadata ? null : jsonName(part);
    if (key === null) {
      at = at.metadata;
      continue;
    }
    at[key] ??= typeof path[i + 1] === 'number' ? [] : {};
    at = at[key];
  }
  const last = path[path.length - 1];
  if (typeof last === 'number') at[last] = value;
  else if (OBJECT_META.has(last) && at.metadata) at.metadata[jsonName(last)] = value;
  else at[jsonName(last)] = value;
}
/** A Go value the test built (`v1.Listener{Name: ..., AllowedRoutes: ...}`) as Kubernetes JSON. */
function toKubernetes(v: Value): Value {
  if (Array.isArray(v)) return v.map(toKubernetes);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, Value> = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[jsonName(k)] = toKubernetes(x);
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The apiVersion of the Go API packages a test builds objects from. */
const API_VERSIONS: Record<string, string> = { corev1: 'v1', gatewayv1: 'gateway.networking.k8s.io/v1', v1: 'gateway.networking.k8s.io/v1', v1beta1: 'gateway.networking.k8s.io/v1beta1' };

/** An object a test built in Go (`&corev1.ConfigMap{ObjectMeta: ..., Data: ...}`) as the manifest the API takes. */
function kubernetesObject(o: Record<string, any>): Record<string, unknown> {
  const [pkg, kind] = String(o.$type ?? '').split('.');
  const apiVersion = API_VERSIONS[pkg];
  if (!apiVersion || !kind) throw new Unsupported(`applying an object of type ${String(o.$type)}`);
  const { ObjectMeta, ...rest } = o;
  // a map's keys (a ConfigMap's Data) are as written; the struct fields around them are JSON names
  const content = Object.fromEntries(Object.entries(rest).filter(([k]) => !k.startsWith('$')).map(([k, v]) => [jsonName(k), k === 'Data' || k === 'StringData' ? v : toKubernetes(v as Value)]));
  return { apiVersion, kind, metadata: toKubernetes((ObjectMeta ?? {}) as Value), ...content };
}

/** A value as Go's encoding/json writes it with omitempty: nil fields left out. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, withoutNulls(x)]));
}

function lower(headers: Record<string, string[]> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}

