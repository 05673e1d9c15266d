/**
 * Istio's Sidecar rules, after istio/istio pkg/config/validation/validation.go (ValidateSidecar,
 * validateSidecarIngressPortAndBind, validateSidecarEgressPortBindAndCaptureMode,
 * validateSidecarOutboundTrafficPolicy), with their wording.
 */
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import {
  asArray,
  asObject,
  checkIstioFQDN,
  checkIstioIPAddress,
  checkPort,
  checkPortName,
  checkSelectorLabels,
  checkUnixAddress,
  isHttpProtocol,
  isObject,
  isTlsProtocol,
  parseProtocol,
} from './rules.js';
import { validateConnectionPool } from './destination-rule.js';
import { checkNamespaceSlashHost, validateServerTLS } from './gateway.js';
import { validateDestination } from './virtual-service.js';

type Obj = Record<string, unknown>;
const has = (v: unknown): boolean => v !== undefined && v !== null && v !== '';
const UNIX_PREFIX = 'unix://';

/** Istio's Sidecar rules (ValidateSidecar). */
export function validateSidecar(spec: unknown, ctx: SemanticContext): void {
  const sc = asObject(spec);

  if (isObject(sc.workloadSelector)) {
    const labels = sc.workloadSelector.labels;
    for (const msg of checkSelectorLabels(labels)) ctx.error(['spec', 'workloadSelector', 'labels'], 'SNW0249', msg);
    if (Object.keys(asObject(labels)).length === 0) {
      ctx.warn(['spec', 'workloadSelector'], 'SNW0248', 'sidecar: workload selector specified without labels, will be applied to all services in namespace');
    }
  }

  const ingress = asArray(sc.ingress);
  const egress = asArray(sc.egress);
  if (ingress.length === 0 && egress.length === 0 && !isObject(sc.outboundTrafficPolicy) && !isObject(sc.inboundConnectionPool)) {
    ctx.error(['spec'], 'SNW0280', 'sidecar: empty configuration provided');
    return;
  }

  const ingressPorts = new Set<number>();
  ingress.forEach((listener, i) => {
    const base = ['spec', 'ingress', i];
    if (!isObject(listener)) return ctx.error(base, 'SNW0282', 'sidecar: ingress may not be null');
    if (!isObject(listener.port)) return ctx.error([...base, 'port'], 'SNW0282', 'sidecar: port is required for ingress listeners');
    validateIngressListener(ctx, listener, listener.port, base, ingressPorts);
  });

  validateConnectionPool(ctx, sc.inboundConnectionPool, ['spec', 'inboundConnectionPool']);

  const egressPorts = new Set<number>();
  const udsBinds = new Set<string>();
  let catchAllFound = false;
  egress.forEach((listener, i) => {
    const base = ['spec', 'egress', i];
    if (!isObject(listener)) return ctx.error(base, 'SNW0282', 'egress listener may not be null');
    // One catch-all listener (no port) at most, and it must come last.
    if (!isObject(listener.port)) {
      if (catchAllFound) {
        ctx.error(base, 'SNW0282', 'sidecar: egress can have only one listener with empty port');
        return;
      }
      if (i === egress.length - 1) catchAllFound = true;
      else ctx.error(base, 'SNW0282', 'sidecar: the egress listener with empty port should be the last listener in the list');
    } else {
      const port = listener.port;
      if (typeof port.targetPort === 'number' && port.targetPort > 0) ctx.error([...base, 'port', 'targetPort'], 'SNW0282', 'targetPort has no impact on Sidecars');
      const bind = typeof listener.bind === 'string' ? listener.bind : '';
      validateEgressPort(ctx, port, bind, listener.captureMode, base);
      const number = typeof port.number === 'number' ? port.number : 0;
      if (number === 0) {
        if (udsBinds.has(bind)) ctx.error([...base, 'bind'], 'SNW0282', 'sidecar: unix domain socket values for listeners must be unique');
        udsBinds.add(bind);
      } else {
        if (egressPorts.has(number)) ctx.error([...base, 'port', 'number'], 'SNW0282', 'sidecar: ports on IP bound listeners must be unique');
        egressPorts.add(number);
      }
    }
    validateEgressHosts(ctx, listener.hosts, [...base, 'hosts']);
  });

  validateOutboundTrafficPolicy(ctx, sc.outboundTrafficPolicy, ['spec', 'outboundTrafficPolicy']);
}

