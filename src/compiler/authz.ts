/**
 * AuthorizationPolicy -> the per-workload authorization filters (Istio's
 * pilot/pkg/security/authz/builder): the ALLOW, DENY and AUDIT policies that apply to a proxy
 * become the `sinew.filters.http.rbac` config of its HTTP listeners (and the
 * `sinew.filters.network.rbac` config of its TCP ones), the CUSTOM policies the
 * `sinew.filters.http.ext_authz` config, in the compiled form of src/security/policy.ts.
 *
 * Which policies apply (Istio's ListAuthorizationPolicies): those in the root namespace and
 * in the proxy's own namespace that attach to it (semantics/policy-attachment.ts: no selector
 * means the whole namespace, or the whole mesh from the root namespace).
 */
import type { Resource } from '../api/resources/meta.js';
import type { AuthorizationPolicySpec, Condition, Operation, Rule, Source } from '../api/resources/authorization-policy.js';
import type { ExtensionProvider } from '../api/mesh-config.js';
import type { ProxyNode } from '../api/proxy-config.js';
import type { RegistrySnapshot } from '../api/registry-snapshot.js';
import { policyAttaches } from '../semantics/policy-attachment.js';
import { byCreation } from '../semantics/creation-order.js';
import { HTTP_ONLY_ATTRIBUTES, policyId, type AuthorizationConfig, type Clause, type CompiledPolicy, type CompiledRule, type ValueMatcher } from '../security/policy.js';
import type { ExtAuthzConfig } from '../security/ext-authz-config.js';
import { durationMs } from './util.js';

export type AuthorizationPolicyResource = Resource<AuthorizationPolicySpec>;

export const RBAC_HTTP_FILTER = 'sinew.filters.http.rbac';
export const RBAC_NETWORK_FILTER = 'sinew.filters.network.rbac';
export const EXT_AUTHZ_HTTP_FILTER = 'sinew.filters.http.ext_authz';
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** The policies of `kind` that apply to a proxy, oldest first (root namespace, then its own). */
export function applicablePolicies<S extends { selector?: unknown; targetRef?: unknown; targetRefs?: unknown }>(
  resources: readonly Resource[],
  kind: string,
  node: Pick<ProxyNode, 'namespace' | 'labels'>,
  rootNamespace: string,
): Resource<S>[] {
  return (resources.filter((r) => r.kind === kind) as Resource<S>[])
    .filter((r) => {
      const ns = r.metadata.namespace ?? 'default';
      return (ns === rootNamespace || ns === node.namespace) && policyAttaches(r.spec as Parameters<typeof policyAttaches>[0], ns, node.namespace, node.labels);
    })
    .sort(byCreation);
}

// === translation ===

/** What the ext_authz filter is given: the CUSTOM policies and the provider they name. */
export type ExtAuthzFilterConfig = ExtAuthzConfig;

export interface AuthorizationFilters {
  /** ALLOW, DENY and AUDIT policies; absent when none applies (nothing to enforce). */
  rbac?: AuthorizationConfig;
  /** The same, for a TCP listener: HTTP-only fields handled as Istio does (see `forTcp`). */
  networkRbac?: AuthorizationConfig;
  extAuthz?: ExtAuthzFilterConfig;
}

/**
 * The authorization filters of one proxy. A CUSTOM policy whose provider is not an
 * `envoyExtAuthzHttp` provider of the mesh config, or whose service is not in the registry,
 * fails closed: it is compiled as a DENY of what it covers (Istio likewise denies the
 * requests of a CUSTOM policy it cannot configure rather than letting them through).
 */
export function compileAuthorization(
  policies: readonly AuthorizationPolicyResource[],
  providers: readonly ExtensionProvider[],
  registry: RegistrySnapshot,
): AuthorizationFilters {
  const compiled: CompiledPolicy[] = [];
  const custom: CompiledPolicy[] = [];
  let provider: ExtAuthzFilterConfig['provider'] | undefined;
  let providerName: string | undefined;
  for (const p of policies) {
    const ns = p.metadata.namespace ?? 'default';
    const action = p.spec.action ?? 'ALLOW';
    const base: CompiledPolicy = {
      name: policyId(ns, p.metadata.name),
      action,
      rules: (p.spec.rules ?? []).map((r) => translateRule(r, ns)),
      ...(p.metadata.annotations?.[DRY_RUN_ANNOTATION] === 'true' ? { dryRun: true } : {}),
    };
    if (action !== 'CUSTOM') {
      compiled.push(base);
      continue;
    }
    const name = p.spec.provider?.name;
    const resolved = name === undefined ? undefined : extAuthzProvider(name, providers, registry);
    // One provider per workload, as Istio allows: a second one fails closed like a missing one.
    if (resolved && (providerName === undefined || providerName === name)) {
      providerName = name;
      provider = resolved;
      custom.push(base);
    } else compiled.push({ ...base, action: 'DENY' });
  }
  const out: AuthorizationFilters = {};
  if (compiled.length > 0) {
    out.rbac = { policies: compiled };
    out.networkRbac = { policies: compiled.map(forTcp) };
  }
  if (provider && custom.length > 0) out.extAuthz = { provider, policies: custom };
  return out;
}

