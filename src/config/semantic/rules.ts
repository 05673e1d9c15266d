/**
 * Building blocks of Istio's semantic rules, shared by every kind's validator
 * (istio/istio pkg/config/validation/agent/validation.go and validation.go). Each returns an
 * error message, or undefined when the value is fine, so callers decide code and path.
 */
import { RE2JS } from 're2js';
import { isIP } from 'node:net';

// === durations ===

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a protobuf Duration as Istio's YAML writes it (`1s`, `0.5s`, `100ms`, `1m`, `1h`,
 * also Go-style compounds like `1m30s`). Returns milliseconds, or undefined when it is not a
 * duration.
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  let rest = value.trim();
  let total = 0;
  let sign = 1;
  if (rest.startsWith('-')) {
    sign = -1;
    rest = rest.slice(1);
  }
  const part = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/;
  while (rest) {
    const m = part.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]];
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

/** Istio's ValidateDuration: at least 1 ms and whole milliseconds. */
export function checkDuration(value: unknown): string | undefined {
  const ms = parseDurationMs(value);
  if (ms === undefined) return `invalid duration "${String(value)}": use a number and a unit, like "1s", "500ms" or "1m"`;
  if (ms < 1) return 'duration must be greater than 1ms';
  if (Math.abs(ms - Math.round(ms)) > 1e-9) return 'only durations to ms precision are supported';
  return undefined;
}

/** A duration that may also be zero (Istio's ValidateDurationRange-style checks vary; callers pick). */
export function checkDurationAllowZero(value: unknown): string | undefined {
  const ms = parseDurationMs(value);
  if (ms === undefined) return `invalid duration "${String(value)}": use a number and a unit, like "1s", "500ms" or "1m"`;
  if (ms < 0) return 'duration must not be negative';
  if (Math.abs(ms - Math.round(ms)) > 1e-9) return 'only durations to ms precision are supported';
  return undefined;
}

// === hosts and names ===

const DNS1123_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const DNS1123_LABEL_MAX = 63;
const DNS1123_SUBDOMAIN_MAX = 253;

/** Istio's ValidateFQDN / CheckDNS1123Label-based domain check. */
export function checkDomainName(domain: string): string | undefined {
  if (domain.length === 0) return 'empty domain name not allowed';
  if (domain.length > 255) return `domain name "${domain}" too long (max 255)`;
  const labels = domain.split('.');
  // A trailing dot (absolute name) is allowed.
  if (labels[labels.length - 1] === '' && labels.length > 1) labels.pop();
  for (const label of labels) {
    if (label.length > DNS1123_LABEL_MAX || !DNS1123_LABEL.test(label)) {
      return `domain name "${domain}" invalid (label "${label}" invalid)`;
    }
  }
  return undefined;
}

/**
 * Istio's ValidateWildcardDomain: a domain, optionally starting with `*` or `*.`; `*` alone
 * is allowed. Partial wildcards (`foo*.com`, `*foo.com`) are not.
 */
export function checkWildcardDomain(domain: string): string | undefined {
  if (domain.length === 0) return 'empty domain name not allowed';
  if (domain.length > DNS1123_SUBDOMAIN_MAX) return `domain name "${domain}" too long (max ${DNS1123_SUBDOMAIN_MAX})`;
  if (domain === '*') return undefined;
  let rest = domain;
  if (rest.startsWith('*.')) rest = rest.slice(2);
  else if (rest.startsWith('*')) return `domain name "${domain}" invalid (label "${domain.split('.')[0]}" invalid)`;
  return checkDomainName(rest);
}

/** Istio's namespace/name form `ns/host` used by Sidecar egress and Gateway server hosts. */
export function splitNamespacedHost(value: string): { namespace?: string; host: string } {
  const i = value.indexOf('/');
  if (i < 0) return { host: value };
  return { namespace: value.slice(0, i), host: value.slice(i + 1) };
}

// === ports, numbers, addresses ===

/** Istio's ValidatePort: 1..65535. */
export function checkPort(port: unknown): string | undefined {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return `port number ${String(port)} must be in the range 1..65535`;
  }
  return undefined;
}

/** Istio's ValidatePercent for a number (0..100). */
export function checkPercentage(value: unknown): string | undefined {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || value > 100) {
    return `percentage ${String(value)} is not in range 0..100`;
  }
  return undefined;
}

