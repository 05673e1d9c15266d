/**
 * Istio's DestinationRule rules, after istio/istio pkg/config/validation/validation.go
 * (ValidateDestinationRule, validateTrafficPolicy, validateConnectionPool,
 * validateOutlierDetection, validateLoadBalancer, validatePortTrafficPolicies) and
 * agent/validation.go (ValidateTLS, ValidateLocalityLbSetting), with their wording.
 */
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import {
  asArray,
  asObject,
  checkExportTo,
  checkIstioFQDN,
  checkIstioWildcardDomain,
  checkLabelMap,
  checkPercentage,
  checkPort,
  checkSelectorLabels,
  isIPAddress,
  isObject,
  parseDurationMs,
} from './rules.js';
import { checkOneOf, checkSubsetName, validateDurationField } from './virtual-service.js';

type Obj = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const has = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

/** Istio's DestinationRule rules (ValidateDestinationRule). */
export function validateDestinationRule(spec: unknown, ctx: SemanticContext): void {
  const dr = asObject(spec);
  const host = typeof dr.host === 'string' ? dr.host : '';
  const hostErr = checkIstioWildcardDomain(host);
  if (hostErr) ctx.error(['spec', 'host'], 'SNW0201', hostErr);

  validateTrafficPolicy(ctx, dr.trafficPolicy, ['spec', 'trafficPolicy']);

  const names = new Set<string>();
  asArray(dr.subsets).forEach((subset, i) => {
    const at = ['spec', 'subsets', i];
    if (!isObject(subset)) return ctx.error(at, 'SNW0240', 'subset may not be null');
    const name = typeof subset.name === 'string' ? subset.name : '';
    if (names.has(name)) ctx.error([...at, 'name'], 'SNW0240', `duplicate subset names: ${name}`);
    names.add(name);
    const nameErr = checkSubsetName(subset.name);
    if (nameErr) ctx.error([...at, 'name'], 'SNW0240', nameErr);
    for (const msg of checkLabelMap(subset.labels)) ctx.error([...at, 'labels'], 'SNW0240', msg);
    validateTrafficPolicy(ctx, subset.trafficPolicy, [...at, 'trafficPolicy']);
  });

  const namespace = ctx.resource.namespace;
  for (const e of checkExportTo(namespace, dr.exportTo, false)) {
    ctx.error(e.index < 0 ? ['spec', 'exportTo'] : ['spec', 'exportTo', e.index], 'SNW0205', e.message);
  }
  // A rule with a workload selector only applies to workloads of its own namespace.
  const exportTo = new Set(asArray(dr.exportTo).filter((e): e is string => typeof e === 'string').map((e) => (e === '.' ? namespace : e)));
  if (isObject(dr.workloadSelector) && exportTo.size > 0) {
    if (!exportTo.has(namespace)) {
      ctx.error(['spec', 'exportTo'], 'SNW0205', 'destination rule with workload selector cannot have exportTo beyond current namespace');
    } else if (exportTo.size > 1) {
      ctx.error(['spec', 'exportTo'], 'SNW0205', 'destination rule with workload selector cannot have multiple entries in exportTo');
    }
  }

  if (isObject(dr.workloadSelector)) {
    const labels = dr.workloadSelector.matchLabels;
    for (const msg of checkSelectorLabels(labels)) ctx.error(['spec', 'workloadSelector', 'matchLabels'], 'SNW0249', msg);
    if (Object.keys(asObject(labels)).length === 0) ctx.warn(['spec', 'workloadSelector'], 'SNW0248', 'workload selector specified without labels');
  }
}

// === traffic policy ===