function checkProtocol(protocol: unknown): string | undefined {
  // An empty protocol means "sniff".
  if (!has(protocol) || parseProtocol(protocol) !== undefined) return undefined;
  return `unsupported protocol: ${String(protocol)}`;
}

function validateIngressListener(ctx: SemanticContext, listener: Obj, port: Obj, base: FieldPath, seenPorts: Set<number>): void {
  if (typeof port.targetPort === 'number' && port.targetPort > 0) ctx.error([...base, 'port', 'targetPort'], 'SNW0282', 'targetPort has no impact on Sidecars');
  if (has(port.name)) {
    const err = checkPortName(String(port.name));
    if (err) ctx.error([...base, 'port', 'name'], 'SNW0282', err);
  }
  const protoErr = checkProtocol(port.protocol);
  if (protoErr) ctx.error([...base, 'port', 'protocol'], 'SNW0282', protoErr);
  const number = typeof port.number === 'number' ? port.number : 0;
  const portErr = checkPort(number);
  if (portErr) ctx.error([...base, 'port', 'number'], 'SNW0282', portErr);
  if (has(listener.bind)) {
    const err = checkIstioIPAddress(String(listener.bind));
    if (err) ctx.error([...base, 'bind'], 'SNW0282', err);
  }
  if (seenPorts.has(number)) ctx.error([...base, 'port', 'number'], 'SNW0282', 'sidecar: ports on IP bound listeners must be unique');
  seenPorts.add(number);

  if (has(listener.defaultEndpoint)) validateDefaultEndpoint(ctx, String(listener.defaultEndpoint), [...base, 'defaultEndpoint']);

  if (isObject(listener.tls)) {
    const tls = listener.tls;
    const at = [...base, 'tls'];
    if (asArray(tls.subjectAltNames).length > 0) ctx.error([...at, 'subjectAltNames'], 'SNW0282', 'sidecar: subjectAltNames is not supported in ingress tls');
    if (tls.httpsRedirect === true) ctx.error([...at, 'httpsRedirect'], 'SNW0282', 'sidecar: httpsRedirect is not supported');
    if (has(tls.credentialName)) ctx.error([...at, 'credentialName'], 'SNW0282', 'sidecar: credentialName is not currently supported');
    if (asArray(tls.credentialNames).length > 0) ctx.error([...at, 'credentialNames'], 'SNW0282', 'sidecar: credentialNames is not currently supported');
    if (asArray(tls.tlsCertificates).length > 0) ctx.error([...at, 'tlsCertificates'], 'SNW0282', 'sidecar: tls_certificates is not currently supported');
    if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'AUTO_PASSTHROUGH') {
      ctx.error([...at, 'mode'], 'SNW0282', `configuration is invalid: cannot set mode to ${String(tls.mode)} in sidecar ingress tls`);
    }
    if (!isTlsProtocol(parseProtocol(port.protocol))) ctx.error(at, 'SNW0282', 'server cannot have TLS settings for non HTTPS/TLS ports');
    validateServerTLS(ctx, tls, at);
  }

  validateConnectionPool(ctx, listener.connectionPool, [...base, 'connectionPool']);
  if (isObject(listener.connectionPool) && isObject(listener.connectionPool.http) && !isHttpProtocol(parseProtocol(port.protocol))) {
    ctx.warn(
      [...base, 'connectionPool', 'http'],
      'SNW0285',
      `sidecar: HTTP connection pool settings are configured for port ${number} ("${String(port.name ?? '')}") but its protocol is not HTTP (${String(port.protocol ?? '')}); only TCP settings will apply`,
    );
  }
}