export function isIPAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/** An IP or CIDR (`10.0.0.0/8`, `::1/128`). */
export function checkIPOrCidr(value: string): string | undefined {
  const slash = value.indexOf('/');
  const ip = slash < 0 ? value : value.slice(0, slash);
  const version = isIP(ip);
  if (version === 0) return `invalid IP address or CIDR "${value}"`;
  if (slash >= 0) {
    const bits = value.slice(slash + 1);
    const max = version === 4 ? 32 : 128;
    if (!/^\d+$/.test(bits) || Number(bits) > max) return `invalid CIDR prefix length in "${value}"`;
  }
  return undefined;
}

// === HTTP ===

/** RFC 7230 token characters, as Envoy requires for header names. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;

/** Istio's ValidateHTTPHeaderName (lower-case check is separate). */
export function checkHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (!HEADER_NAME.test(name)) return `header name "${name}" is not a valid HTTP header name`;
  return undefined;
}

/**
 * Envoy's header value formatter: a `%` must start a known `%COMMAND%` or be escaped as
 * `%%` (Istio's ValidateHTTPHeaderValue rejects a lone `%`).
 */
export function checkHeaderValue(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== '%') continue;
    if (value[i + 1] === '%') {
      i++;
      continue;
    }
    const end = value.indexOf('%', i + 1);
    if (end < 0 || !/^[A-Z_]+(\(.*\))?$/.test(value.slice(i + 1, end))) {
      return `header value configuration "${value}" is invalid: a "%" must start an Envoy %COMMAND% or be escaped as "%%"`;
    }
    i = end;
  }
  return undefined;
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

/** HTTP status codes Istio accepts in aborts and redirects: 200..599. */
export function checkHttpStatus(code: unknown): string | undefined {
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 200 || code > 599) {
    return `invalid HTTP status ${String(code)}: must be in the range 200..599`;
  }
  return undefined;
}

// === regular expressions ===

/**
 * Compiles with RE2 semantics (Envoy's safe_regex), as Istio's ValidateRegex does. Returns
 * the error message, or undefined. Envoy matches the whole value, so callers anchor when
 * matching; here only the syntax is checked.
 */
export function checkRegex(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return `"${pattern}" is not a valid RE2 regular expression: ${(err as Error).message}`;
  }
}

// === small guards for defensive validators ===

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
export const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const asObject = (v: unknown): Record<string, unknown> => (isObject(v) ? v : {});

// === Istio's exact host, address and name checks (registry and security kinds) ===
// These follow istio/istio pkg/config/validation/agent (ValidateWildcardDomain, ValidateFQDN,
// ValidateIPSubnet) and pkg/config/labels word for word, so messages match Istio's.

/** Istio's labels.IsDNS1123Label (upper case allowed, at most 63 characters). */
const ISTIO_DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
/** Istio's wildcardPrefix: `*`, or a label optionally led by `*` or `*-` (`*x` is accepted). */
const ISTIO_WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

export function isIstioDNS1123Label(value: string): boolean {
  return value.length <= 63 && ISTIO_DNS1123_LABEL.test(value);
}

/** Istio's CheckDNS1123Preconditions + ValidateDNS1123Labels (an all-numeric TLD is rejected). */
function istioDNS1123Labels(domain: string): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1];
  if (/^[+-]?\d+$/.test(tld)) return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    // A trailing dot (`istio.io.`) is allowed.
    if (i === parts.length - 1 && parts[i] === '') return undefined;
    if (!isIstioDNS1123Label(parts[i])) return `domain name "${domain}" invalid (label "${parts[i]}" invalid)`;
  }
  return undefined;
}