function validateTrafficPolicy(ctx: SemanticContext, policy: unknown, path: FieldPath): void {
  if (!isObject(policy)) return;
  const fields = ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'];
  if (!fields.some((f) => policy[f] !== undefined && policy[f] !== null)) {
    ctx.error(path, 'SNW0241', 'traffic policy must have at least one field');
    return;
  }
  if (isObject(policy.tunnel) && isObject(policy.proxyProtocol)) {
    ctx.error(path, 'SNW0247', 'tunnel and proxyProtocol must not be set together');
    return;
  }
  validateOutlierDetection(ctx, policy.outlierDetection, [...path, 'outlierDetection']);
  validateConnectionPool(ctx, policy.connectionPool, [...path, 'connectionPool']);
  validateLoadBalancer(ctx, policy.loadBalancer, policy.outlierDetection, [...path, 'loadBalancer']);
  validateClientTLS(ctx, policy.tls, [...path, 'tls']);
  asArray(policy.portLevelSettings).forEach((pls, i) => validatePortTrafficPolicy(ctx, pls, [...path, 'portLevelSettings', i]));
  validateTunnel(ctx, policy.tunnel, [...path, 'tunnel']);
  if (isObject(policy.retryBudget)) validateDurationField(ctx, policy.retryBudget.budgetInterval, [...path, 'retryBudget', 'budgetInterval']);
}

function validatePortTrafficPolicy(ctx: SemanticContext, pls: unknown, path: FieldPath): void {
  if (!isObject(pls)) return ctx.error(path, 'SNW0246', 'traffic policy may not be null');
  if (!isObject(pls.port)) ctx.error([...path, 'port'], 'SNW0246', 'portTrafficPolicy must have valid port');
  else if (pls.port.number !== undefined) {
    const err = checkPort(pls.port.number);
    if (err) ctx.error([...path, 'port', 'number'], 'SNW0246', err);
  }
  if (!['outlierDetection', 'connectionPool', 'loadBalancer', 'tls'].some((f) => isObject(pls[f]))) {
    ctx.error(path, 'SNW0241', 'port traffic policy must have at least one field');
    return;
  }
  validateOutlierDetection(ctx, pls.outlierDetection, [...path, 'outlierDetection']);
  validateConnectionPool(ctx, pls.connectionPool, [...path, 'connectionPool']);
  validateLoadBalancer(ctx, pls.loadBalancer, pls.outlierDetection, [...path, 'loadBalancer']);
  validateClientTLS(ctx, pls.tls, [...path, 'tls']);
}

// === connection pool (also Sidecar's) ===

/** validateConnectionPool; exported for Sidecar's inbound pools. */
export function validateConnectionPool(ctx: SemanticContext, pool: unknown, path: FieldPath): void {
  if (!isObject(pool)) return;
  if (!isObject(pool.http) && !isObject(pool.tcp)) {
    ctx.error(path, 'SNW0241', 'connection pool must have at least one field');
    return;
  }
  const nonNegative = (obj: Obj, field: string, what: string, at: FieldPath) => {
    const v = num(obj[field]);
    if (v !== undefined && v < 0) ctx.error([...at, field], 'SNW0242', `${what} must be non-negative`);
  };
  if (isObject(pool.http)) {
    const h = pool.http;
    const at = [...path, 'http'];
    nonNegative(h, 'http1MaxPendingRequests', 'http1 max pending requests', at);
    nonNegative(h, 'http2MaxRequests', 'http2 max requests', at);
    nonNegative(h, 'maxRequestsPerConnection', 'max requests per connection', at);
    nonNegative(h, 'maxRetries', 'max retries', at);
    nonNegative(h, 'maxConcurrentStreams', 'max concurrent streams', at);
    validateDurationField(ctx, h.idleTimeout, [...at, 'idleTimeout']);
    if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol === true) {
      ctx.error([...at, 'useClientProtocol'], 'SNW0242', 'use client protocol must not be true when H2UpgradePolicy is UPGRADE');
    }
    // The CRD requires keepalive durations of at least 1ms.
    if (isObject(h.http2KeepAlive)) {
      validateDurationField(ctx, h.http2KeepAlive.interval, [...at, 'http2KeepAlive', 'interval']);
      validateDurationField(ctx, h.http2KeepAlive.timeout, [...at, 'http2KeepAlive', 'timeout']);
    }
  }
  if (isObject(pool.tcp)) {
    const t = pool.tcp;
    const at = [...path, 'tcp'];
    nonNegative(t, 'maxConnections', 'max connections', at);
    validateDurationField(ctx, t.connectTimeout, [...at, 'connectTimeout']);
    validateDurationField(ctx, t.maxConnectionDuration, [...at, 'maxConnectionDuration']);
    // An idle timeout of 0s turns the timeout off.
    if (t.idleTimeout !== undefined && parseDurationMs(t.idleTimeout) !== 0) validateDurationField(ctx, t.idleTimeout, [...at, 'idleTimeout']);
    if (isObject(t.tcpKeepalive)) {
      validateDurationField(ctx, t.tcpKeepalive.time, [...at, 'tcpKeepalive', 'time']);
      validateDurationField(ctx, t.tcpKeepalive.interval, [...at, 'tcpKeepalive', 'interval']);
    }
  }
}

