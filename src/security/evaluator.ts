/**
 * The authorization decision (DESIGN behaviour 8, Istio's "Authorization policy precedence"):
 * CUSTOM first (the ext_authz filter, which uses `compilePolicies` to decide whether to call
 * its authorizer), then DENY, then ALLOW: a request is denied when a DENY policy matches; else
 * allowed when no ALLOW policy applies to the workload, or when one matches; else denied. AUDIT
 * policies never decide, they mark the request. Dry-run policies (`istio.io/dry-run`) are
 * evaluated the same way on the side (Envoy's shadow rules) and only reported.
 *
 * `compileAuthorization` turns the JSON config into closures once; `authorize` is then a
 * walk over them with no allocation beyond the result.
 */
import { claimValues, namespaceOf, principalOf, type RequestAttributes } from './attributes.js';
import { compileMatcher, type CompiledMatcher } from './match.js';
import type { AuthorizationConfig, Clause, CompiledPolicy, CompiledRule } from './policy.js';

/**
 * What predicates read: the request's attributes, and values derived from them once per
 * decision rather than once per clause (the path without its query).
 */
interface Request {
  readonly a: RequestAttributes;
  readonly path: string | undefined;
}

type Predicate = (request: Request) => boolean;

function prepare(a: RequestAttributes): Request {
  return { a, path: a.path === undefined ? undefined : pathOnly(a.path) };
}

export interface CompiledAuthorizationPolicy {
  readonly name: string;
  readonly action: CompiledPolicy['action'];
  readonly dryRun: boolean;
  matches(attributes: RequestAttributes): boolean;
}

export interface AuthorizationDecision {
  allowed: boolean;
  /** The DENY policy that matched, or the ALLOW policy that did; absent when none did. */
  policy?: string;
  /** Why, for the access log: `rbac_access_denied_matched_policy[...]`, `...[none]`, or `allowed`. */
  reason: string;
  /** The AUDIT policies that matched. */
  audited: string[];
  /** The outcome of the dry-run policies alone, when there are any. */
  shadow?: { allowed: boolean; policy?: string };
}

export interface Authorizer {
  readonly policies: readonly CompiledAuthorizationPolicy[];
  authorize(attributes: RequestAttributes): AuthorizationDecision;
}

/** Compiles a config into an authorizer. Throws (once, at config time) for a matcher that cannot compile. */
export function compileAuthorization(config: AuthorizationConfig): Authorizer {
  const policies = compileInternal(config.policies);
  const enforced = policies.filter((p) => !p.dryRun);
  const dryRun = policies.filter((p) => p.dryRun);
  const audit = enforced.filter((p) => p.action === 'AUDIT');
  return {
    policies,
    authorize(attributes) {
      const request = prepare(attributes);
      const result = decide(enforced, request) as AuthorizationDecision;
      result.audited = [];
      for (const p of audit) if (p.rule(request)) result.audited.push(p.name);
      if (dryRun.length > 0) {
        const shadow = decide(dryRun, request);
        result.shadow = { allowed: shadow.allowed, ...(shadow.policy ? { policy: shadow.policy } : {}) };
      }
      return result;
    },
  };
}

function decide(policies: readonly InternalPolicy[], request: Request): { allowed: boolean; policy?: string; reason: string } {
  for (const p of policies) {
    if (p.action === 'DENY' && p.rule(request)) return { allowed: false, policy: p.name, reason: `rbac_access_denied_matched_policy[${p.name}]` };
  }
  let anyAllow = false;
  for (const p of policies) {
    if (p.action !== 'ALLOW') continue;
    anyAllow = true;
    if (p.rule(request)) return { allowed: true, policy: p.name, reason: 'allowed' };
  }
  if (anyAllow) return { allowed: false, reason: 'rbac_access_denied_matched_policy[none]' };
  return { allowed: true, reason: 'allowed' };
}

interface InternalPolicy extends CompiledAuthorizationPolicy {
  /** The policy's rules over a prepared request. */
  readonly rule: Predicate;
}

/** Compiles policies of any action into predicates (the ext_authz filter uses it for CUSTOM). */
export function compilePolicies(policies: readonly CompiledPolicy[]): CompiledAuthorizationPolicy[] {
  return compileInternal(policies);
}

function compileInternal(policies: readonly CompiledPolicy[]): InternalPolicy[] {
  return policies.map((p) => {
    const rule = anyOf(p.rules.map(compileRule));
    return Object.freeze({ name: p.name, action: p.action, dryRun: p.dryRun === true, rule, matches: (a: RequestAttributes) => rule(prepare(a)) });
  });
}

