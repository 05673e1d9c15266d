/**
 * Puts the security filters into a proxy's listeners: a sidecar's inbound listeners and a
 * gateway's listeners (Istio applies authorization and request authentication where traffic
 * enters a workload, never on a sidecar's outbound side). An HTTP listener's filter chain
 * (`http.filters`) gets jwt_authn, ext_authz (CUSTOM) and rbac (DENY/ALLOW/AUDIT) in Istio's
 * order, after the telemetry filters (a denied request is still counted and traced) and
 * before cors, fault and the router (a denied request is neither delayed nor aborted), and
 * the mesh's path normalisation and, at gateways, the trusted X-Forwarded-For hops that
 * decide `remote.ip`; a TCP listener gets the network rbac filter.
 */
import type { ExtensionProvider } from '../api/mesh-config.js';
import { DEFAULT_HTTP_FILTERS, HTTP_FILTERS, type HttpFilterConfig, type Listener } from '../api/proxy-config.js';
import type { AuthorizationPolicySpec } from '../api/resources/authorization-policy.js';
import type { RequestAuthenticationSpec } from '../api/resources/request-authentication.js';
import { applicablePolicies, compileAuthorization, EXT_AUTHZ_HTTP_FILTER, RBAC_HTTP_FILTER, RBAC_NETWORK_FILTER } from './authz.js';
import type { CompileContext } from './context.js';
import type { CompileInput } from './inputs.js';
import { toAddress } from './inputs.js';
import { compileJwtAuthn, JWT_AUTHN_HTTP_FILTER } from './jwt.js';

/** Adds the filters to `listeners` in place (they are the proxy's own, not yet frozen). */
export function addSecurityFilters(ctx: CompileContext, input: CompileInput, listeners: Listener[]): void {
  const resources = input.config.resources;
  const root = ctx.mesh.rootNamespace;
  const authz = applicablePolicies<AuthorizationPolicySpec>(resources, 'AuthorizationPolicy', ctx.node, root);
  const authn = applicablePolicies<RequestAuthenticationSpec>(resources, 'RequestAuthentication', ctx.node, root);
  const providers: readonly ExtensionProvider[] = ctx.mesh.meshTelemetry?.extensionProviders ?? [];
  const filters = compileAuthorization(authz as Parameters<typeof compileAuthorization>[0], providers, ctx.registry);
  const jwt = compileJwtAuthn(authn as Parameters<typeof compileJwtAuthn>[0]);
  const normalization = ctx.mesh.pathNormalization;
  const trustedHops = ctx.mesh.gatewayNumTrustedProxies;
  for (const listener of listeners) {
    if (listener.direction === 'outbound') continue;
    const destinationPort = logicalPort(ctx, listener);
    const withPort = <T extends object>(c: T) => (destinationPort !== listener.address.port ? { ...c, destinationPort } : c);
    if (listener.http) {
      const security: HttpFilterConfig[] = [];
      // Istio clears the route cache after verification at gateways only (authn BuildHTTP with
      // the gateway listener class), where VirtualServices may route on the token's claims.
      if (jwt) security.push({ name: JWT_AUTHN_HTTP_FILTER, config: listener.direction === 'gateway' ? { ...jwt, clearRouteCache: true } : jwt });
      if (filters.extAuthz) security.push({ name: EXT_AUTHZ_HTTP_FILTER, config: withPort(filters.extAuthz) });
      if (filters.rbac) security.push({ name: RBAC_HTTP_FILTER, config: withPort(filters.rbac) });
      if (security.length > 0) listener.http.filters = withSecurityFilters(listener.http.filters ?? DEFAULT_HTTP_FILTERS, security);
      if (normalization !== undefined && normalization !== 'BASE') listener.http.pathNormalization = normalization;
      // Istio's gatewayTopology.numTrustedProxies: a gateway uses the remote address (Envoy's
      // use_remote_address) and trusts that many X-Forwarded-For hops, which decide `remote.ip`.
      if (listener.direction === 'gateway' && trustedHops !== undefined && trustedHops > 0) listener.http.xffNumTrustedHops = trustedHops;
    } else if (listener.tcp && filters.networkRbac) {
      listener.networkFilters = [{ name: RBAC_NETWORK_FILTER, config: withPort(filters.networkRbac) }];
    }
  }
}

/** `chain` with `security` placed before the first of cors, fault and the router. */
function withSecurityFilters(chain: readonly HttpFilterConfig[], security: HttpFilterConfig[]): HttpFilterConfig[] {
  const after = new Set<string>([HTTP_FILTERS.cors, HTTP_FILTERS.fault, HTTP_FILTERS.router]);
  let at = chain.findIndex((f) => after.has(f.name));
  if (at < 0) at = chain.length;
  return [...chain.slice(0, at), ...security, ...chain.slice(at)];
}

/** The port policies name for a listener: a sidecar's containerPort, a gateway server's port. */
function logicalPort(ctx: CompileContext, listener: Listener): number {
  const same = (a: { host: string; port: number }) => a.host === listener.address.host && a.port === listener.address.port;
  if (listener.direction === 'inbound') {
    // By the listener's name first (inbound.ts names it after its containerPort): several
    // inbound ports may listen on port 0 when the proxy picks free ports itself.
    const ports = ctx.ports.inbound ?? [];
    return (ports.find((p) => same(p.listen) && listener.name === `inbound|${p.containerPort}`) ?? ports.find((p) => same(p.listen)))?.containerPort ?? listener.address.port;
  }
  for (const [port, mapped] of Object.entries(ctx.ports.gateway ?? {})) if (same(toAddress(mapped))) return Number(port);
  return listener.address.port;
}
