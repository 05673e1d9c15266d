/**
 * GAMMA (GEP-1426): an HTTPRoute or GRPCRoute whose parentRef is a Service shapes the traffic
 * that sidecars send to that Service, as a VirtualService for its host would, and before one.
 *
 * Which routes a client sees, as Istio decides it (istio/istio#45065, "Gamma: fix consumer
 * overrides"): routes in the client's own namespace (consumer routes) apply to it, else routes
 * in the Service's namespace (producer routes), never routes of a third namespace; and the
 * consumer's are not merged with the producer's.
 *
 * Where they stand beside VirtualServices, as Istio's SidecarScope orders the mesh's
 * VirtualServices (pilot/pkg/model/virtualservice.go SelectVirtualServices, with
 * UnifiedSidecarScoping): Gateway API routes of the client's namespace come first, so they
 * override any VirtualService for the same host; the others take their place among the
 * VirtualServices by creation time, the oldest owning a host.
 */
import type { RegistryService } from '../../api/registry-snapshot.js';
import type { GatewayApiBinding, RouteState } from '../../semantics/gateway-api/binding.js';
import type { CompileContext, VirtualServiceResource } from '../context.js';
import { convertRoutes } from './convert.js';

/** The annotation that marks a VirtualService made from Gateway API routes (Istio's `internal.istio.io/route-semantics: gateway`). */
export const ROUTE_SEMANTICS_ANNOTATION = 'internal.sinew.dev/route-semantics';

export interface MeshRouteSets {
  /** Made from routes of the client's namespace: before every VirtualService. */
  first: VirtualServiceResource[];
  /** Made from producer routes of other namespaces: among the VirtualServices by creation time. */
  byCreation: VirtualServiceResource[];
}

const cache = new WeakMap<GatewayApiBinding, Map<string, MeshRouteSets>>();

/** The VirtualServices the GAMMA routes make for clients in `namespace`, one per Service. */
export function meshRouteSets(ctx: CompileContext, binding: GatewayApiBinding, namespace: string): MeshRouteSets {
  let byNamespace = cache.get(binding);
  if (!byNamespace) cache.set(binding, (byNamespace = new Map()));
  const key = `${namespace}\u0000${ctx.mesh.domainSuffix}`;
  const cached = byNamespace.get(key);
  if (cached) return cached;

  // Service -> its routes (with the port the parentRef names, if any).
  const byService = new Map<string, { service: { namespace: string; name: string }; entries: { route: RouteState; port?: number }[] }>();
  for (const route of binding.routes) {
    if (route.kind !== 'HTTPRoute' && route.kind !== 'GRPCRoute') continue;
    for (const parent of route.parents) {
      if (parent.kind !== 'Service' || !parent.service || parent.accepted.status !== 'True') continue;
      const k = `${parent.service.namespace}/${parent.service.name}`;
      let entry = byService.get(k);
      if (!entry) byService.set(k, (entry = { service: parent.service, entries: [] }));
      entry.entries.push({ route, port: parent.service.port });
    }
  }
  const sets: MeshRouteSets = { first: [], byCreation: [] };
  for (const { service, entries } of byService.values()) {
    const consumer = entries.filter((e) => e.route.resource.metadata.namespace === namespace);
    const producer = entries.filter((e) => e.route.resource.metadata.namespace === service.namespace);
    const chosen = consumer.length ? consumer : producer;
    if (chosen.length === 0) continue;
    const routeNs = chosen[0].route.resource.metadata.namespace;
    const oldest = chosen.map((e) => e.route.resource).sort((a, b) => String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')))[0];
    const host = `${service.name}.${service.namespace}.svc.${ctx.mesh.domainSuffix}`;
    const rules = convertRoutes(chosen.map((e) => e.route), { port: 0, domainSuffix: ctx.mesh.domainSuffix }, new Map(chosen.map((e) => [e.route, e.port])));
    const vs: VirtualServiceResource = {
      apiVersion: 'networking.istio.io/v1',
      group: 'networking.istio.io',
      kind: 'VirtualService',
      metadata: {
        name: `${oldest.metadata.name}-mesh`,
        namespace: routeNs,
        ...(oldest.metadata.creationTimestamp ? { creationTimestamp: oldest.metadata.creationTimestamp } : {}),
        annotations: { [ROUTE_SEMANTICS_ANNOTATION]: 'gateway' },
      },
      spec: { hosts: [host], gateways: ['mesh'], http: rules.map((r) => r.rule) },
    };
    meshRuleNames.set(vs, rules.map((r) => r.name));
    (routeNs === namespace ? sets.first : sets.byCreation).push(vs);
  }
  byNamespace.set(key, sets);
  return sets;
}

/** The Gateway API rule names of a mesh VirtualService's rules, by index (for route names). */
export const meshRuleNames = new WeakMap<VirtualServiceResource, string[]>();

/** Whether a VirtualService was made from Gateway API routes. */
export function isGatewayApiVirtualService(vs: VirtualServiceResource): boolean {
  return vs.metadata.annotations?.[ROUTE_SEMANTICS_ANNOTATION] === 'gateway';
}

/** The service a mesh VirtualService made from Gateway API routes is for (they name exactly one host). */
export function meshServiceHost(vs: VirtualServiceResource): string | undefined {
  return isGatewayApiVirtualService(vs) ? vs.spec.hosts?.[0] : undefined;
}

export type { RegistryService };