function istioDNS1123Preconditions(name: string): string | undefined {
  if (name.length > 255) return `domain name "${name}" too long (max 255)`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

/** Istio's agent.ValidateFQDN. */
export function checkIstioFQDN(fqdn: string): string | undefined {
  return istioDNS1123Preconditions(fqdn) ?? istioDNS1123Labels(fqdn);
}

/**
 * Istio's agent.ValidateWildcardDomain: wildcards only in the first label, which may be `*`,
 * `*foo` or `*-foo` (the partial forms only draw ValidatePartialWildCard's warning).
 */
export function checkIstioWildcardDomain(domain: string): string | undefined {
  const pre = istioDNS1123Preconditions(domain);
  if (pre) return pre;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (first.length > 63 || !ISTIO_WILDCARD_LABEL.test(first)) return `domain name "${domain}" invalid (label "${first}" invalid)`;
  return dot < 0 ? undefined : istioDNS1123Labels(domain.slice(dot + 1));
}

/** Istio's agent.ValidatePartialWildCard (reported as a warning by ServiceEntry). */
export function checkPartialWildcard(host: string): string | undefined {
  if (host.includes('*') && host.length !== 1 && !host.startsWith('*.')) return `partial wildcard "${host}" not allowed`;
  return undefined;
}

/** Istio's agent.ValidateIPSubnet: an IP, or a CIDR block when the value has one `/`. */
export function checkIstioIPSubnet(subnet: string): string | undefined {
  if (subnet.split('/').length === 2) {
    const [ip, bits] = subnet.split('/');
    const version = isIP(ip);
    const max = version === 4 ? 32 : 128;
    if (version === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > max) return `${subnet} is not a valid CIDR block`;
    return undefined;
  }
  return isIP(subnet) === 0 ? `${subnet} is not a valid IP` : undefined;
}

/** Istio's ValidateUnixAddress, given the path after `unix://`. */
export function checkUnixAddress(addr: string): string | undefined {
  if (addr.length === 0) return 'unix address must not be empty';
  // Abstract sockets (`@name`) are allowed.
  if (addr.startsWith('@')) return undefined;
  if (!addr.startsWith('/') || addr.endsWith('/')) return `${addr} is not an absolute path to a file`;
  return undefined;
}

/** Istio's ValidatePortName: a DNS-1123 label. */
export function checkPortName(name: string): string | undefined {
  return isIstioDNS1123Label(name) ? undefined : `invalid port name: ${name}`;
}

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Istio's labels.Instance.Validate (Kubernetes label keys and values); one message per bad entry. */
export function checkLabelMap(labels: unknown): string[] {
  if (!isObject(labels)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const parts = k.split('/');
    const name = parts[parts.length - 1];
    const prefixOk = parts.length === 1 || (parts.length === 2 && parts[0].length <= 253 && DNS1123_SUBDOMAIN_RE.test(parts[0]));
    if (parts.length > 2 || !prefixOk || name.length > 63 || !LABEL_NAME.test(name)) out.push(`invalid tag key: "${k}"`);
    if (typeof v === 'string' && (v.length > 63 || !LABEL_VALUE.test(v))) out.push(`invalid tag value: "${v}"`);
  }
  return out;
}

/**
 * Istio's selector rules (validateWorkloadSelector / ValidateAlphaWorkloadSelector): no empty
 * keys, no `*` in keys or values. One message per bad entry.
 */
export function checkSelectorLabels(labels: unknown): string[] {
  if (!isObject(labels)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const pair = JSON.stringify(`${k}=${String(v)}`);
    if (k === '') out.push(`empty key is not supported in selector: ${pair}`);
    if (k.includes('*') || String(v).includes('*')) out.push(`wildcard is not supported in selector: ${pair}`);
  }
  return out;
}

/** Istio's ValidateHTTPHeaderName: `^[-_A-Za-z0-9]+$` (stricter than RFC 7230 tokens). */
export function checkIstioHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (!/^[-_A-Za-z0-9]+$/.test(name)) return `header name ${name} is not a valid header name`;
  return undefined;
}

// === protocols (istio/istio pkg/config/protocol) ===

const PROTOCOLS: Record<string, string> = {
  tcp: 'TCP', udp: 'UDP', grpc: 'GRPC', 'grpc-web': 'GRPC-Web', http: 'HTTP', http_proxy: 'HTTP_PROXY', http2: 'HTTP2',
  https: 'HTTPS', tls: 'TLS', mongo: 'Mongo', redis: 'Redis', mysql: 'MySQL',
};

/** Istio's protocol.Parse: the canonical name, `''` for unset (sniffed), undefined when unsupported. */
export function parseProtocol(value: unknown): string | undefined {
  if (value === undefined || value === '') return '';
  return typeof value === 'string' ? PROTOCOLS[value.toLowerCase()] : undefined;
}

export const isHttpProtocol = (p: string | undefined): boolean => p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web' || p === 'HTTP_PROXY';
export const isTlsProtocol = (p: string | undefined): boolean => p === 'HTTPS' || p === 'TLS';
export const isTcpProtocol = (p: string | undefined): boolean =>
  p === 'TCP' || p === 'HTTPS' || p === 'TLS' || p === 'Mongo' || p === 'Redis' || p === 'MySQL';

// === metadata rules Istio applies to every kind (validateMetadata) ===

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/**
 * Istio's checkDryRunAnnotation for kinds other than AuthorizationPolicy: the annotation is
 * refused. Returns the message, or undefined when the annotation is absent.
 */
export function dryRunAnnotationUnsupported(annotations: unknown, namespace: string, name: string): string | undefined {
  if (!isObject(annotations) || !(DRY_RUN_ANNOTATION in annotations)) return undefined;
  return `${namespace}/${name} has unsupported annotation ${DRY_RUN_ANNOTATION}, please remove the annotation`;
}