// === outlier detection ===

function validateOutlierDetection(ctx: SemanticContext, outlier: unknown, path: FieldPath): void {
  if (!isObject(outlier)) return;
  validateDurationField(ctx, outlier.baseEjectionTime, [...path, 'baseEjectionTime']);
  if (num(outlier.consecutiveErrors) !== undefined && outlier.consecutiveErrors !== 0) {
    ctx.warn(
      [...path, 'consecutiveErrors'],
      'SNW0108',
      'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead',
    );
  }
  if (outlier.splitExternalLocalOriginErrors !== true && (num(outlier.consecutiveLocalOriginFailures) ?? 0) > 0) {
    ctx.error(
      [...path, 'consecutiveLocalOriginFailures'],
      'SNW0243',
      'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false',
    );
  }
  validateDurationField(ctx, outlier.interval, [...path, 'interval']);
  for (const field of ['maxEjectionPercent', 'minHealthPercent'] as const) {
    if (outlier[field] === undefined) continue;
    const err = checkPercentage(outlier[field]);
    if (err) ctx.error([...path, field], 'SNW0243', err);
  }
}

// === load balancer ===

/** Envoy's isPrime (source/common/common/utility.cc), which Istio copies. */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  const limit = Math.floor(Math.sqrt(x));
  for (let f = 3; f <= limit; f += 2) if (x % f === 0) return false;
  return true;
}

