/**
 * Helpers for the authorization tests: Istio YAML -> the compiled filter config (through the
 * compiler's own translation) -> an authorizer, so each case reads as Istio's documentation
 * states it.
 */
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/resources/meta.js';
import { compileAuthorization as compileFilters, type AuthorizationPolicyResource } from '../../src/compiler/authz.js';
import { validateText } from '../../src/config/validate.js';
import { compileAuthorization, type Authorizer } from '../../src/security/evaluator.js';
import type { RequestAttributes } from '../../src/security/attributes.js';

export function policies(yaml: string): AuthorizationPolicyResource[] {
  const result = validateText('policy.yaml', yaml, { defaultNamespace: 'foo' });
  assert.deepEqual(result.diagnostics.filter((d) => d.level === 'error'), []);
  return result.resources.filter((r: Resource) => r.kind === 'AuthorizationPolicy') as AuthorizationPolicyResource[];
}

/** The HTTP authorizer (or, with `tcp`, the network one) for the policies in `yaml`. */
export function authorizer(yaml: string, opts: { tcp?: boolean } = {}): Authorizer {
  const filters = compileFilters(policies(yaml), [], { services: [] } as never);
  const config = (opts.tcp ? filters.networkRbac : filters.rbac) ?? { policies: [] };
  return compileAuthorization(config);
}

/** A GET of `/` on httpbin from a sleep pod in `foo` over mTLS, changed by `over`. */
export function request(over: Partial<RequestAttributes> = {}): RequestAttributes {
  return {
    method: 'GET',
    path: '/',
    host: 'httpbin.foo:8000',
    headers: {},
    sourceIp: '10.0.0.5',
    destinationIp: '10.0.0.9',
    destinationPort: 8000,
    peerPrincipal: 'spiffe://cluster.local/ns/foo/sa/sleep',
    ...over,
  };
}
