/**
 * Istio's PeerAuthentication rules: istio/istio pkg/config/validation/validation.go
 * ValidatePeerAuthentication, and the CRD's rules on portLevelMtls keys.
 */
import type { SemanticContext } from './context.js';
import { asObject, checkSelectorLabels, dryRunAnnotationUnsupported, isObject } from './rules.js';

/** Istio's ValidatePeerAuthentication. */
export function validatePeerAuthentication(spec: unknown, ctx: SemanticContext): void {
  const pa = asObject(spec);
  const dryRun = dryRunAnnotationUnsupported(ctx.metadata.annotations, ctx.resource.namespace, ctx.resource.name);
  if (dryRun) ctx.error(['metadata', 'annotations', 'istio.io/dry-run'], 'SNW0404', dryRun);

  const selector = isObject(pa.selector) ? pa.selector : undefined;
  const labelCount = Object.keys(asObject(selector?.matchLabels)).length;
  const portLevel = pa.portLevelMtls;
  const ports = isObject(portLevel) ? Object.keys(portLevel) : [];

  // Port-level settings only make sense for one workload's ports: a mesh-wide or namespace
  // policy (no selector) has no port namespace of its own.
  if (labelCount === 0 && ports.length !== 0) {
    ctx.error(['spec', 'portLevelMtls'], 'SNW0425', 'mesh/namespace peer authentication cannot have port level mTLS');
  }
  if (portLevel !== undefined && portLevel !== null && ports.length === 0) {
    ctx.error(['spec', 'portLevelMtls'], 'SNW0426', 'port level mTLS, if defined, must have at least one element');
  }
  for (const key of ports) {
    // Map keys are uint32 port numbers in the API; YAML gives them to us as strings.
    if (!/^\d+$/.test(key)) {
      ctx.error(['spec', 'portLevelMtls', key], 'SNW0427', `invalid port "${key}" in portLevelMtls: keys are port numbers`);
    } else if (Number(key) < 1 || Number(key) > 65535) {
      ctx.error(['spec', 'portLevelMtls', key], 'SNW0427', 'port must be in range 1..65535');
    }
  }

  if (selector) {
    for (const msg of checkSelectorLabels(selector.matchLabels)) ctx.error(['spec', 'selector', 'matchLabels'], 'SNW0400', msg);
    if (labelCount === 0) ctx.warn(['spec', 'selector'], 'SNW0401', 'workload selector specified without labels');
  }
}