function validateLoadBalancer(ctx: SemanticContext, lb: unknown, outlier: unknown, path: FieldPath): void {
  if (!isObject(lb)) return;
  checkOneOf(ctx, lb, ['simple', 'consistentHash'], path);
  if (isObject(lb.consistentHash)) {
    const ch = lb.consistentHash;
    const at = [...path, 'consistentHash'];
    checkOneOf(ctx, ch, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'], at);
    checkOneOf(ctx, ch, ['ringHash', 'maglev'], at);
    if (isObject(ch.httpCookie)) {
      const cookie = ch.httpCookie;
      if (!has(cookie.name)) ctx.error([...at, 'httpCookie', 'name'], 'SNW0244', 'name required for HttpCookie');
      validateDurationField(ctx, cookie.ttl !== undefined && parseDurationMs(cookie.ttl) === 0 ? undefined : cookie.ttl, [...at, 'httpCookie', 'ttl']);
      const seen = new Set<string>();
      asArray(cookie.attributes).forEach((attr, i) => {
        const name = asObject(attr).name;
        if (typeof name !== 'string') return;
        if (name === '') ctx.error([...at, 'httpCookie', 'attributes', i, 'name'], 'SNW0244', 'cookie attribute name cannot be empty');
        else if (seen.has(name)) ctx.error([...at, 'httpCookie', 'attributes', i, 'name'], 'SNW0244', `duplicate cookie attribute name: ${name}`);
        seen.add(name);
      });
    }
    if (num(ch.minimumRingSize) !== undefined && ch.minimumRingSize !== 0) {
      ctx.warn([...at, 'minimumRingSize'], 'SNW0108', "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead");
      if (isObject(ch.ringHash) || isObject(ch.maglev)) {
        ctx.error([...at, 'minimumRingSize'], 'SNW0244', 'only one of MinimumRingSize or Maglev/Ringhash can be specified');
      }
    }
    if (isObject(ch.maglev)) {
      const size = num(ch.maglev.tableSize) ?? 0;
      const sp = [...at, 'maglev', 'tableSize'];
      if (size === 0) ctx.error(sp, 'SNW0244', 'tableSize must be set for maglev');
      if (size >= 5000011) ctx.error(sp, 'SNW0244', 'tableSize must be less than 5000011 for maglev');
      if (!isPrime(size)) ctx.error(sp, 'SNW0244', 'tableSize must be a prime number for maglev');
    }
  }
  validateLocalityLbSetting(ctx, lb.localityLbSetting, outlier, [...path, 'localityLbSetting']);
  if (isObject(lb.warmup)) {
    const w = lb.warmup;
    if (w.duration === undefined) ctx.error([...path, 'warmup', 'duration'], 'SNW0244', 'duration is required');
    else validateDurationField(ctx, w.duration, [...path, 'warmup', 'duration']);
    if ((num(w.minimumPercent) ?? 0) > 100) ctx.error([...path, 'warmup', 'minimumPercent'], 'SNW0244', 'minimumPercent value should be less than or equal to 100');
    if (num(w.aggression) !== undefined && (w.aggression as number) < 1) {
      ctx.error([...path, 'warmup', 'aggression'], 'SNW0244', 'aggression should be greater than or equal to 1');
    }
  }
  validateDurationField(ctx, lb.warmupDurationSecs, [...path, 'warmupDurationSecs']);
}

/** agent.ValidateLocalityLbSetting. */
function validateLocalityLbSetting(ctx: SemanticContext, lb: unknown, outlier: unknown, path: FieldPath): void {
  if (!isObject(lb)) return;
  const distribute = asArray(lb.distribute);
  const failover = asArray(lb.failover);
  const failoverPriority = asArray(lb.failoverPriority);
  const err = (msg: string, at: FieldPath = path) => ctx.error(at, 'SNW0244', msg);
  if (distribute.length > 0 && failover.length > 0) return err("can not simultaneously specify 'distribute' and 'failover'");
  if (failover.length > 0) {
    const topology = ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'];
    const bad = failoverPriority.find((l) => typeof l === 'string' && topology.includes(l));
    if (bad) return err(`can not simultaneously set 'failover' and topology label '${String(bad)}' in 'failover_priority'`, [...path, 'failoverPriority']);
  }
  const sources: string[] = [];
  for (let i = 0; i < distribute.length; i++) {
    const d = asObject(distribute[i]);
    sources.push(typeof d.from === 'string' ? d.from : '');
    let total = 0;
    for (const weight of Object.values(asObject(d.to))) {
      const w = num(weight) ?? 0;
      if (w <= 0 || w > 100) return err('locality weight must be in range [1, 100]', [...path, 'distribute', i, 'to']);
      total += w;
    }
    if (total !== 100) return err(`total locality weight ${total} != 100`, [...path, 'distribute', i, 'to']);
    const destErr = checkLocalities(Object.keys(asObject(d.to)));
    if (destErr) err(destErr, [...path, 'distribute', i, 'to']);
  }
  const srcErr = checkLocalities(sources);
  if (srcErr) err(srcErr, [...path, 'distribute']);
  if ((failover.length > 0 || failoverPriority.length > 0) && !isObject(outlier)) {
    ctx.warn(path, 'SNW0244', 'outlier detection policy must be provided for failover');
  }
  failover.forEach((f, i) => {
    const from = String(asObject(f).from ?? '');
    const to = String(asObject(f).to ?? '');
    const at = [...path, 'failover', i];
    if (from === to) err('locality lb failover settings must specify different regions', at);
    if (from.includes('/') || to.includes('/')) err('locality lb failover only specify region', at);
    if (from.includes('*') || to.includes('*')) err("locality lb failover region should not contain '*' wildcard", at);
  });
}

/** validateLocalities: `region[/zone[/subzone]]`, one trailing `*` at most, no overlaps. */
function checkLocalities(localities: string[]): string | undefined {
  const tree = new Map<string, Map<string, Set<string>>>();
  for (const locality of localities) {
    const stars = (locality.match(/\*/g) ?? []).length;
    if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) return `locality ${locality} wildcard '*' number can not exceed 1 and must be in the end`;
    if (tree.has('*')) return `locality ${locality} overlap with previous specified ones`;
    const items = locality.split('/').slice(0, 3);
    if (locality.split('/').length > 3) items[2] = locality.split('/').slice(2).join('/');
    if (items.some((x) => x === '')) return `locality ${locality} must not contain empty region/zone/subzone info`;
    const [region, zone, subzone] = items;
    const overlap = `locality ${locality} overlap with previous specified ones`;
    const r = tree.get(region);
    if (items.length === 1) {
      if (r) return overlap;
      tree.set(region, new Map([['*', new Set(['*'])]]));
    } else if (items.length === 2) {
      if (r) {
        if (r.has('*') || r.has(zone)) return overlap;
        r.set(zone, new Set(['*']));
      } else tree.set(region, new Map([[zone, new Set(['*'])]]));
    } else {
      if (r) {
        if (r.has('*')) return overlap;
        const z = r.get(zone);
        if (z) {
          if (z.has('*') || z.has(subzone)) return overlap;
          z.add(subzone);
        } else r.set(zone, new Set([subzone]));
      } else tree.set(region, new Map([[zone, new Set([subzone])]]));
    }
  }
  return undefined;
}

