/**
 * Kubernetes Service and Namespace rules that Sinew relies on, after Kubernetes' own
 * ValidateService (kubernetes pkg/apis/core/validation/validation.go): port numbers, port
 * names (required and unique when there are several), targetPort as a number or an
 * IANA service name, nodePort only where it exists, ExternalName needing a name.
 */
import type { SemanticContext } from './context.js';
import { asArray, asObject, checkLabelMap, checkPort, isObject } from './rules.js';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LOWER_DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Kubernetes validation.IsValidPortName (IANA_SVC_NAME): what a named targetPort or container port may be. */
export function checkIanaPortName(name: string): string | undefined {
  if (name.length > 15) return `port name "${name}" must be no more than 15 characters`;
  if (!/^[a-z0-9-]+$/.test(name)) return `port name "${name}" must contain only lower-case letters, digits and '-'`;
  if (!/[a-z]/.test(name)) return `port name "${name}" must contain at least one letter`;
  if (name.includes('--')) return `port name "${name}" must not contain consecutive hyphens`;
  if (name.startsWith('-') || name.endsWith('-')) return `port name "${name}" must not begin or end with a hyphen`;
  return undefined;
}

/** Kubernetes ValidateService, the parts that matter to a mesh. */
export function validateService(spec: unknown, ctx: SemanticContext): void {
  const svc = asObject(spec);
  const type = typeof svc.type === 'string' ? svc.type : 'ClusterIP';
  const ports = asArray(svc.ports);
  const headless = svc.clusterIP === 'None';

  if (type === 'ExternalName') {
    const name = svc.externalName;
    if (typeof name !== 'string' || name === '') {
      ctx.error(['spec', 'externalName'], 'SNW0333', 'a Service of type ExternalName needs spec.externalName');
    } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name.replace(/\.$/, ''))) {
      ctx.error(['spec', 'externalName'], 'SNW0333', `externalName "${name}" must be a lower-case DNS name`);
    }
  } else if (ports.length === 0 && !headless) {
    ctx.error(['spec', 'ports'], 'SNW0330', 'a Service needs at least one port (only headless and ExternalName Services may have none)');
  }

  const names = new Set<string>();
  const portProtocols = new Set<string>();
  ports.forEach((raw, i) => {
    if (!isObject(raw)) return;
    const path = ['spec', 'ports', i];
    const name = raw.name;
    if (name === undefined || name === '') {
      if (ports.length > 1) ctx.error([...path, 'name'], 'SNW0331', 'port name is required when a Service has more than one port');
    } else if (typeof name === 'string') {
      if (!LOWER_DNS1123_LABEL.test(name) || name.length > 63) {
        ctx.error([...path, 'name'], 'SNW0331', `port name "${name}" must be a lower-case DNS-1123 label`);
      }
      if (names.has(name)) ctx.error([...path, 'name'], 'SNW0331', `port name "${name}" is used twice`);
      names.add(name);
    }
    const portErr = checkPort(raw.port);
    if (portErr) ctx.error([...path, 'port'], 'SNW0330', portErr);
    if (typeof raw.port === 'number') {
      const key = `${raw.port}/${typeof raw.protocol === 'string' ? raw.protocol : 'TCP'}`;
      if (portProtocols.has(key)) ctx.error(path, 'SNW0332', `port ${key} is defined twice`);
      portProtocols.add(key);
    }
    if (typeof raw.targetPort === 'number') {
      const tErr = checkPort(raw.targetPort);
      if (tErr) ctx.error([...path, 'targetPort'], 'SNW0330', `targetPort: ${tErr}`);
    } else if (typeof raw.targetPort === 'string') {
      const tErr = checkIanaPortName(raw.targetPort);
      if (tErr) ctx.error([...path, 'targetPort'], 'SNW0330', `targetPort: ${tErr}`);
    }
    if (raw.nodePort !== undefined && raw.nodePort !== 0) {
      if (type !== 'NodePort' && type !== 'LoadBalancer') {
        ctx.error([...path, 'nodePort'], 'SNW0330', `nodePort may not be used when type is '${type}'`);
      } else {
        const nErr = checkPort(raw.nodePort);
        if (nErr) ctx.error([...path, 'nodePort'], 'SNW0330', `nodePort: ${nErr}`);
      }
    }
  });

  for (const msg of checkLabelMap(svc.selector)) ctx.error(['spec', 'selector'], 'SNW0315', msg);
}

/** Kubernetes Namespace: the name is all there is, and the pipeline checks it. */
export function validateNamespace(spec: unknown, ctx: SemanticContext): void {
  for (const msg of checkLabelMap(ctx.metadata.labels)) ctx.error(['metadata', 'labels'], 'SNW0315', msg);
  void spec;
}
