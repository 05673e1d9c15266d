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
import { namespaceOf, principalOf, type RequestAttributes } from './attributes.js';
import { compileMatcher, type CompiledMatcher } from './match.js';
import type { AuthorizationConfig, Clause, CompiledPolicy, CompiledRule } from './policy.js';

type Predicate = (attributes: RequestAttributes) => boolean;

export interface CompiledAuthorizationPolicy {
  readonly name: string;
  readonly action: CompiledPolicy['action'];
  readonly dryRun: boolean;
  readonly matches: Predicate;
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
  const policies = compilePolicies(config.policies);
  const enforced = policies.filter((p) => !p.dryRun);
  const dryRun = policies.filter((p) => p.dryRun);
  const audit = enforced.filter((p) => p.action === 'AUDIT');
  return {
    policies,
    authorize(attributes) {
      const decision = decide(enforced, attributes);
      const audited: string[] = [];
      for (const p of audit) if (p.matches(attributes)) audited.push(p.name);
      const result: AuthorizationDecision = { ...decision, audited };
      if (dryRun.length > 0) {
        const shadow = decide(dryRun, attributes);
        result.shadow = { allowed: shadow.allowed, ...(shadow.policy ? { policy: shadow.policy } : {}) };
      }
      return result;
    },
  };
}

function decide(policies: readonly CompiledAuthorizationPolicy[], attributes: RequestAttributes): { allowed: boolean; policy?: string; reason: string } {
  for (const p of policies) {
    if (p.action === 'DENY' && p.matches(attributes)) return { allowed: false, policy: p.name, reason: `rbac_access_denied_matched_policy[${p.name}]` };
  }
  let anyAllow = false;
  for (const p of policies) {
    if (p.action !== 'ALLOW') continue;
    anyAllow = true;
    if (p.matches(attributes)) return { allowed: true, policy: p.name, reason: 'allowed' };
  }
  if (anyAllow) return { allowed: false, reason: 'rbac_access_denied_matched_policy[none]' };
  return { allowed: true, reason: 'allowed' };
}

/** Compiles policies of any action into predicates (the ext_authz filter uses it for CUSTOM). */
export function compilePolicies(policies: readonly CompiledPolicy[]): CompiledAuthorizationPolicy[] {
  return policies.map((p) => {
    const rules = p.rules.map(compileRule);
    return Object.freeze({ name: p.name, action: p.action, dryRun: p.dryRun === true, matches: (a: RequestAttributes) => rules.some((r) => r(a)) });
  });
}

function compileRule(rule: CompiledRule): Predicate {
  const from = rule.from?.length ? rule.from.map(allOf) : undefined;
  const to = rule.to?.length ? rule.to.map(allOf) : undefined;
  const when = rule.when?.length ? allOf(rule.when) : undefined;
  return (a) => (!from || from.some((f) => f(a))) && (!to || to.some((t) => t(a))) && (!when || when(a));
}

function allOf(clauses: readonly Clause[]): Predicate {
  const compiled = clauses.map(compileClause);
  return (a) => compiled.every((c) => c(a));
}

function compileClause(clause: Clause): Predicate {
  const read = reader(clause);
  const values = clause.values?.map(compileMatcher);
  const notValues = clause.notValues?.map(compileMatcher);
  return (a) => {
    const seen = read(a);
    if (values && !anyMatch(values, seen)) return false;
    if (notValues && anyMatch(notValues, seen)) return false;
    return true;
  };
}

function anyMatch(matchers: readonly CompiledMatcher[], seen: string | readonly string[] | undefined): boolean {
  if (seen === undefined) return false;
  if (typeof seen === 'string') return matchers.some((m) => m(seen));
  return seen.some((v) => matchers.some((m) => m(v)));
}

/** The request's value(s) for a clause's attribute; undefined when it has none. */
function reader(clause: Clause): (a: RequestAttributes) => string | readonly string[] | undefined {
  switch (clause.attribute) {
    case 'source.principal':
      return principalOf;
    case 'source.namespace':
      return namespaceOf;
    case 'source.ip':
      return (a) => a.sourceIp;
    case 'remote.ip':
      return (a) => a.remoteIp ?? a.sourceIp;
    case 'request.auth.principal':
      return (a) => a.auth?.principal;
    case 'request.auth.audiences':
      return (a) => a.auth?.audiences;
    case 'request.auth.presenter':
      return (a) => a.auth?.presenter;
    case 'request.auth.claims': {
      const path = clause.claim ?? [];
      return (a) => claimValues(a.auth?.claims, path);
    }
    case 'request.headers': {
      const name = (clause.header ?? '').toLowerCase();
      return (a) => {
        const v = a.headers?.[name];
        return v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
      };
    }
    case 'request.host':
      return (a) => a.host;
    case 'request.method':
      return (a) => a.method;
    case 'request.path':
      return (a) => (a.path === undefined ? undefined : pathOnly(a.path));
    case 'destination.ip':
      return (a) => a.destinationIp;
    case 'destination.port':
      return (a) => (a.destinationPort === undefined ? undefined : String(a.destinationPort));
    case 'connection.sni':
      return (a) => a.sni;
  }
}

/**
 * A claim's value(s) at a path into the payload (`request.auth.claims[a][b]`): a string, or a
 * list of strings (any element may match). Other types match nothing, as Envoy's metadata
 * matcher compares strings only.
 */
function claimValues(claims: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): string | readonly string[] | undefined {
  let at: unknown = claims;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || Array.isArray(at)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  if (typeof at === 'string') return at;
  if (Array.isArray(at)) return at.filter((v): v is string => typeof v === 'string');
  return undefined;
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