// === client TLS (agent.ValidateTLS) ===

function validateClientTLS(ctx: SemanticContext, tls: unknown, path: FieldPath): void {
  if (!isObject(tls)) return;
  const mode = tls.mode ?? 'DISABLE';
  if (tls.insecureSkipVerify === true) {
    if (mode === 'SIMPLE' && (has(tls.caCertificates) || has(tls.credentialName) || tls.subjectAltNames !== undefined)) {
      ctx.error([...path, 'insecureSkipVerify'], 'SNW0245', 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true');
    }
    if (mode === 'MUTUAL' && (has(tls.caCertificates) || tls.subjectAltNames !== undefined)) {
      ctx.error([...path, 'insecureSkipVerify'], 'SNW0245', 'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true');
    }
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && has(tls.credentialName)) {
    // The credential holds the certificates; inline ones would be ignored.
    if (has(tls.clientCertificate) || has(tls.caCertificates) || has(tls.privateKey) || has(tls.caCrl)) {
      ctx.error([...path, 'credentialName'], 'SNW0245', 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set');
    }
    return;
  }
  if (mode === 'MUTUAL') {
    if (!has(tls.clientCertificate)) ctx.error([...path, 'clientCertificate'], 'SNW0245', 'client certificate required for mutual tls');
    if (!has(tls.privateKey)) ctx.error([...path, 'privateKey'], 'SNW0245', 'private key required for mutual tls');
  }
}

// === tunnel ===

function validateTunnel(ctx: SemanticContext, tunnel: unknown, path: FieldPath): void {
  if (!isObject(tunnel)) return;
  if (has(tunnel.protocol) && tunnel.protocol !== 'CONNECT' && tunnel.protocol !== 'POST') {
    ctx.error([...path, 'protocol'], 'SNW0247', 'tunnel protocol must be "CONNECT" or "POST"');
  }
  const host = typeof tunnel.targetHost === 'string' ? tunnel.targetHost : '';
  const fqdnErr = checkIstioFQDN(host);
  if (fqdnErr && !isIPAddress(host)) {
    ctx.error([...path, 'targetHost'], 'SNW0247', `tunnel target host must be valid FQDN or IP address: ${fqdnErr}; ${host} is not a valid IP`);
  }
  const portErr = checkPort(tunnel.targetPort ?? 0);
  if (portErr) ctx.error([...path, 'targetPort'], 'SNW0247', `tunnel target port is invalid: ${portErr}`);
}
