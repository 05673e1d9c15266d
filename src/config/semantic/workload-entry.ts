/**
 * Istio's WorkloadEntry and WorkloadGroup rules: istio/istio
 * pkg/config/validation/validation.go ValidateWorkloadEntry / validateWorkloadEntry,
 * ValidateWorkloadGroup / validateReadinessProbe, plus the CRD's CEL rules on unix addresses.
 */
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import {
  asArray,
  asObject,
  checkIstioFQDN,
  checkIstioHeaderName,
  checkLabelMap,
  checkPort,
  checkPortName,
  checkUnixAddress,
  dryRunAnnotationUnsupported,
  isIPAddress,
  isObject,
} from './rules.js';

const UNIX_PREFIX = 'unix://';

export interface WorkloadEntryCheckOptions {
  /** Port names of the ServiceEntry this is an endpoint of; undefined for a standalone WorkloadEntry. */
  servicePorts?: ReadonlySet<string>;
  /** A standalone WorkloadEntry may name an FQDN; a STATIC ServiceEntry endpoint must be an IP or socket. */
  allowFQDN: boolean;
}

/** Istio's validateWorkloadEntry, shared by WorkloadEntry and STATIC ServiceEntry endpoints. */
export function checkWorkloadEntryLike(we: Record<string, unknown>, base: FieldPath, ctx: SemanticContext, opts: WorkloadEntryCheckOptions): void {
  const addr = typeof we.address === 'string' ? we.address : '';
  if (addr === '') {
    if (typeof we.network !== 'string' || we.network === '') {
      ctx.error([...base, 'address'], 'SNW0322', 'address is required');
      return;
    }
    ctx.warn([...base, 'address'], 'SNW0318', `address is unset with network "${we.network}"`);
  }
  const ports = asObject(we.ports);
  const unix = addr.startsWith(UNIX_PREFIX);
  if (unix) {
    const err = checkUnixAddress(addr.slice(UNIX_PREFIX.length));
    if (err) ctx.error([...base, 'address'], 'SNW0314', err);
    if (Object.keys(ports).length !== 0) ctx.error([...base, 'ports'], 'SNW0314', `unix endpoint ${addr} must not include ports`);
  } else if (addr !== '' && !isIPAddress(addr)) {
    if (!opts.allowFQDN) ctx.error([...base, 'address'], 'SNW0312', `endpoint address "${addr}" is not a valid IP address`);
    else if (checkIstioFQDN(addr)) ctx.error([...base, 'address'], 'SNW0312', `endpoint address "${addr}" is not a valid FQDN or an IP address`);
  }
  for (const [name, port] of Object.entries(ports)) {
    if (opts.servicePorts && !opts.servicePorts.has(name)) {
      ctx.error([...base, 'ports', name], 'SNW0313', `endpoint port ${String(port)} is not defined by the service entry`);
    }
    const nameErr = checkPortName(name);
    if (nameErr) ctx.error([...base, 'ports', name], 'SNW0307', nameErr);
    const portErr = checkPort(port);
    if (portErr) ctx.error([...base, 'ports', name], 'SNW0304', portErr);
  }
  for (const msg of checkLabelMap(we.labels)) ctx.error([...base, 'labels'], 'SNW0315', msg);
  if (unix && opts.servicePorts && opts.servicePorts.size !== 1) {
    ctx.error([...base, 'address'], 'SNW0314', 'exactly 1 service port required for unix endpoints');
  }
}

/** Istio's ValidateWorkloadEntry. */
export function validateWorkloadEntry(spec: unknown, ctx: SemanticContext): void {
  const dryRun = dryRunAnnotationUnsupported(ctx.metadata.annotations, ctx.resource.namespace, ctx.resource.name);
  if (dryRun) ctx.error(['metadata', 'annotations', 'istio.io/dry-run'], 'SNW0327', dryRun);
  // Whether the port belongs to a service is not known without the ServiceEntry (Istio's TODO too).
  checkWorkloadEntryLike(asObject(spec), ['spec'], ctx, { allowFQDN: true });
}