const always: Predicate = () => true;

function anyOf(predicates: readonly Predicate[]): Predicate {
  if (predicates.length === 1) return predicates[0];
  return (r) => {
    for (const p of predicates) if (p(r)) return true;
    return false;
  };
}

/**
 * Clauses are pure, so their order is free: the ones that tell requests apart most (paths,
 * hosts, headers) go first, so that a rule that does not match fails at its first test.
 */
const SELECTIVITY: Record<Clause['attribute'], number> = {
  'request.path': 0,
  'request.host': 1,
  'request.headers': 2,
  'destination.port': 3,
  'request.method': 4,
  'request.auth.claims': 5,
  'request.auth.principal': 6,
  'request.auth.audiences': 6,
  'request.auth.presenter': 6,
  'source.principal': 7,
  'source.namespace': 7,
  'source.ip': 8,
  'remote.ip': 8,
  'destination.ip': 8,
  'connection.sni': 8,
};

function allOf(clauses: readonly Clause[]): Predicate {
  const compiled = [...clauses].sort((x, y) => SELECTIVITY[x.attribute] - SELECTIVITY[y.attribute]).map(compileClause);
  if (compiled.length === 0) return always;
  if (compiled.length === 1) return compiled[0];
  return (r) => {
    for (const c of compiled) if (!c(r)) return false;
    return true;
  };
}

function compileRule(rule: CompiledRule): Predicate {
  const from = rule.from?.length ? anyOf(rule.from.map(allOf)) : always;
  const to = rule.to?.length ? anyOf(rule.to.map(allOf)) : always;
  const when = rule.when?.length ? allOf(rule.when) : always;
  // Operations first: they are what most rules of a policy differ in.
  return (r) => to(r) && when(r) && from(r);
}

function compileClause(clause: Clause): Predicate {
  const read = reader(clause);
  const values = clause.values?.map(compileMatcher);
  const notValues = clause.notValues?.map(compileMatcher);
  return (r) => {
    const seen = read(r);
    if (values && !anyMatch(values, seen)) return false;
    if (notValues && anyMatch(notValues, seen)) return false;
    return true;
  };
}

function anyMatch(matchers: readonly CompiledMatcher[], seen: string | readonly string[] | undefined): boolean {
  if (seen === undefined) return false;
  if (typeof seen === 'string') {
    for (const m of matchers) if (m(seen)) return true;
    return false;
  }
  for (const v of seen) for (const m of matchers) if (m(v)) return true;
  return false;
}

/** The request's value(s) for a clause's attribute; undefined when it has none. */
function reader(clause: Clause): (r: Request) => string | readonly string[] | undefined {
  switch (clause.attribute) {
    case 'source.principal':
      return (r) => principalOf(r.a);
    case 'source.namespace':
      return (r) => namespaceOf(r.a);
    case 'source.ip':
      return ({ a }) => a.sourceIp;
    case 'remote.ip':
      return ({ a }) => a.remoteIp ?? a.sourceIp;
    case 'request.auth.principal':
      return ({ a }) => a.auth?.principal;
    case 'request.auth.audiences':
      return ({ a }) => a.auth?.audiences;
    case 'request.auth.presenter':
      return ({ a }) => a.auth?.presenter;
    case 'request.auth.claims': {
      const path = clause.claim ?? [];
      return ({ a }) => claimValues(a.auth?.claims, path);
    }
    case 'request.headers': {
      const name = (clause.header ?? '').toLowerCase();
      return ({ a }) => {
        const v = a.headers?.[name];
        return v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
      };
    }
    case 'request.host':
      return ({ a }) => a.host;
    case 'request.method':
      return ({ a }) => a.method;
    case 'request.path':
      return (r) => r.path;
    case 'destination.ip':
      return ({ a }) => a.destinationIp;
    case 'destination.port':
      return ({ a }) => (a.destinationPort === undefined ? undefined : String(a.destinationPort));
    case 'connection.sni':
      return ({ a }) => a.sni;
  }
}

/** The path without its query and fragment: Istio matches paths on Envoy's `url_path`. */
export function pathOnly(path: string): string {
  let end = path.length;
  const q = path.indexOf('?');
  if (q >= 0) end = q;
  const h = path.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return end === path.length ? path : path.slice(0, end);
}