/**
 * A policy for a TCP listener (Istio's `checkError`): a rule of an ALLOW policy that needs an
 * HTTP-only attribute is dropped (the policy allows less); from a DENY or AUDIT rule only
 * that attribute's clause is dropped (the rule denies more).
 */
function forTcp(policy: CompiledPolicy): CompiledPolicy {
  const httpOnly = (c: Clause) => HTTP_ONLY_ATTRIBUTES.has(c.attribute);
  const usesHttp = (r: CompiledRule) => [...(r.from ?? []).flat(), ...(r.to ?? []).flat(), ...(r.when ?? [])].some(httpOnly);
  if (policy.action === 'ALLOW') return { ...policy, rules: policy.rules.filter((r) => !usesHttp(r)) };
  const keep = (cs: Clause[]) => cs.filter((c) => !httpOnly(c));
  return {
    ...policy,
    rules: policy.rules.map((r) => ({
      ...(r.from ? { from: r.from.map(keep) } : {}),
      ...(r.to ? { to: r.to.map(keep) } : {}),
      ...(r.when ? { when: keep(r.when) } : {}),
    })),
  };
}

function translateRule(rule: Rule, namespace: string): CompiledRule {
  const out: CompiledRule = {};
  if (rule.from?.length) out.from = rule.from.map((f) => sourceClauses(f.source ?? {}, namespace));
  if (rule.to?.length) out.to = rule.to.map((t) => operationClauses(t.operation ?? {}));
  if (rule.when?.length) out.when = rule.when.map(conditionClause);
  return out;
}

function clause(attribute: Clause['attribute'], values: string[] | undefined, notValues: string[] | undefined, matcher: (v: string) => ValueMatcher, extra: Partial<Clause> = {}): Clause[] {
  if (values === undefined && notValues === undefined) return [];
  return [{ attribute, ...extra, ...(values !== undefined ? { values: values.map(matcher) } : {}), ...(notValues !== undefined ? { notValues: notValues.map(matcher) } : {}) }];
}

function sourceClauses(s: Source, namespace: string): Clause[] {
  return [
    ...clause('source.principal', s.principals, s.notPrincipals, stringMatcher),
    ...clause('request.auth.principal', s.requestPrincipals, s.notRequestPrincipals, stringMatcher),
    ...clause('source.namespace', s.namespaces, s.notNamespaces, stringMatcher),
    ...clause('source.ip', s.ipBlocks, s.notIpBlocks, cidrMatcher),
    ...clause('remote.ip', s.remoteIpBlocks, s.notRemoteIpBlocks, cidrMatcher),
    ...clause('source.principal', s.serviceAccounts, s.notServiceAccounts, (sa) => serviceAccountMatcher(sa, namespace)),
    ...clause('source.principal', s.trustDomains, s.notTrustDomains, (td) => ({ prefix: `${td}/` })),
  ];
}

function operationClauses(o: Operation): Clause[] {
  return [
    ...clause('request.host', o.hosts, o.notHosts, (h) => ({ host: h })),
    ...clause('destination.port', o.ports, o.notPorts, portMatcher),
    ...clause('request.method', o.methods, o.notMethods, stringMatcher),
    ...clause('request.path', o.paths, o.notPaths, pathMatcher),
  ];
}

