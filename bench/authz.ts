/**
 * What authorization and JWT validation cost a proxy per request (issue 18: "the proxy
 * benchmark with a 10-rule ALLOW policy and JWT validation on, against the same proxy without
 * them, paired in one run: at most 10% more CPU per request").
 *
 * Two proxies of this build, each in its own process with an inbound listener in front of the
 * same upstream, measured PAIRED (bench/paired.ts: at the same time on core 1, each under its
 * own wrk, started together; the figure of each round is the ratio B/A):
 *
 *   A  no security filters
 *   B  jwt_authn (RS256 token, the JWKS inline) and rbac with a 10-rule ALLOW policy whose
 *      last rule is the one the request matches (every rule is evaluated), compiled from
 *      RequestAuthentication and AuthorizationPolicy by the compiler
 *
 * Both get the same request, token included. Fixed-rate at 1000 req/s each by default (the
 * target's load; --mode saturated|both for closed-loop too).
 *
 * --route-again measures what routing on JWT claims adds at a gateway (istio.io jwt-route):
 * A is B above, and B the same with jwt_authn's clearRouteCache on (the compiler's setting at
 * gateways), so that each verified token has the route chosen again and the filters after
 * jwt_authn made again. Both route tables start with a route on `groups` (which the token's
 * claims do not satisfy) before the catch-all, as the jwt-route task's VirtualService does.
 *
 *   npm run bench -- authz [--duration 5] [--rounds 6] [--mode fixed-rate|saturated|both] [--rate 1000] [--route-again]
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { ProxyConfig } from '../src/api/proxy-config.js';
import type { Resource } from '../src/api/resources/meta.js';
import { compileAuthorization } from '../src/compiler/authz.js';
import { compileJwtAuthn } from '../src/compiler/jwt.js';
import { DEFAULT_HTTP_FILTERS, HTTP_FILTERS } from '../src/api/proxy-config.js';
import { PROXY_NODE_FLAGS } from '../src/mesh/up.js';
import { LOAD_CPU, UPSTREAM_SCRIPT, PROXY_CPU, PairedLoad, detailLine, startPinned, summarize, verdictLine, type LoadTarget, type PairedMode, type PairedSummary } from './paired.js';

const repo = resolve(import.meta.dirname, '..');
const ISSUER = 'bench@sinew';
const AUTHZ_TARGET = { maxCpuRatio: 1.1, text: '<=10% more CPU/request' };

export interface AuthzBenchOptions {
  durationS: number;
  json: boolean;
  rounds?: number;
  /** Default: fixed-rate only. */
  modes?: PairedMode[];
  /** Fixed-rate requests/s for each side (default 1000). */
  rate?: number;
  /** A: jwt_authn + rbac; B: the same choosing the route again after the token (see above). */
  routeAgain?: boolean;
}

export interface AuthzBenchResult {
  mode: PairedMode;
  rate?: number;
  /** Median B/A CPU per request. */
  cpuRatio: number;
  met: boolean;
  summary: PairedSummary;
}

/** The security part of B's listener, as the compiler makes it, and a token it accepts. */
async function security(): Promise<{ filters: { name: string; config: unknown }[]; token: string }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256' };
  const token = await new SignJWT({ iss: ISSUER, sub: 'user', groups: ['g9'] }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setExpirationTime('2h').sign(privateKey);
  // Ten rules; the request matches the last, so every one is evaluated.
  const rules = Array.from({ length: 10 }, (_, i) => ({ from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }], to: [{ operation: { methods: ['GET'], paths: [`/api/v${i}/*`] } }] }));
  const meta = { namespace: 'bench', creationTimestamp: '2026-01-01T00:00:00Z' };
  const policy = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ten', ...meta }, spec: { action: 'ALLOW', rules } } as unknown as Resource;
  const authn = { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', ...meta }, spec: { jwtRules: [{ issuer: ISSUER, jwks: JSON.stringify({ keys: [jwk] }), forwardOriginalToken: true }] } } as unknown as Resource;
  const rbac = compileAuthorization([policy as never], [], { revision: 0, services: [] }).rbac!;
  const jwt = compileJwtAuthn([authn as never])!;
  return { filters: [{ name: HTTP_FILTERS.jwtAuthn, config: jwt }, { name: HTTP_FILTERS.rbac, config: rbac }], token };
}

