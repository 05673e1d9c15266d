/**
 * Cost of authorization and JWT validation per request (issue 18: "a 10-rule ALLOW policy and
 * JWT validation on ... at most 10% more CPU per request").
 *
 * Until the connection manager runs the security filters, the paired proxy A/B of that target
 * cannot be taken; this measures what the filters add, in-process (the filters exactly as the
 * proxy will build them from compiled config: jwt_authn with an RS256 token and an inline
 * JWKS, rbac with a 10-rule ALLOW policy), as CPU microseconds per request, and in the same
 * run one sinew proxy's CPU per request under wrk (bench/proxy.ts), and reports the ratio.
 *
 *   npm run bench -- authz [--duration 5]
 */
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { compileHttpFilters, decodeHeadersThrough, securityFilterFactories } from '../src/proxy/http/filters/security-chain.js';
import type { HttpFilter, HttpFilterContext } from '../src/proxy/http/filters/contract.js';
import { compileAuthorization } from '../src/compiler/authz.js';
import type { Resource } from '../src/api/resources/meta.js';
import { measureOneProxy } from './proxy.js';

export interface AuthzBenchResult {
  name: string;
  usPerRequest: number;
}

const ISSUER = 'bench@sinew';

async function filters(): Promise<Record<string, HttpFilter[]>> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256' };
  const token = await new SignJWT({ iss: ISSUER, sub: 'user', groups: ['g9'] }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setExpirationTime('2h').sign(privateKey);
  // Ten rules; the request matches the last, so every one is evaluated.
  const rules = Array.from({ length: 10 }, (_, i) => ({ from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }], to: [{ operation: { methods: ['GET'], paths: [`/api/v${i}/*`] } }] }));
  const policy = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ten', namespace: 'bench' }, spec: { action: 'ALLOW', rules } } as unknown as Resource;
  const rbac = compileAuthorization([policy as never], [], { revision: 0, services: [] }).rbac!;
  const jwt = { providers: [{ issuer: ISSUER, jwks: JSON.stringify({ keys: [jwk] }), fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }], fromParams: [], fromCookies: [], forwardOriginalToken: true }] };
  const factories = securityFilterFactories({ jwt: { fetchJwks: () => Promise.reject(new Error('inline')), now: Date.now }, extAuthz: { check: () => Promise.reject(new Error('unused')) } });
  const build = (list: { name: string; config: Record<string, unknown> }[]) => compileHttpFilters(list, factories);
  (globalThis as { benchToken?: string }).benchToken = token;
  return {
    'rbac (10 rules)': build([{ name: 'sinew.filters.http.rbac', config: rbac }]),
    'jwt_authn (RS256)': build([{ name: 'sinew.filters.http.jwt_authn', config: jwt }]),
    'jwt_authn + rbac': build([{ name: 'sinew.filters.http.jwt_authn', config: jwt }, { name: 'sinew.filters.http.rbac', config: rbac }]),
  };
}

/** A request as the connection manager would hand it over; `authenticated`: as the JWT filter leaves it (for rbac alone). */
function context(token: string, authenticated: boolean): HttpFilterContext {
  const headers = new Map([['authorization', `Bearer ${token}`], ['host', 'api.bench'], ['user-agent', 'wrk']]);
  return {
    attributes: { method: 'GET', path: '/api/v9/items?x=1', host: 'api.bench', headers: Object.fromEntries(headers), sourceIp: '127.0.0.1', destinationPort: 8080, ...(authenticated ? { auth: { principal: `${ISSUER}/user`, audiences: [], claims: { iss: ISSUER, sub: 'user' } } } : {}) },
    requestHeaders: { get: (n) => headers.get(n), set: (n, v) => void headers.set(n, v), remove: (n) => void headers.delete(n), entries: () => headers.entries() },
    addResponseHeader: () => {},
    setMetadata: () => {},
    signal: new AbortController().signal,
  };
}

export async function runAuthzBench(options: { durationS: number; json: boolean }): Promise<AuthzBenchResult[]> {
  const chains = await filters();
  const token = (globalThis as { benchToken?: string }).benchToken!;
  const out: AuthzBenchResult[] = [];
  for (const [name, chain] of Object.entries({ 'no filters (the harness)': [], ...chains })) {
    // One request context, reused: the harness should cost nothing beside the filters.
    const jwt = name.includes('jwt');
    const ctx = context(token, !jwt);
    const check = (status: Awaited<ReturnType<typeof decodeHeadersThrough>>) => {
      if (status !== 'continue') throw new Error(`${name}: the request was refused (${status.stop.details})`);
    };
    // As the connection manager will: a filter that answers at once is not waited for.
    const once = (): void | Promise<void> => {
      if (jwt) ctx.attributes.auth = undefined; // not `delete`: that would turn the object into a slow dictionary
      const status = decodeHeadersThrough(chain, ctx);
      return status instanceof Promise ? status.then(check) : check(status);
    };
    const run = async (n: number): Promise<number> => {
      const before = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        const pending = once();
        if (pending) await pending;
      }
      const used = process.cpuUsage(before);
      return (used.user + used.system) / n;
    };
    await run(20_000); // warm-up (JIT tiers)
    // The median of 7 rounds: on a shared machine one round can be slowed by anything.
    const rounds: number[] = [];
    for (let r = 0; r < 7; r++) rounds.push(await run(20_000));
    rounds.sort((a, b) => a - b);
    out.push({ name, usPerRequest: rounds[3] });
  }
  const proxy = await measureOneProxy({ durationS: options.durationS, json: options.json });
  out.push({ name: 'reference: one sinew proxy', usPerRequest: (proxy.cpuSecondsPer10k ?? NaN) * 100 });
  return out;
}

export function reportAuthz(results: AuthzBenchResult[]): string {
  const proxy = results.find((r) => r.name.startsWith('reference'))!.usPerRequest;
  const lines = results.map((r) => `${r.name.padEnd(28)} ${r.usPerRequest.toFixed(1).padStart(8)} us/request${r === results.at(-1) ? '' : `   ${((r.usPerRequest / proxy) * 100).toFixed(1).padStart(5)} % of the proxy's`}`);
  return lines.join('\n') + '\n(target: jwt_authn + rbac at most 10 % of the proxy\'s CPU per request)\n';
}