/** A `when` condition (Istio's condition table: https://istio.io/latest/docs/reference/config/security/conditions/). */
function conditionClause(c: Condition): Clause {
  const bracket = c.key.indexOf('[');
  const head = bracket < 0 ? c.key : c.key.slice(0, bracket);
  const args = bracket < 0 ? [] : [...c.key.slice(bracket).matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]);
  const make = (attribute: Clause['attribute'], matcher: (v: string) => ValueMatcher, extra: Partial<Clause> = {}): Clause =>
    clause(attribute, c.values, c.notValues, matcher, extra)[0] ?? { attribute, ...extra };
  switch (head) {
    case 'request.headers':
      return make('request.headers', stringMatcher, { header: (args[0] ?? '').toLowerCase() });
    case 'request.auth.claims':
      return make('request.auth.claims', stringMatcher, { claim: args });
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return make(head, cidrMatcher);
    case 'destination.port':
      return make('destination.port', portMatcher);
    case 'source.namespace':
    case 'source.principal':
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
    case 'connection.sni':
      return make(head, stringMatcher);
    case 'source.serviceAccount':
      return make('source.principal', (sa) => ({ suffix: `/sa/${sa}` }));
    case 'source.trustDomain':
      return make('source.principal', (td) => ({ prefix: `${td}/` }));
    default:
      // Validation refuses every other key; a condition that cannot be read never holds, so
      // an ALLOW rule with it allows nothing and a DENY rule with it denies nothing more.
      return { attribute: 'request.headers', header: `:unsupported:${c.key}`, values: [{ present: true }] };
  }
}

/** Istio's string matcher: `*` any non-empty value, `abc*` a prefix, `*abc` a suffix, else exact. */
export function stringMatcher(v: string): ValueMatcher {
  if (v === '*') return { present: true };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1) };
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  return { exact: v };
}

/** Istio's path matcher: templates with `{*}` / `{**}`, else the string matcher. */
function pathMatcher(v: string): ValueMatcher {
  return /\{\*\*?\}/.test(v) ? { template: v } : stringMatcher(v);
}

function cidrMatcher(v: string): ValueMatcher {
  return { cidr: v };
}

function portMatcher(v: string): ValueMatcher {
  return { port: Number(v) };
}

/** `serviceAccounts: ["ns/sa"]`, or `["sa"]` in the policy's namespace: the principal's `/ns/<ns>/sa/<sa>` tail. */
function serviceAccountMatcher(v: string, namespace: string): ValueMatcher {
  const [ns, sa] = v.includes('/') ? v.split('/', 2) : [namespace, v];
  return { suffix: `/ns/${ns}/sa/${sa}` };
}

// === CUSTOM providers ===

/**
 * An `envoyExtAuthzHttp` provider of the mesh config, with its service resolved in the
 * registry (`host` or `namespace/host`, Istio's form). Undefined when it cannot be used.
 */
function extAuthzProvider(name: string, providers: readonly ExtensionProvider[], registry: RegistrySnapshot): ExtAuthzFilterConfig['provider'] | undefined {
  const p = providers.find((x) => x.name === name)?.envoyExtAuthzHttp as Record<string, unknown> | undefined;
  if (!p || typeof p.service !== 'string' || typeof p.port !== 'number') return undefined;
  const slash = p.service.indexOf('/');
  const host = slash >= 0 ? p.service.slice(slash + 1) : p.service;
  const namespace = slash >= 0 ? p.service.slice(0, slash) : undefined;
  const known = registry.services.some((s) => s.hostname === host && (namespace === undefined || s.namespace === namespace) && s.ports.some((port) => port.port === p.port));
  if (!known) return undefined;
  const strings = (k: string) => (Array.isArray(p[k]) ? (p[k] as unknown[]).filter((x): x is string => typeof x === 'string') : undefined);
  const status = (p.statusOnError as string | number | undefined) ?? 403;
  return {
    name,
    cluster: `outbound|${p.port}||${host}`,
    host,
    port: p.port,
    // Istio's default timeout for ext_authz providers is 600 s; a check that long is useless
    // to a person waiting, but it is Istio's, so it stays.
    timeoutMs: durationMs(p.timeout as string | undefined) ?? 600_000,
    ...(typeof p.pathPrefix === 'string' ? { pathPrefix: p.pathPrefix } : {}),
    failOpen: p.failOpen === true,
    statusOnError: Number(status) || 403,
    ...(strings('includeRequestHeadersInCheck') ? { includeRequestHeadersInCheck: strings('includeRequestHeadersInCheck') } : {}),
    ...(p.includeAdditionalHeadersInCheck && typeof p.includeAdditionalHeadersInCheck === 'object' ? { includeAdditionalHeadersInCheck: p.includeAdditionalHeadersInCheck as Record<string, string> } : {}),
    ...(strings('headersToUpstreamOnAllow') ? { headersToUpstreamOnAllow: strings('headersToUpstreamOnAllow') } : {}),
    ...(strings('headersToDownstreamOnAllow') ? { headersToDownstreamOnAllow: strings('headersToDownstreamOnAllow') } : {}),
    ...(strings('headersToDownstreamOnDeny') ? { headersToDownstreamOnDeny: strings('headersToDownstreamOnDeny') } : {}),
  };
}