/** Go's strconv.ParseBool, which Istio uses for annotation values. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

/**
 * Istio's validateExportTo: `.`, `*`, `~` (ServiceEntry only) or namespace names, without
 * duplicates, and `*` or `~` alone. One message per problem.
 */
export function checkExportTo(namespace: string, exportTo: unknown, isServiceEntry: boolean): { index: number; message: string }[] {
  const out: { index: number; message: string }[] = [];
  const list = asArray(exportTo);
  const seen = new Set<string>();
  list.forEach((e, index) => {
    if (typeof e !== 'string') return;
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) {
      out.push({ index, message: key !== e ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entries in exportTo for entry ${e}` });
      return;
    }
    if (e === '~' && !isServiceEntry) out.push({ index, message: 'exportTo ~ (no one) is only allowed for ServiceEntry' });
    else if (e !== '*' && e !== '~' && !isIstioDNS1123Label(key)) out.push({ index, message: `only .,*,~ or a valid DNS 1123 label is allowed as exportTo entry, found ${e}` });
    else seen.add(key);
  });
  if (seen.has('*') && list.length > 1) out.push({ index: -1, message: 'cannot have both public (*) and non-public exportTo values for a resource' });
  if (seen.has('~') && list.length > 1) out.push({ index: -1, message: 'cannot export service entry to no one (~) and someone' });
  return out;
}

// === networking additions (VirtualService, DestinationRule, Gateway, Sidecar) ===

/** Istio's agent.ValidateIPAddress (netip.ParseAddr: a bare address, no CIDR, no brackets). */
export function checkIstioIPAddress(addr: string): string | undefined {
  return isIP(addr) === 0 ? `${addr} is not a valid IP` : undefined;
}

// === policy targeting shared by the security and telemetry kinds ===

/** Kinds a policy targetRef may name (Istio's allowedTargetRefs), by canonical group. */
const ALLOWED_TARGET_REFS: readonly { group: string; kind: string }[] = [
  { group: 'core', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
];

/** Istio's validatePolicyTargetReference: one message per problem. */
export function checkPolicyTargetRef(ref: unknown): string[] {
  if (!isObject(ref)) return [];
  const out: string[] = [];
  if (typeof ref.name === 'string' && ref.name === '') out.push('targetRef name must be set');
  if (typeof ref.namespace === 'string' && ref.namespace !== '') {
    out.push('targetRef namespace must not be set; cross namespace referencing is not supported');
  }
  const group = typeof ref.group === 'string' && ref.group !== '' ? ref.group : 'core';
  if (!ALLOWED_TARGET_REFS.some((a) => a.group === group && a.kind === ref.kind)) {
    out.push(
      `targetRef must be to one of [Service, networking.istio.io/ServiceEntry, gateway.networking.k8s.io/Gateway] but was ${String(ref.group ?? '')}/${String(ref.kind)}`,
    );
  }
  return out;
}

/**
 * Istio's validateOneOfSelectorType + validateWorkloadSelector + validatePolicyTargetReference(s)
 * for a security/telemetry spec (`selector.matchLabels`, `targetRef`, `targetRefs`).
 */
export function checkPolicySelection(
  spec: Record<string, unknown>,
  ctx: { error(path: readonly (string | number)[], code: string, message: string): void; warn(path: readonly (string | number)[], code: string, message: string): void },
  codes: { oneOf: string; selector: string; noLabels: string; targetRef: string },
): void {
  const set = (spec.selector !== undefined ? 1 : 0) + (spec.targetRef !== undefined ? 1 : 0) + (asArray(spec.targetRefs).length > 0 ? 1 : 0);
  if (set > 1) ctx.error(['spec'], codes.oneOf, 'only one of targetRefs or workloadSelector can be set');
  if (isObject(spec.selector)) {
    const labels = spec.selector.matchLabels;
    for (const msg of checkSelectorLabels(labels)) ctx.error(['spec', 'selector', 'matchLabels'], codes.selector, msg);
    if (Object.keys(asObject(labels)).length === 0) ctx.warn(['spec', 'selector'], codes.noLabels, 'workload selector specified without labels');
  }
  for (const msg of checkPolicyTargetRef(spec.targetRef)) ctx.error(['spec', 'targetRef'], codes.targetRef, msg);
  asArray(spec.targetRefs).forEach((r, i) => {
    for (const msg of checkPolicyTargetRef(r)) ctx.error(['spec', 'targetRefs', i], codes.targetRef, msg);
  });
}