/** defaultEndpoint: `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>`, `:<port>` or `unix://path`. */
function validateDefaultEndpoint(ctx: SemanticContext, endpoint: string, path: FieldPath): void {
  if (endpoint.startsWith(UNIX_PREFIX)) {
    const err = checkUnixAddress(endpoint.slice(UNIX_PREFIX.length));
    if (err) ctx.error(path, 'SNW0282', err);
    return;
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(endpoint);
  if (!m) {
    ctx.error(path, 'SNW0282', `address ${endpoint}: missing port in address`);
    return;
  }
  const host = m[1] ?? m[2] ?? '';
  const port = m[3];
  if (host !== '' && !['127.0.0.1', '0.0.0.0', '::1', '::'].includes(host)) {
    ctx.error(path, 'SNW0282', 'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset');
  }
  if (!/^-?\d+$/.test(port)) ctx.error(path, 'SNW0282', `sidecar: defaultEndpoint port (${port}) is not a number`);
  else {
    const err = checkPort(Number(port));
    if (err) ctx.error(path, 'SNW0282', err);
  }
}

function validateEgressPort(ctx: SemanticContext, port: Obj, bind: string, captureMode: unknown, base: FieldPath): void {
  const at = [...base, 'port'];
  if (has(port.name)) {
    const err = checkPortName(String(port.name));
    if (err) ctx.error([...at, 'name'], 'SNW0282', err);
  }
  const protoErr = checkProtocol(port.protocol);
  if (protoErr) ctx.error([...at, 'protocol'], 'SNW0282', protoErr);
  const number = typeof port.number === 'number' ? port.number : 0;
  if (number === 0) {
    // Port 0: the listener is a unix domain socket named by bind.
    if (!bind.startsWith(UNIX_PREFIX)) ctx.error([...base, 'bind'], 'SNW0282', 'sidecar: ports with 0 value must have a unix domain socket bind address');
    else {
      const err = checkUnixAddress(bind.slice(UNIX_PREFIX.length));
      if (err) ctx.error([...base, 'bind'], 'SNW0282', err);
    }
    if (captureMode !== undefined && captureMode !== 'DEFAULT' && captureMode !== 'NONE') {
      ctx.error([...base, 'captureMode'], 'SNW0282', 'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners');
    }
    return;
  }
  const err = checkPort(number);
  if (err) ctx.error([...at, 'number'], 'SNW0282', err);
  if (bind !== '') {
    const bindErr = checkIstioIPAddress(bind);
    if (bindErr) ctx.error([...base, 'bind'], 'SNW0282', bindErr);
  }
}

/** Egress hosts are `namespace/dnsName`; repeats and `*\/*` beside others are warned. */
function validateEgressHosts(ctx: SemanticContext, hosts: unknown, path: FieldPath): void {
  const list = asArray(hosts);
  if (list.length === 0) {
    ctx.error(path, 'SNW0281', 'sidecar: egress listener must contain at least one host');
    return;
  }
  const byNamespace = new Map<string, Set<string>>();
  list.forEach((h, i) => {
    if (typeof h !== 'string') return;
    const slash = h.indexOf('/');
    if (slash >= 0) {
      const ns = h.slice(0, slash) === '.' ? ctx.resource.namespace : h.slice(0, slash);
      const svc = h.slice(slash + 1);
      const seen = byNamespace.get(ns) ?? new Set<string>();
      if (svc !== '*' ? seen.has(svc) || seen.has('*') : seen.size > 0) ctx.warn([...path, i], 'SNW0284', `duplicated egress host: ${h}`);
      seen.add(svc);
      byNamespace.set(ns, seen);
    }
    for (const msg of checkNamespaceSlashHost(h, false)) ctx.error([...path, i], 'SNW0281', msg);
  });
  if (byNamespace.get('*')?.has('*') && byNamespace.size !== 1) {
    ctx.warn(path, 'SNW0284', '`*/*` host select all resources, no other hosts can be added');
  }
}

function validateOutboundTrafficPolicy(ctx: SemanticContext, policy: unknown, path: FieldPath): void {
  if (!isObject(policy) || !isObject(policy.egressProxy)) return;
  const proxy = policy.egressProxy;
  if (policy.mode !== 'ALLOW_ANY') {
    ctx.error([...path, 'egressProxy'], 'SNW0283', 'sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode');
    return;
  }
  const hostErr = checkIstioFQDN(typeof proxy.host === 'string' ? proxy.host : '');
  if (hostErr) ctx.error([...path, 'egressProxy', 'host'], 'SNW0283', hostErr);
  if (!isObject(proxy.port)) {
    ctx.error([...path, 'egressProxy', 'port'], 'SNW0283', 'sidecar: egress_proxy port must be non-nil');
    return;
  }
  validateDestination(ctx, proxy, [...path, 'egressProxy'], 'SNW0283');
}
