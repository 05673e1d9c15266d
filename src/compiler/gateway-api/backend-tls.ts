/**
 * BackendTLSPolicy at the gateways: the TLS a gateway proxy originates to a Service port an
 * accepted policy targets (src/semantics/gateway-api/backend-tls.ts), through the same
 * upstream transport as a DestinationRule's `tls` (clusters.ts builds the cluster; the proxy's
 * transport socket verifies):
 *
 *   mode SIMPLE, SNI the policy's `hostname`;
 *   the CA bundle of its `caCertificateRefs`, pushed as the secret `backendtlspolicy://<ns>/<name>`
 *   (`wellKnownCACertificates: System`: none, so the proxy trusts the system's roots);
 *   `subjectAltNames` when the policy names some (the certificate must carry one of them),
 *   else the certificate must be valid for `hostname`, as GEP-1897 asks.
 *
 * The policy replaces a DestinationRule's `tls` for that port, so that what its status says
 * is what the gateway does. Sidecars do not apply it: the Gateway API leaves BackendTLSPolicy
 * in the mesh to the implementation, and its status names Gateways only.
 */
import type { Cluster, Secret, UpstreamTls } from '../../api/proxy-config.js';
import type { RegistryService, RegistryServicePort } from '../../api/registry-snapshot.js';
import { backendTlsPolicyFor } from '../../semantics/gateway-api/backend-tls.js';
import type { CompileContext } from '../context.js';

/** The secret a policy's CA bundle is pushed under. */
export const backendTlsCaSecretName = (policyKey: string) => `backendtlspolicy://${policyKey}`;

/** The TLS a gateway originates to a Service port under an accepted BackendTLSPolicy; undefined without one. */
export function backendTlsOf(ctx: CompileContext, service: RegistryService, port: RegistryServicePort): UpstreamTls | undefined {
  if (ctx.node.mode !== 'router' || service.source !== 'Service') return undefined;
  const policies = ctx.gatewayApi.backendTlsPolicies;
  if (policies.length === 0) return undefined;
  const policy = backendTlsPolicyFor(policies, service, port.name);
  if (!policy) return undefined;
  const tls: UpstreamTls = { mode: 'SIMPLE', sni: policy.hostname };
  if (!policy.systemRoots) tls.validationContext = backendTlsCaSecretName(policy.key);
  if (policy.subjectAltNames.length) tls.subjectAltNames = [...policy.subjectAltNames];
  return tls;
}

/** The CA bundles the clusters' BackendTLSPolicy TLS names. */
export function backendTlsSecrets(ctx: CompileContext, clusters: readonly Cluster[]): Secret[] {
  if (ctx.node.mode !== 'router' || ctx.gatewayApi.backendTlsPolicies.length === 0) return [];
  const used = new Set(clusters.flatMap((c) => (c.tls?.validationContext?.startsWith('backendtlspolicy://') ? [c.tls.validationContext] : [])));
  return ctx.gatewayApi.backendTlsPolicies.filter((p) => p.caPem && used.has(backendTlsCaSecretName(p.key))).map((p) => ({ name: backendTlsCaSecretName(p.key), trustedCaPem: p.caPem! }));
}