/** Istio's ValidateWorkloadGroup. */
export function validateWorkloadGroup(spec: unknown, ctx: SemanticContext): void {
  const wg = asObject(spec);
  const dryRun = dryRunAnnotationUnsupported(ctx.metadata.annotations, ctx.resource.namespace, ctx.resource.name);
  if (dryRun) ctx.error(['metadata', 'annotations', 'istio.io/dry-run'], 'SNW0327', dryRun);
  // A missing template is a structural error (required field); address is not required in
  // the template because it is filled in when a workload registers.
  if (isObject(wg.metadata)) {
    for (const msg of checkLabelMap(wg.metadata.labels)) ctx.error(['spec', 'metadata', 'labels'], 'SNW0315', `invalid labels: ${msg}`);
  }
  if (isObject(wg.template)) {
    const t = wg.template;
    const addr = typeof t.address === 'string' ? t.address : '';
    if (addr.startsWith(UNIX_PREFIX)) {
      // The CRD's CEL rules on the template's unix address.
      const err = checkUnixAddress(addr.slice(UNIX_PREFIX.length));
      if (err) ctx.error(['spec', 'template', 'address'], 'SNW0314', err);
      if (Object.keys(asObject(t.ports)).length) ctx.error(['spec', 'template', 'ports'], 'SNW0314', 'UDS may not include ports');
    }
    for (const [name, port] of Object.entries(asObject(t.ports))) {
      const nameErr = checkPortName(name);
      if (nameErr) ctx.error(['spec', 'template', 'ports', name], 'SNW0307', nameErr);
      const portErr = checkPort(port);
      if (portErr) ctx.error(['spec', 'template', 'ports', name], 'SNW0304', portErr);
    }
  }
  if (wg.probe !== undefined) checkReadinessProbe(asObject(wg.probe), ['spec', 'probe'], ctx);
}

/** Istio's validateReadinessProbe. */
function checkReadinessProbe(probe: Record<string, unknown>, base: FieldPath, ctx: SemanticContext): void {
  for (const field of ['periodSeconds', 'initialDelaySeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold']) {
    const v = probe[field];
    if (typeof v === 'number' && v < 0) ctx.error([...base, field], 'SNW0325', `${field} must be non-negative`);
  }
  const methods = ['httpGet', 'tcpSocket', 'exec', 'grpc'].filter((m) => probe[m] !== undefined);
  if (methods.length === 0) {
    ctx.error(base, 'SNW0325', 'probe must set one health check method: httpGet, tcpSocket, exec or grpc');
    return;
  }
  if (methods.length > 1) ctx.error(base, 'SNW0325', `probe sets ${methods.join(' and ')}; only one health check method is allowed`);
  if (isObject(probe.httpGet)) {
    const h = probe.httpGet;
    const portErr = checkPort(h.port);
    if (portErr) ctx.error([...base, 'httpGet', 'port'], 'SNW0325', portErr);
    if (h.scheme !== undefined && h.scheme !== '' && h.scheme !== 'HTTP' && h.scheme !== 'HTTPS') {
      ctx.error([...base, 'httpGet', 'scheme'], 'SNW0325', 'httpGet.scheme must be one of "HTTPS", "HTTP"');
    }
    asArray(h.httpHeaders).forEach((hdr, i) => {
      const nameErr = checkIstioHeaderName(String(asObject(hdr).name ?? ''));
      if (nameErr) ctx.error([...base, 'httpGet', 'httpHeaders', i, 'name'], 'SNW0325', nameErr);
    });
  }
  if (isObject(probe.tcpSocket)) {
    const portErr = checkPort(probe.tcpSocket.port);
    if (portErr) ctx.error([...base, 'tcpSocket', 'port'], 'SNW0325', portErr);
  }
  if (isObject(probe.exec)) {
    const cmd = asArray(probe.exec.command);
    if (cmd.length === 0) ctx.error([...base, 'exec', 'command'], 'SNW0325', 'exec.command is required');
    cmd.forEach((c, i) => {
      if (c === '') ctx.error([...base, 'exec', 'command', i], 'SNW0325', 'exec.command entries must not be empty');
    });
  }
  if (isObject(probe.grpc) && probe.grpc.port !== undefined) {
    const portErr = checkPort(probe.grpc.port);
    if (portErr) ctx.error([...base, 'grpc', 'port'], 'SNW0325', portErr);
  }
}
