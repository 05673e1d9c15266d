/**
 * Istio's ServiceEntry rules: istio/istio pkg/config/validation/validation.go
 * ValidateServiceEntry (with validateWorkloadEntry for STATIC endpoints and validateExportTo),
 * plus the CRD's CEL rules where the webhook is silent. Messages follow Istio's wording.
 */
import type { SemanticContext } from './context.js';
import {
  asArray,
  asObject,
  checkExportTo,
  checkIstioFQDN,
  checkIstioIPSubnet,
  checkIstioWildcardDomain,
  checkLabelMap,
  checkPartialWildcard,
  checkPort,
  checkPortName,
  checkSelectorLabels,
  dryRunAnnotationUnsupported,
  isHttpProtocol,
  isIPAddress,
  isObject,
  isTcpProtocol,
  isTlsProtocol,
  parseProtocol,
} from './rules.js';
import { checkWorkloadEntryLike } from './workload-entry.js';

/** Annotation with which a user opts a ServiceEntry out of DNS auto-allocation (Istio's v2 allocator). */
const AUTO_ALLOCATE_ANNOTATION = 'networking.istio.io/enable-autoallocate-ip';

/** Istio's ValidateServiceEntry. */
export function validateServiceEntry(spec: unknown, ctx: SemanticContext): void {
  const se = asObject(spec);
  const dryRun = dryRunAnnotationUnsupported(ctx.metadata.annotations, ctx.resource.namespace, ctx.resource.name);
  if (dryRun) ctx.error(['metadata', 'annotations', 'istio.io/dry-run'], 'SNW0327', dryRun);

  const hosts = asArray(se.hosts);
  const endpoints = asArray(se.endpoints);
  const ports = asArray(se.ports);
  const addresses = asArray(se.addresses);
  const resolution = typeof se.resolution === 'string' ? se.resolution : 'NONE';
  const selector = se.workloadSelector;

  // Selector (ValidateAlphaWorkloadSelector): empty keys and wildcards are errors, no labels a warning.
  if (isObject(selector)) {
    for (const msg of checkSelectorLabels(selector.labels)) ctx.error(['spec', 'workloadSelector', 'labels'], 'SNW0316', msg);
    if (Object.keys(asObject(selector.labels)).length === 0) {
      ctx.warn(['spec', 'workloadSelector'], 'SNW0317', 'service entry: workload selector specified without labels, will be applied to all services in namespace');
    }
    if (se.endpoints !== undefined) {
      ctx.error(['spec', 'workloadSelector'], 'SNW0309', 'only one of WorkloadSelector or Endpoints is allowed in Service Entry');
    }
  }

  // Hosts.
  // (A hosts value of the wrong type is a structural error already.)
  if (se.hosts === undefined || se.hosts === null || (Array.isArray(se.hosts) && se.hosts.length === 0)) {
    ctx.error(['spec', 'hosts'], 'SNW0301', 'service entry must have at least one host');
  }
  hosts.forEach((h, i) => {
    if (typeof h !== 'string') return;
    if (h === '*') {
      ctx.error(['spec', 'hosts', i], 'SNW0300', `invalid host ${h}: a ServiceEntry host cannot be the full wildcard`);
      return;
    }
    const err = checkIstioWildcardDomain(h);
    if (err) ctx.error(['spec', 'hosts', i], 'SNW0300', err);
    const partial = checkPartialWildcard(h);
    if (partial) ctx.warn(['spec', 'hosts', i], 'SNW0320', partial);
  });

  // Addresses: IPs or CIDR blocks; CIDRs only for NONE/STATIC.
  let cidrFound = false;
  addresses.forEach((a, i) => {
    if (typeof a !== 'string') return;
    cidrFound ||= a.includes('/');
    const err = checkIstioIPSubnet(a);
    if (err) ctx.error(['spec', 'addresses', i], 'SNW0302', err);
  });
  if (cidrFound && resolution !== 'NONE' && resolution !== 'STATIC') {
    ctx.error(['spec', 'addresses'], 'SNW0303', 'CIDR addresses are allowed only for NONE/STATIC resolution types');
  }

  // Ports. Istio's v2 DNS auto-allocation gives an address to DNS-resolved entries with
  // concrete hosts and no addresses of their own (pilot/pkg/networking/serviceentry
  // ShouldV2AutoAllocateIP); without it, TCP ports on an address-less entry cannot be told apart.
  const autoAllocation =
    addresses.length === 0 &&
    resolution !== 'NONE' &&
    !hosts.some((h) => typeof h === 'string' && h.startsWith('*')) &&
    asObject(ctx.metadata.annotations)[AUTO_ALLOCATE_ANNOTATION] !== 'false';
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  let tcpWarned = false;
  ports.forEach((raw, i) => {
    const p = asObject(raw);
    const path = ['spec', 'ports', i];
    if (typeof p.name === 'string') {
      if (portNames.has(p.name)) ctx.error([...path, 'name'], 'SNW0305', `service entry port name "${p.name}" already defined`);
      portNames.add(p.name);
      const nameErr = checkPortName(p.name);
      if (nameErr) ctx.error([...path, 'name'], 'SNW0307', nameErr);
    }
    if (typeof p.number === 'number') {
      if (portNumbers.has(p.number)) ctx.error([...path, 'number'], 'SNW0306', `service entry port ${p.number} already defined`);
      portNumbers.add(p.number);
      const numErr = checkPort(p.number);
      if (numErr) ctx.error([...path, 'number'], 'SNW0304', numErr);
    }
    if (p.targetPort !== undefined && p.targetPort !== 0) {
      const tErr = checkPort(p.targetPort);
      if (tErr) ctx.error([...path, 'targetPort'], 'SNW0304', tErr);
      if (resolution === 'NONE') ctx.warn([...path, 'targetPort'], 'SNW0318', 'targetPort has no effect when resolution mode is NONE');
    }
    if (p.protocol !== undefined && parseProtocol(p.protocol) === undefined) {
      ctx.error([...path, 'protocol'], 'SNW0308', `unsupported protocol: ${String(p.protocol)}`);
    }
    if (addresses.length === 0 && !autoAllocation && !tcpWarned && (p.protocol === undefined || p.protocol === '' || p.protocol === 'TCP')) {
      tcpWarned = true;
      ctx.warn(['spec', 'addresses'], 'SNW0323', 'addresses are required for ports serving TCP (or unset) protocol when ISTIO_META_DNS_AUTO_ALLOCATE is not set on a proxy');
    }
  });

  // Resolution-specific rules.
  switch (resolution) {
    case 'NONE':
      if (endpoints.length !== 0 || se.endpoints !== undefined) {
        ctx.error(['spec', 'endpoints'], 'SNW0310', 'no endpoints should be provided for resolution type none');
      }
      if (selector !== undefined) ctx.warn(['spec', 'workloadSelector'], 'SNW0318', 'workloadSelector should not be set when resolution mode is NONE');
      break;
    case 'STATIC':
      endpoints.forEach((ep, i) => {
        if (!isObject(ep)) return;
        checkWorkloadEntryLike(ep, ['spec', 'endpoints', i], ctx, { servicePorts: portNames, allowFQDN: false });
      });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        hosts.forEach((h, i) => {
          if (typeof h === 'string' && h !== '*' && checkIstioFQDN(h)) {
            ctx.error(['spec', 'hosts', i], 'SNW0311', `hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}`);
          }
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
        ctx.error(['spec', 'endpoints'], 'SNW0310', `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      }
      endpoints.forEach((raw, i) => {
        if (!isObject(raw)) return;
        const path = ['spec', 'endpoints', i];
        const addr = raw.address;
        if (typeof addr === 'string' && !isIPAddress(addr) && checkIstioFQDN(addr)) {
          ctx.error([...path, 'address'], 'SNW0312', `endpoint address "${addr}" is not a valid FQDN or an IP address`);
        }
        for (const msg of checkLabelMap(raw.labels)) ctx.error([...path, 'labels'], 'SNW0315', msg);
        for (const [name, port] of Object.entries(asObject(raw.ports))) {
          if (!portNames.has(name)) ctx.error([...path, 'ports', name], 'SNW0313', `endpoint port ${String(port)} is not defined by the service entry`);
          const nameErr = checkPortName(name);
          if (nameErr) ctx.error([...path, 'ports', name], 'SNW0307', nameErr);
          const portErr = checkPort(port);
          if (portErr) ctx.error([...path, 'ports', name], 'SNW0304', portErr);
        }
      });
      if (selector !== undefined) ctx.warn(['spec', 'workloadSelector'], 'SNW0318', `workloadSelector should not be set when resolution mode is ${resolution}`);
      if (addresses.length > 0 && hosts.length > 1 && ports.some((p) => isTcpProtocol(parseProtocol(asObject(p).protocol)))) {
        ctx.warn(['spec', 'hosts'], 'SNW0318', 'service entry can not have more than one host specified simultaneously with address and tcp port');
      }
      break;
    case 'DYNAMIC_DNS':
      // The proxy resolves the requested name at request time, so the entry names a
      // family of hosts; a concrete host belongs under DNS.
      hosts.forEach((h, i) => {
        if (typeof h === 'string' && !h.startsWith('*.')) {
          ctx.error(['spec', 'hosts', i], 'SNW0324', 'host must be wildcarded for resolution mode DYNAMIC_DNS');
        }
      });
      break;
    default:
      break; // an unknown value is a structural error already
  }

  // Several hosts on plain TCP cannot be told apart unless the hosts are ignored (NONE).
  if (resolution !== 'NONE' && hosts.length > 1) {
    const plain = ports.find((p) => {
      const proto = parseProtocol(asObject(p).protocol);
      return !isHttpProtocol(proto) && !isTlsProtocol(proto);
    });
    if (plain !== undefined) ctx.error(['spec', 'ports'], 'SNW0321', 'multiple hosts provided with non-HTTP, non-TLS ports');
  }

  for (const e of checkExportTo(ctx.resource.namespace, se.exportTo, true)) {
    ctx.error(e.index < 0 ? ['spec', 'exportTo'] : ['spec', 'exportTo', e.index], 'SNW0319', e.message);
  }
}
