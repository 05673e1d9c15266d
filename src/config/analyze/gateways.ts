/** SNW1003: a VirtualService bound to a Gateway that does not exist. */
import type { Diagnostic } from '../../api/diagnostics.js';
import { closest } from '../../core/suggest.js';
import type { FieldPath } from '../../core/path.js';
import { finding, ofKind, type Analyzer, type Gateway, type VirtualService } from './common.js';

/** The reserved name for the sidecars of the mesh, not a Gateway resource. */
export const MESH_GATEWAY = 'mesh';

/**
 * `namespace/name` of a gateway reference, or `mesh`. Istio accepts `name` (the
 * VirtualService's namespace), `namespace/name`, and the older `name.namespace[.svc...]`.
 */
export function resolveGatewayRef(ref: string, namespace: string): string {
  if (ref === MESH_GATEWAY) return MESH_GATEWAY;
  if (ref.includes('/')) return ref;
  const dot = ref.indexOf('.');
  if (dot > 0) {
    const [name, ns] = ref.split('.');
    return `${ns}/${name}`;
  }
  return `${namespace}/${ref}`;
}

/** Every gateway reference in a VirtualService, with its path. */
export function* gatewayRefsOf(vs: VirtualService): Generator<{ ref: string; path: FieldPath }> {
  const spec = vs.spec ?? {};
  for (const [i, g] of (spec.gateways ?? []).entries()) yield { ref: g, path: ['spec', 'gateways', i] };
  for (const section of ['http', 'tls', 'tcp'] as const) {
    for (const [i, rule] of (spec[section] ?? []).entries()) {
      for (const [j, m] of (rule.match ?? []).entries()) {
        for (const [k, g] of (m.gateways ?? []).entries()) yield { ref: g, path: ['spec', section, i, 'match', j, 'gateways', k] };
      }
    }
  }
}

export const analyzeGateways: Analyzer = (resources) => {
  const out: Diagnostic[] = [];
  const existing = ofKind<Gateway>(resources, 'Gateway').map((g) => `${g.metadata.namespace}/${g.metadata.name}`);
  const known = new Set(existing);
  for (const vs of ofKind<VirtualService>(resources, 'VirtualService')) {
    for (const { ref, path } of gatewayRefsOf(vs)) {
      const resolved = resolveGatewayRef(ref, vs.metadata.namespace);
      if (resolved === MESH_GATEWAY || resolved.startsWith('*/') || known.has(resolved)) continue;
      const near = closest(resolved, existing);
      out.push(
        finding(vs, 'SNW1003', path, `gateway "${ref}" (${resolved}) does not exist${near ? `; did you mean "${near}"?` : ''}; the routes bound to it apply nowhere`),
      );
    }
  }
  return out;
};