function config(upstreamPort: number, filters: { name: string; config: unknown }[]): ProxyConfig {
  const cluster = 'inbound|9080||';
  const chain = filters.length === 0 ? undefined : [...DEFAULT_HTTP_FILTERS.slice(0, 2), ...filters, ...DEFAULT_HTTP_FILTERS.slice(2)];
  return {
    version: 'bench',
    node: { id: 'sidecar~api-v1-0.bench', mode: 'sidecar', workload: 'api-v1', namespace: 'bench', labels: { app: 'api' } },
    listeners: [{ name: 'bench', address: { host: '127.0.0.1', port: 0 }, direction: 'inbound', protocol: 'http', http: { routeConfigName: 'bench', streamIdleTimeoutMs: 300_000, ...(chain ? { filters: chain } : {}) } }],
    routeConfigs: [{ name: 'bench', virtualHosts: [{ name: 'all', domains: ['*'], routes: [
      { name: 'bench/group1', match: { path: { prefix: '/api' }, claims: [{ path: ['groups'], match: { exact: 'group1' } }] }, action: { kind: 'route', destinations: [{ cluster, weight: 1 }] } },
      { name: 'bench/all', match: {}, action: { kind: 'route', destinations: [{ cluster, weight: 1 }] } },
    ] }] }],
    clusters: [{ name: cluster, kind: 'eds', service: { host: 'api.bench.svc.cluster.local', port: 9080 }, protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' } }],
    endpoints: [{ clusterName: cluster, endpoints: [{ address: { host: '127.0.0.1', port: upstreamPort }, labels: {}, health: 'HEALTHY' }] }],
  };
}

const RUNNER = (repoDir: string) => `
import { existsSync, readFileSync } from 'node:fs';
const built = ${JSON.stringify(join(repoDir, 'dist/src/proxy/proxy.js'))};
let createProxy;
if (existsSync(built) && process.env.SINEW_FROM_SOURCE !== '1') ({ createProxy } = await import(built));
else {
  const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))});
  register();
  ({ createProxy } = await import(${JSON.stringify(pathToFileURL(join(repoDir, 'src/proxy/proxy.ts')).href)}));
}
const proxy = createProxy({ config: JSON.parse(readFileSync(process.argv[2], 'utf8')), telemetry: false });
await proxy.start();
console.log('listening ' + proxy.listenerAddresses().bench.port);
process.stdin.resume();
process.stdin.on('end', async () => { await proxy.close({ drainMs: 0 }); process.exit(0); });
`;

const benchEnv = { ...process.env, SINEW_LOG_LEVEL: 'warn' };
const start = (children: ChildProcess[], cpu: string, args: string[]) => startPinned(children, cpu, args, benchEnv);

export async function runAuthzBench(options: AuthzBenchOptions): Promise<AuthzBenchResult[]> {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: apt-get install wrk');
  const rounds = options.rounds ?? 6;
  const modes = options.modes ?? ['fixed-rate'];
  const rate = options.rate ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-authz-'));
  const load = new PairedLoad();
  const children: ChildProcess[] = [];
  const log = (line: string) => options.json || process.stderr.write(line + '\n');
  try {
    const { filters, token } = await security();
    const upstream = start(children, LOAD_CPU, ['-e', UPSTREAM_SCRIPT]);
    const upstreamPort = await upstream.port;
    const runner = join(dir, 'runner.mjs');
    writeFileSync(runner, RUNNER(repo));
    const side = async (name: string, list: { name: string; config: unknown }[]): Promise<LoadTarget> => {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(config(upstreamPort, list)));
      const proxy = start(children, PROXY_CPU, [...PROXY_NODE_FLAGS, runner, file]);
      // The same request to both: the token is read (and ignored) by A too.
      return { name, url: `http://127.0.0.1:${await proxy.port}/api/v9/items?x=1`, pids: [proxy.child.pid!], request: `wrk.headers["Authorization"] = "Bearer ${token}"` };
    };
    const names = options.routeAgain ? (['jwt+rbac', 'jwt+rbac+route-again'] as const) : (['plain', 'jwt+rbac'] as const);
    const routingAgain = filters.map((f) => (f.name === HTTP_FILTERS.jwtAuthn ? { ...f, config: { ...(f.config as object), clearRouteCache: true } } : f));
    const a = await side(names[0], options.routeAgain ? filters : []);
    const b = await side(names[1], options.routeAgain ? routingAgain : filters);
    const label = options.routeAgain ? 'jwt_authn + 10-rule ALLOW vs the same choosing the route again after the token' : 'no policy vs jwt_authn + 10-rule ALLOW';
    const measured = await load.measurePair(a, b, { label, rounds, modes, durationS: options.durationS, rate, log });
    return modes.map((mode) => {
      const summary = summarize(names[0], names[1], mode, options.durationS, measured.runs.get(mode)!, measured.rate);
      return { mode, ...(mode === 'fixed-rate' ? { rate: measured.rate } : {}), cpuRatio: summary.cpuRatio.median, met: summary.cpuRatio.median <= AUTHZ_TARGET.maxCpuRatio, summary };
    });
  } finally {
    load.close();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

export function reportAuthz(results: AuthzBenchResult[]): string {
  const lines = results.flatMap((r) => [verdictLine(`${r.mode}${r.rate ? ` ${r.rate}/s` : ''}`, r.summary, AUTHZ_TARGET), '  ' + detailLine(r.mode, r.summary)]);
  return lines.join('\n') + '\n';
}
