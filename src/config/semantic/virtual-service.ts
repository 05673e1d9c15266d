/**
 * Istio's VirtualService rules, after istio/istio pkg/config/validation: ValidateVirtualService
 * (validation.go) and validateHTTPRoute & co. (virtualservice.go), with their wording. Unlike
 * Istio, every finding is reported at the field it concerns, and nothing stops at the first.
 */
import { RE2JS } from 're2js';
import type { FieldPath } from '../../core/path.js';
import { hostSubsetOf, hostsOverlap } from '../../semantics/hosts.js';
import { routingClaimPath } from '../../semantics/jwt-claim-route.js';
import type { SemanticContext } from './context.js';
import {
  asArray,
  asObject,
  checkDuration,
  checkExportTo,
  checkIstioFQDN,
  checkIstioIPSubnet,
  checkIstioWildcardDomain,
  checkLabelMap,
  checkPercentage,
  checkPort,
  isIPAddress,
  isIstioDNS1123Label,
  isObject,
  parseDurationMs,
} from './rules.js';

type Obj = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
/** Go's zero-value view of a string field: absent and `''` are the same. */
const has = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

// === shared with DestinationRule and Sidecar ===

/** validateSubsetName. */
export function checkSubsetName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'subset name cannot be empty';
  if (!isIstioDNS1123Label(name)) return `subset name is invalid: ${name}`;
  return undefined;
}

/** validateDestination: host (not `*`), subset name, port. */
export function validateDestination(ctx: SemanticContext, dest: unknown, path: FieldPath, code = 'SNW0214'): void {
  if (!isObject(dest)) return;
  const host = str(dest.host) ?? '';
  if (host === '*') ctx.error([...path, 'host'], code, `invalid destination host ${host}`);
  else {
    const err = checkIstioWildcardDomain(host);
    if (err) ctx.error([...path, 'host'], code, err);
  }
  if (dest.subset !== undefined) {
    const err = checkSubsetName(dest.subset);
    if (err) ctx.error([...path, 'subset'], code, err);
  }
  if (isObject(dest.port)) {
    const err = checkPort(dest.port.number ?? 0);
    if (err) ctx.error([...path, 'port', 'number'], code, err);
  }
}

/** agent.ValidateDuration at `path` when the field is set. */
export function validateDurationField(ctx: SemanticContext, value: unknown, path: FieldPath): void {
  if (value === undefined) return;
  const err = checkDuration(value);
  if (err) ctx.error(path, 'SNW0215', err);
}

/** validateGatewayNames: `mesh`, `name`, `name.namespace` (legacy, warned) or `namespace/name`. */
export function validateGatewayNames(ctx: SemanticContext, gateways: unknown, path: FieldPath): void {
  asArray(gateways).forEach((g, i) => {
    if (typeof g !== 'string') return;
    const at = [...path, i];
    const slash = g.indexOf('/');
    if (slash < 0) {
      if (g.includes('.')) {
        const parts = g.split('.');
        ctx.warn(at, 'SNW0206', `using legacy gatewayName format "${g}"; prefer the <namespace>/<name> format: "${parts[1]}/${parts[0]}"`);
      }
      const err = checkIstioFQDN(g);
      if (err) ctx.error(at, 'SNW0204', err);
      return;
    }
    const ns = g.slice(0, slash);
    const name = g.slice(slash + 1);
    if (ns === '' || name === '') ctx.error(at, 'SNW0204', 'config namespace and gateway name cannot be empty');
    if (!isIstioDNS1123Label(ns)) ctx.error(at, 'SNW0204', `invalid value for namespace: "${ns}"`);
    if (!isIstioDNS1123Label(name)) ctx.error(at, 'SNW0204', `invalid value for gateway name: "${name}"`);
  });
}

/** A CRD one-of group (`oneOf` in the schema): at most one of `keys` may be set. */
export function checkOneOf(ctx: SemanticContext, obj: unknown, keys: readonly string[], path: FieldPath): void {
  if (!isObject(obj)) return;
  const set = keys.filter((k) => obj[k] !== undefined);
  if (set.length > 1) ctx.error([...path, set[1]], 'SNW0229', `only one of ${keys.join(', ')} may be set; found ${set.join(' and ')}`);
}

/**
 * agent.ValidateWildcardDomainForVirtualServiceBoundToGateway: as ValidateWildcardDomain, but
 * an SNI host may be the `outbound_.<port>_._.<host>` name AUTO_PASSTHROUGH generates.
 */
function checkGatewayBoundDomain(sni: boolean, domain: string): string | undefined {
  if (domain.length === 0) return 'empty domain name not allowed';
  if (domain.length > 255) return `domain name "${domain}" too long (max 255)`;
  if (sni && domain.startsWith('outbound_')) {
    const format = 'outbound_.<PORT>_._.<HOSTNAME>';
    const parts = domain.split('_');
    if (parts.length < 4) return `domain name ${domain} invalid, should follow '${format}' format`;
    const port = parts[1].replace(/^\.+|\.+$/g, '');
    const host = parts[3].replace(/^\.+|\.+$/g, '');
    if (!/[0-9]/.test(port)) return `domain name "${domain}" invalid (label "${port}" invalid). should follow ${format} format`;
    if (!/[a-zA-Z]/.test(host)) return `domain name "${domain}" invalid (label "${host}" invalid). should follow ${format} format`;
    return undefined;
  }
  return checkIstioWildcardDomain(domain);
}

// === string matches and regexes ===

/** validateStringRegexp: RE2 syntax (Envoy's safe_regex), at most 1024 characters. */
export function checkRegexAt(re: string, where: string): string | undefined {
  if (re.length > 1024) return `"${where}": regex is too large, max length allowed is 1024`;
  try {
    RE2JS.compile(re);
    return undefined;
  } catch (err) {
    return `"${where}": ${(err as Error).message}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)`;
  }
}

/** validateStringMatchRegexp: only the regex form is checked (an empty uri prefix is fine). */
function validateStringMatchRegexp(ctx: SemanticContext, sm: unknown, where: string, path: FieldPath): void {
  if (!isObject(sm) || sm.regex === undefined) return;
  const re = str(sm.regex) ?? '';
  const err = re === '' ? `"${where}": regex string match should not be empty` : checkRegexAt(re, where);
  if (err) ctx.error([...path, 'regex'], 'SNW0222', err);
}

/** validateStringMatch: also refuses an empty prefix (Envoy's StringMatcher needs one character). */
function validateStringMatch(ctx: SemanticContext, sm: unknown, where: string, path: FieldPath): void {
  if (!isObject(sm)) return;
  checkOneOf(ctx, sm, ['exact', 'prefix', 'regex'], path);
  if (sm.prefix !== undefined && sm.regex === undefined && sm.exact === undefined && str(sm.prefix) === '') {
    ctx.error([...path, 'prefix'], 'SNW0222', `"${where}": prefix string match should not be empty`);
  }
  validateStringMatchRegexp(ctx, sm, where, path);
}

const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);
const TOKEN = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;

/** jwt.ToRoutingClaim(...).Match: `@request.auth.claims.<name>` or `@request.auth.claims[<name>]` (semantics/jwt-claim-route.ts). */
export function isJwtClaimRoute(key: string): boolean {
  return routingClaimPath(key) !== undefined;
}

/** ValidateHTTPHeaderNameOrJwtClaimRoute. */
function checkMatchHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimRoute(name) || PSEUDO_HEADERS.has(name)) return undefined;
  if (!TOKEN.test(name)) return `header name ${name} is not a valid header name`;
  return undefined;
}

// === header manipulation ===

const isInternalHeader = (k: string) => k.startsWith(':') || k.toLowerCase() === 'host';
const isAuthorityHeader = (k: string) => k.toLowerCase() === ':authority' || k.toLowerCase() === 'host';

/** ValidateHTTPHeaderWithAuthorityOperationName (request add/set: the authority is checked apart). */
function checkRequestSetName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isInternalHeader(name) && !isAuthorityHeader(name)) return `invalid header "${name}": header cannot have ":" prefix`;
  return undefined;
}

/** ValidateHTTPHeaderOperationName (request remove, response add/set/remove). */
function checkHeaderOperationName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header "${name}": cannot set Host header`;
  if (isInternalHeader(name)) return `invalid header "${name}": header cannot have ":" prefix`;
  return undefined;
}

/** ValidateHTTPHeaderValue: no control characters, then Envoy's `%VAR%` syntax. */
function checkHeaderValueIstio(value: string): string | undefined {
  if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) return `header value configuration ${value} is invalid`;
  const err = envoyHeaderValueError(value);
  return err ? `header value configuration: ${err}` : undefined;
}

/**
 * validateHeaderValue (header_value_validator.go), Istio's port of Envoy's header formatter
 * parser (source/common/router/header_parser.cc): `%%` is a literal `%`, `%VAR%` and
 * `%VAR(args)%` are variables, and anything left open is an error.
 */
function envoyHeaderValueError(v: string): string | undefined {
  type State = 'literal' | 'name' | 'array' | 'delimiter' | 'string-start' | 'string' | 'args-end' | 'var-end';
  let state: State = 'literal';
  for (let pos = 0; pos < v.length; pos++) {
    const ch = v[pos];
    const hasNext = pos + 1 < v.length;
    switch (state) {
      case 'literal':
        if (ch !== '%') break;
        if (!hasNext) return 'invalid header configuration. Un-escaped %';
        if (v[pos + 1] === '%') pos++;
        else state = 'name';
        break;
      case 'name':
        if (ch === '%') state = 'literal';
        else if (ch === '(') state = 'array';
        break;
      case 'array':
        if (ch === '[') state = 'string-start';
        else if (ch !== ' ') state = 'string';
        break;
      case 'delimiter':
        if (ch === ',') state = 'string-start';
        else if (ch === ']') state = 'args-end';
        else if (ch !== ' ') return "invalid header configuration. Expecting ',', ']', or whitespace";
        break;
      case 'string-start':
        if (ch === '"') state = 'string';
        else if (ch !== ' ') return `invalid header configuration. Expecting '"'`;
        break;
      case 'string':
        if (ch === '\\') {
          if (!hasNext) return 'invalid header configuration. Un-terminated backslash in JSON string';
          pos++;
        } else if (ch === ')') state = 'var-end';
        else if (ch === '"') state = 'delimiter';
        break;
      case 'args-end':
        if (ch === ')') state = 'var-end';
        else if (ch !== ' ') return "invalid header configuration. Expecting ')' or whitespace";
        break;
      case 'var-end':
        if (ch === '%') state = 'literal';
        else if (ch !== ' ') return "invalid header configuration. Expecting '%' or whitespace after";
        break;
    }
  }
  return state === 'literal' ? undefined : `invalid header configuration. Un-terminated variable expression '${v}'`;
}

function validateHeaders(ctx: SemanticContext, headers: unknown, path: FieldPath): void {
  if (!isObject(headers)) return;
  for (const side of ['request', 'response'] as const) {
    const ops = headers[side];
    if (!isObject(ops)) continue;
    for (const op of ['add', 'set'] as const) {
      for (const [name, value] of Object.entries(asObject(ops[op]))) {
        const at = [...path, side, op, name];
        const nameErr = side === 'request' ? checkRequestSetName(name) : checkHeaderOperationName(name);
        if (nameErr) ctx.error(at, 'SNW0220', nameErr);
        if (typeof value === 'string') {
          const valueErr = checkHeaderValueIstio(value);
          if (valueErr) ctx.error(at, 'SNW0220', valueErr);
        }
      }
    }
    asArray(ops.remove).forEach((name, i) => {
      if (typeof name !== 'string') return;
      const err = checkHeaderOperationName(name);
      if (err) ctx.error([...path, side, 'remove', i], 'SNW0220', err);
    });
  }
}

// === the VirtualService ===

/** Istio's VirtualService rules (pkg/config/validation: ValidateVirtualService). */
export function validateVirtualService(spec: unknown, ctx: SemanticContext): void {
  const vs = asObject(spec);
  const hosts = asArray(vs.hosts).filter((h): h is string => typeof h === 'string');
  const gateways = asArray(vs.gateways).filter((g): g is string => typeof g === 'string');
  const http = asArray(vs.http);
  const tls = asArray(vs.tls);
  const tcp = asArray(vs.tcp);

  // No hosts: this is a delegate, which only carries HTTP routes for a root to include.
  const isDelegate = asArray(vs.hosts).length === 0;
  if (isDelegate) {
    if (gateways.length > 0) ctx.error(['spec', 'gateways'], 'SNW0212', 'delegate virtual service must have no gateways specified');
    if (tls.length > 0) ctx.error(['spec', 'tls'], 'SNW0212', 'delegate virtual service must have no tls route specified');
    if (tcp.length > 0) ctx.error(['spec', 'tcp'], 'SNW0212', 'delegate virtual service must have no tcp route specified');
  }

  let appliesToMesh = true;
  let appliesToGateway = false;
  if (gateways.length > 0) {
    validateGatewayNames(ctx, vs.gateways, ['spec', 'gateways']);
    appliesToGateway = !gateways.includes('mesh');
    appliesToMesh = !appliesToGateway;
  }

  // JWT claims are only known where a gateway has run RequestAuthentication in front.
  if (!appliesToGateway) {
    http.forEach((route, i) => {
      asArray(asObject(route).match).forEach((m, j) => {
        for (const field of ['headers', 'withoutHeaders'] as const) {
          for (const key of Object.keys(asObject(asObject(m)[field]))) {
            if (isJwtClaimRoute(key)) {
              ctx.error(
                ['spec', 'http', i, 'match', j, field],
                'SNW0223',
                `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways: [${gateways.join(' ')}]`,
              );
            }
          }
        }
      });
    });
  }

  // Hosts: names or wildcards; `*` only for gateways; no two overlapping.
  const sniRouting = tls.some((r) => asArray(asObject(r).match).some((m) => asArray(asObject(m).sniHosts).length > 0));
  let allHostsValid = true;
  asArray(vs.hosts).forEach((h, i) => {
    if (typeof h !== 'string') return;
    const err = appliesToGateway ? checkGatewayBoundDomain(sniRouting, h) : checkIstioWildcardDomain(h);
    if (err) {
      if (!isIPAddress(h)) {
        ctx.error(['spec', 'hosts', i], 'SNW0201', err);
        allHostsValid = false;
      }
    } else if (appliesToMesh && h === '*') {
      ctx.error(['spec', 'hosts', i], 'SNW0202', 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allHostsValid = false;
    }
  });
  if (allHostsValid) {
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        if (hostsOverlap(hosts[i], hosts[j])) ctx.error(['spec', 'hosts', j], 'SNW0203', `duplicate hosts in virtual service: ${hosts[i]} & ${hosts[j]}`);
      }
    }
  }

  if (http.length === 0 && tcp.length === 0 && tls.length === 0) {
    ctx.error(['spec'], 'SNW0210', 'http, tcp or tls must be provided in virtual service');
  }
  http.forEach((route, i) => {
    if (!isObject(route)) ctx.error(['spec', 'http', i], 'SNW0211', 'http route may not be null');
    else validateHTTPRoute(ctx, route, isDelegate, ['spec', 'http', i]);
  });
  tls.forEach((route, i) => validateTLSRoute(ctx, asObject(route), hosts, gateways, ['spec', 'tls', i]));
  tcp.forEach((route, i) => validateTCPRoute(ctx, asObject(route), ['spec', 'tcp', i]));

  for (const e of checkExportTo(ctx.resource.namespace, vs.exportTo, false)) {
    ctx.error(e.index < 0 ? ['spec', 'exportTo'] : ['spec', 'exportTo', e.index], 'SNW0205', e.message);
  }

  analyzeUnreachableRules(ctx, http, 'http');
  analyzeUnreachableRules(ctx, tcp, 'tcp');
  analyzeUnreachableRules(ctx, tls, 'tls');
}

// === HTTP routes (virtualservice.go validateHTTPRoute) ===

function validateHTTPRoute(ctx: SemanticContext, http: Obj, isDelegate: boolean, base: FieldPath): void {
  const routeType = isDelegate ? 'delegate' : http.delegate !== undefined && http.delegate !== null ? 'root' : 'independent';
  validateHTTPRouteConflict(ctx, http, routeType, base);
  validateHTTPRouteMatchRequest(ctx, http, base);
  validateHeaders(ctx, http.headers, [...base, 'headers']);
  validateCorsPolicy(ctx, http.corsPolicy, [...base, 'corsPolicy']);
  validateFault(ctx, http.fault, [...base, 'fault']);

  for (const key of ['mirrorPercent', 'mirror_percent'] as const) {
    const v = num(http[key]);
    if (http[key] === undefined) continue;
    if (v !== undefined && v > 100) ctx.error([...base, key], 'SNW0225', `mirror_percent must have a max value of 100 (it has ${v})`);
    ctx.warn([...base, key], 'SNW0108', `using deprecated setting "${key}", use "mirrorPercentage" instead`);
  }
  if (isObject(http.mirrorPercentage)) {
    const v = num(http.mirrorPercentage.value) ?? 0;
    const at = [...base, 'mirrorPercentage', 'value'];
    if (v > 100) ctx.error(at, 'SNW0225', `mirror_percentage must have a max value of 100 (it has ${v.toFixed(6)})`);
    if (v < 0) ctx.error(at, 'SNW0225', `mirror_percentage must have a min value of 0 (it has ${v.toFixed(6)})`);
  }
  validateDestination(ctx, http.mirror, [...base, 'mirror']);
  asArray(http.mirrors).forEach((m, i) => {
    const at = [...base, 'mirrors', i];
    if (!isObject(m)) return ctx.error(at, 'SNW0225', 'mirror cannot be null');
    if (!isObject(m.destination)) return ctx.error([...at, 'destination'], 'SNW0225', 'destination is required for mirrors');
    validateDestination(ctx, m.destination, [...at, 'destination']);
    if (isObject(m.percentage)) {
      const v = num(m.percentage.value) ?? 0;
      if (v > 100) ctx.error([...at, 'percentage', 'value'], 'SNW0225', `mirror percentage must have a max value of 100 (it has ${v.toFixed(6)})`);
      if (v < 0) ctx.error([...at, 'percentage', 'value'], 'SNW0225', `mirror percentage must have a min value of 0 (it has ${v.toFixed(6)})`);
    }
  });
  validateRedirect(ctx, http, [...base, 'redirect']);
  validateDirectResponse(ctx, http.directResponse, [...base, 'directResponse']);
  validateRetries(ctx, http.retries, [...base, 'retries']);
  validateRewrite(ctx, http.rewrite, [...base, 'rewrite']);
  validateAuthorityRewrite(ctx, http, base);
  validateRouteDestinations(ctx, http.route, [...base, 'route'], true);
  validateDurationField(ctx, http.timeout, [...base, 'timeout']);
}

function validateHTTPRouteConflict(ctx: SemanticContext, http: Obj, routeType: string, base: FieldPath): void {
  const name = str(http.name) ?? '';
  const set = (k: string) => http[k] !== undefined && http[k] !== null;
  const routes = asArray(http.route).length;
  if (routeType === 'root') {
    // A root route hands the request to the delegate: it cannot also act itself.
    if (set('redirect')) ctx.error(base, 'SNW0212', `root HTTP route ${name} must not specify redirect`);
    if (routes > 0) ctx.error(base, 'SNW0212', `root HTTP route ${name} must not specify route`);
    return;
  }
  if (routeType === 'delegate' && set('delegate')) ctx.error([...base, 'delegate'], 'SNW0212', 'delegate HTTP route cannot contain delegate');

  if (set('redirect')) {
    if (routes > 0) ctx.error(base, 'SNW0211', 'HTTP route cannot contain both route and redirect');
    if (set('fault')) ctx.error(base, 'SNW0211', 'HTTP route cannot contain both fault and redirect');
    if (set('rewrite')) ctx.error(base, 'SNW0211', 'HTTP route rule cannot contain both rewrite and redirect');
    if (set('directResponse')) ctx.error(base, 'SNW0211', 'HTTP route rule cannot contain both direct_response and redirect');
  } else if (set('directResponse')) {
    if (routes > 0) ctx.error(base, 'SNW0211', 'HTTP route cannot contain both route and direct_response');
    if (set('fault')) ctx.error(base, 'SNW0211', 'HTTP route cannot contain both fault and direct_response');
    if (set('rewrite')) ctx.error(base, 'SNW0211', 'HTTP route rule cannot contain both rewrite and direct_response');
  } else if (routes === 0) {
    ctx.error(base, 'SNW0211', 'HTTP route, redirect or direct_response is required');
  }
  if (set('mirror') && asArray(http.mirrors).length > 0) ctx.error(base, 'SNW0211', 'HTTP route cannot contain both mirror and mirrors');
}

function validateHTTPRouteMatchRequest(ctx: SemanticContext, http: Obj, base: FieldPath): void {
  asArray(http.match).forEach((m, j) => {
    if (!isObject(m)) return;
    const at = [...base, 'match', j];
    for (const [name, sm] of Object.entries(asObject(m.headers))) {
      const hp = [...at, 'headers', name];
      if (sm === null) ctx.error(hp, 'SNW0222', `header match ${name} cannot be null`);
      const err = checkMatchHeaderName(name);
      if (err) ctx.error(hp, 'SNW0222', err);
      validateStringMatch(ctx, sm, 'headers', hp);
    }
    for (const [name, sm] of Object.entries(asObject(m.withoutHeaders))) {
      const hp = [...at, 'withoutHeaders', name];
      const err = checkMatchHeaderName(name);
      if (err) ctx.error(hp, 'SNW0222', err);
      // `*` is not an RE2 regex here: Istio turns it into a presence match.
      if (isObject(sm) && sm.regex !== '*') validateStringMatch(ctx, sm, 'withoutHeaders', hp);
    }
    // uri allows an empty prefix (Envoy's route path prefix); scheme, method, authority do not.
    if (isObject(m.uri)) {
      checkOneOf(ctx, m.uri, ['exact', 'prefix', 'regex'], [...at, 'uri']);
      validateStringMatchRegexp(ctx, m.uri, 'uri', [...at, 'uri']);
    }
    for (const field of ['scheme', 'method', 'authority'] as const) validateStringMatch(ctx, m[field], field, [...at, field]);
    for (const [name, sm] of Object.entries(asObject(m.queryParams))) validateStringMatch(ctx, sm, 'queryParams', [...at, 'queryParams', name]);

    if (m.port !== undefined && m.port !== 0) {
      const err = checkPort(m.port);
      if (err) ctx.error([...at, 'port'], 'SNW0222', err);
    }
    for (const msg of checkLabelMap(m.sourceLabels)) ctx.error([...at, 'sourceLabels'], 'SNW0222', msg);
    validateGatewayNames(ctx, m.gateways, [...at, 'gateways']);
    const sourceNs = str(m.sourceNamespace);
    if (sourceNs && !isIstioDNS1123Label(sourceNs)) ctx.error([...at, 'sourceNamespace'], 'SNW0222', `sourceNamespace match ${sourceNs} is invalid`);
  });
}

const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

function validateCorsPolicy(ctx: SemanticContext, cors: unknown, path: FieldPath): void {
  if (!isObject(cors)) return;
  asArray(cors.allowOrigins).forEach((origin, i) => {
    const at = [...path, 'allowOrigins', i];
    const o = asObject(origin);
    checkOneOf(ctx, o, ['exact', 'prefix', 'regex'], at);
    const match = str(o.exact ?? o.prefix ?? o.regex) ?? '';
    if (match === '') ctx.error(at, 'SNW0221', `'${match}' is not a valid match type for CORS allow origins`);
    else validateStringMatchRegexp(ctx, o, 'corsPolicy.allowOrigins', at);
  });
  asArray(cors.allowMethods).forEach((m, i) => {
    if (typeof m === 'string' && !CORS_METHODS.has(m)) ctx.error([...path, 'allowMethods', i], 'SNW0221', `"${m}" is not a supported HTTP method`);
  });
  for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
    asArray(cors[field]).forEach((h, i) => {
      if (typeof h !== 'string') return;
      if (h === '') ctx.error([...path, field, i], 'SNW0221', 'header name cannot be empty');
      else if (h !== '*' && !TOKEN.test(h)) ctx.error([...path, field, i], 'SNW0221', `header name ${h} is not a valid header name`);
    });
  }
  if (cors.maxAge !== undefined) {
    validateDurationField(ctx, cors.maxAge, [...path, 'maxAge']);
    // Access-Control-Max-Age is a whole number of seconds.
    const ms = parseDurationMs(cors.maxAge);
    if (ms !== undefined && Math.abs(ms / 1000 - Math.round(ms / 1000)) > 1e-12) {
      ctx.error([...path, 'maxAge'], 'SNW0221', 'max_age duration is accurate only to seconds precision');
    }
  }
}

/** grpc.SupportedGRPCStatus: the canonical gRPC status code names. */
const GRPC_STATUS = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
]);

/** validatePercentage: 0, or 0.0001..100 (Envoy's fractional percent resolution). */
function checkFractionalPercent(ctx: SemanticContext, pct: unknown, path: FieldPath, code: string): void {
  if (!isObject(pct)) return;
  const v = num(pct.value) ?? 0;
  if (v < 0 || v > 100 || (v > 0 && v < 0.0001)) ctx.error([...path, 'value'], code, `percentage ${v} is neither 0.0, nor in range [0.0001, 100.0]`);
}

/** validateHTTPStatus (Istio accepts up to 600). */
function checkHTTPStatus(status: number): string | undefined {
  return status < 200 || status > 600 ? `HTTP status ${status} is not in range 200-599` : undefined;
}

function validateFault(ctx: SemanticContext, fault: unknown, path: FieldPath): void {
  if (!isObject(fault)) return;
  if (!isObject(fault.abort) && !isObject(fault.delay)) ctx.error(path, 'SNW0217', 'HTTP fault injection must have an abort and/or a delay');
  if (isObject(fault.abort)) {
    const abort = fault.abort;
    const at = [...path, 'abort'];
    checkFractionalPercent(ctx, abort.percentage, [...at, 'percentage'], 'SNW0217');
    checkOneOf(ctx, abort, ['httpStatus', 'grpcStatus', 'http2Error'], at);
    if (abort.grpcStatus !== undefined) {
      const s = String(abort.grpcStatus);
      if (!GRPC_STATUS.has(s)) {
        ctx.error([...at, 'grpcStatus'], 'SNW0217', `gRPC status "${s}" is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'`);
      }
    } else if (abort.http2Error !== undefined) {
      ctx.error([...at, 'http2Error'], 'SNW0217', 'HTTP/2 abort fault injection not supported yet');
    } else if (abort.httpStatus !== undefined) {
      const err = checkHTTPStatus(num(abort.httpStatus) ?? 0);
      if (err) ctx.error([...at, 'httpStatus'], 'SNW0217', err);
    } else {
      ctx.warn(at, 'SNW0217', 'abort configured, but error type not set');
    }
  }
  if (isObject(fault.delay)) {
    const delay = fault.delay;
    const at = [...path, 'delay'];
    checkFractionalPercent(ctx, delay.percentage, [...at, 'percentage'], 'SNW0217');
    // The deprecated integer `percent` is still read; older Istio checked it with ValidatePercent.
    if (delay.percent !== undefined) {
      const err = checkPercentage(delay.percent);
      if (err) ctx.error([...at, 'percent'], 'SNW0217', err);
    }
    checkOneOf(ctx, delay, ['fixedDelay', 'exponentialDelay'], at);
    validateDurationField(ctx, delay.fixedDelay, [...at, 'fixedDelay']);
    if (delay.exponentialDelay !== undefined) {
      validateDurationField(ctx, delay.exponentialDelay, [...at, 'exponentialDelay']);
      ctx.error([...at, 'exponentialDelay'], 'SNW0217', 'exponentialDelay not supported yet');
    }
  }
}

function validateRedirect(ctx: SemanticContext, http: Obj, path: FieldPath): void {
  const r = http.redirect;
  if (!isObject(r)) return;
  checkOneOf(ctx, r, ['port', 'derivePort'], path);
  if (!has(r.uri) && !has(r.authority) && r.port === undefined && r.derivePort === undefined && !has(r.scheme) && !has(r.prefixRewrite)) {
    ctx.error(path, 'SNW0219', 'redirect must specify URI, authority, scheme, or port');
  }
  if (has(r.uri) && has(r.prefixRewrite)) ctx.error(path, 'SNW0219', 'redirect may only specify one of uri or prefix_rewrite');
  // Envoy's prefix_rewrite replaces the matched prefix, so every URI match must be a prefix.
  if (has(r.prefixRewrite) && asArray(http.match).some((m) => isObject(asObject(m).uri) && asObject(asObject(m).uri).prefix === undefined)) {
    ctx.error([...path, 'prefixRewrite'], 'SNW0219', 'redirect prefix_rewrite requires all URI matches to use prefix match type');
  }
  const code = num(r.redirectCode);
  if (code !== undefined && code !== 0 && (code < 300 || code > 399)) ctx.error([...path, 'redirectCode'], 'SNW0219', `${code} is not a valid redirect code, must be 3xx`);
  if (has(r.scheme) && r.scheme !== 'http' && r.scheme !== 'https') ctx.error([...path, 'scheme'], 'SNW0219', 'invalid redirect scheme, must be "http" or "https"');
  if (num(r.port) !== undefined && (r.port as number) > 0) {
    const err = checkPort(r.port);
    if (err) ctx.error([...path, 'port'], 'SNW0219', err);
  }
}

function validateDirectResponse(ctx: SemanticContext, dr: unknown, path: FieldPath): void {
  if (!isObject(dr)) return;
  if (isObject(dr.body)) {
    checkOneOf(ctx, dr.body, ['string', 'bytes'], [...path, 'body']);
    const s = str(dr.body.string);
    const b = str(dr.body.bytes);
    const size = s !== undefined ? Buffer.byteLength(s) : b !== undefined ? Buffer.from(b, 'base64').length : 0;
    if (size > 1024 * 1024) ctx.error([...path, 'body'], 'SNW0226', 'large direct_responses may impact control plane performance, must be less than 1MB');
    else if (size > 100 * 1024) ctx.warn([...path, 'body'], 'SNW0226', 'large direct_responses may impact control plane performance');
  }
  const err = checkHTTPStatus(num(dr.status) ?? 0);
  if (err) ctx.error([...path, 'status'], 'SNW0226', err);
}

/** Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions (supportedRetryOnPolicies). */
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

function validateRetries(ctx: SemanticContext, retries: unknown, path: FieldPath): void {
  if (!isObject(retries)) return;
  const attempts = num(retries.attempts) ?? 0;
  if (attempts < 0) ctx.error([...path, 'attempts'], 'SNW0216', 'attempts cannot be negative');
  if (attempts === 0 && (retries.perTryTimeout !== undefined || has(retries.retryOn) || retries.retryRemoteLocalities !== undefined)) {
    ctx.error(path, 'SNW0216', 'http retry policy configured when attempts are set to 0 (disabled)');
  }
  validateDurationField(ctx, retries.perTryTimeout, [...path, 'perTryTimeout']);
  const retryOn = str(retries.retryOn);
  if (retryOn) {
    for (const policy of retryOn.split(',')) {
      // A bare HTTP status code is accepted too (Envoy's retriable status codes).
      const isStatus = /^\d+$/.test(policy) && Number(policy) >= 100 && Number(policy) <= 599;
      if (!isStatus && !RETRY_ON.has(policy)) ctx.error([...path, 'retryOn'], 'SNW0216', `"${policy}" is not a valid retryOn policy`);
    }
  }
  validateDurationField(ctx, retries.backoff, [...path, 'backoff']);
}

function validateRewrite(ctx: SemanticContext, rewrite: unknown, path: FieldPath): void {
  if (!isObject(rewrite)) return;
  const regex = rewrite.uriRegexRewrite;
  if (has(rewrite.uri) && isObject(regex)) ctx.error(path, 'SNW0218', 'rewrite may only contain one of URI or UriRegexRewrite');
  if (!has(rewrite.uri) && !isObject(regex) && !has(rewrite.authority)) {
    ctx.error(path, 'SNW0218', 'rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified');
  }
  if (isObject(regex)) {
    if (!has(regex.match) || !has(regex.rewrite)) {
      ctx.error([...path, 'uriRegexRewrite'], 'SNW0218', 'UriRegexRewrite requires both Rewrite and Match fields to be specified');
    } else {
      const err = checkRegexAt(String(regex.match), 'HTTPRewrite.UriRegexRewrite.Match');
      if (err) ctx.error([...path, 'uriRegexRewrite', 'match'], 'SNW0218', err);
    }
  }
}

/** validateAuthorityRewrite: the authority may be rewritten in one place only. */
function validateAuthorityRewrite(ctx: SemanticContext, http: Obj, base: FieldPath): void {
  const rewriteAuthority = str(asObject(http.rewrite).authority) ?? '';
  let current = rewriteAuthority;
  const request = asObject(asObject(http.headers).request);
  for (const op of ['set', 'add'] as const) {
    for (const [k, v] of Object.entries(asObject(request[op]))) {
      if (!isAuthorityHeader(k)) continue;
      if (current !== '') {
        const at = rewriteAuthority !== '' ? [...base, 'rewrite', 'authority'] : [...base, 'headers', 'request', op, k];
        ctx.error(at, 'SNW0220', `authority header cannot be set multiple times: have "${current}", attempting to set "${String(v)}"`);
        return;
      }
      current = String(v);
    }
  }
}

/** validateHTTPRouteDestinations / validateRouteDestinations. */
function validateRouteDestinations(ctx: SemanticContext, routes: unknown, path: FieldPath, withHeaders: boolean): void {
  const list = asArray(routes);
  let total = 0;
  list.forEach((rd, i) => {
    const at = [...path, i];
    if (!isObject(rd)) return ctx.error(at, 'SNW0213', 'weight may not be nil');
    if (withHeaders) validateHeaders(ctx, rd.headers, [...at, 'headers']);
    validateDestination(ctx, rd.destination, [...at, 'destination']);
    const w = num(rd.weight) ?? 0;
    if (w < 0) ctx.error([...at, 'weight'], 'SNW0213', `weight ${w} < 0`);
    total += w;
  });
  if (list.length > 1 && total === 0) ctx.error(path, 'SNW0213', 'total destination weight = 0');
}

// === TLS and TCP routes ===

function validateTLSRoute(ctx: SemanticContext, route: Obj, hosts: string[], gateways: string[], base: FieldPath): void {
  const matches = asArray(route.match);
  if (matches.length === 0) ctx.error([...base, 'match'], 'SNW0227', 'TLS route must have at least one match condition');
  matches.forEach((m, j) => {
    const at = [...base, 'match', j];
    if (!isObject(m)) return ctx.error(at, 'SNW0227', 'TLS match may not be null');
    const sni = asArray(m.sniHosts);
    if (sni.length === 0) ctx.error([...at, 'sniHosts'], 'SNW0227', 'TLS match must have at least one SNI host');
    sni.forEach((h, k) => {
      if (typeof h === 'string') validateSniHost(ctx, h, hosts, gateways, [...at, 'sniHosts', k]);
    });
    validateL4Match(ctx, m, at);
  });
  if (asArray(route.route).length === 0) ctx.error([...base, 'route'], 'SNW0227', 'TLS route is required');
  validateRouteDestinations(ctx, route.route, [...base, 'route'], false);
}

function validateSniHost(ctx: SemanticContext, sni: string, hosts: string[], gateways: string[], path: FieldPath): void {
  // Istio's isGateway() is true unless `mesh` is named (also with no gateways at all).
  const err = !gateways.includes('mesh') ? checkGatewayBoundDomain(true, sni) : checkIstioWildcardDomain(sni);
  if (err) {
    if (isIPAddress(sni)) ctx.warn(path, 'SNW0228', `using an IP address ("${sni}") goes against SNI spec and most clients do not support this`);
    else ctx.error(path, 'SNW0227', err);
    return;
  }
  if (hosts.some((h) => hostSubsetOf(sni, h))) return;
  ctx.error(path, 'SNW0227', `SNI host "${sni}" is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
}

function validateL4Match(ctx: SemanticContext, m: Obj, at: FieldPath): void {
  asArray(m.destinationSubnets).forEach((s, k) => {
    const err = typeof s === 'string' ? checkIstioIPSubnet(s) : undefined;
    if (err) ctx.error([...at, 'destinationSubnets', k], 'SNW0222', err);
  });
  if (m.port !== undefined && m.port !== 0) {
    const err = checkPort(m.port);
    if (err) ctx.error([...at, 'port'], 'SNW0222', err);
  }
  for (const msg of checkLabelMap(m.sourceLabels)) ctx.error([...at, 'sourceLabels'], 'SNW0222', msg);
  validateGatewayNames(ctx, m.gateways, [...at, 'gateways']);
}

function validateTCPRoute(ctx: SemanticContext, route: Obj, base: FieldPath): void {
  asArray(route.match).forEach((m, j) => {
    if (!isObject(m)) return ctx.error([...base, 'match', j], 'SNW0227', 'tcp match may not be nil');
    validateL4Match(ctx, m, [...base, 'match', j]);
    if (typeof m.sourceSubnet === 'string' && m.sourceSubnet !== '') {
      const err = checkIstioIPSubnet(m.sourceSubnet);
      if (err) ctx.error([...base, 'match', j, 'sourceSubnet'], 'SNW0222', err);
    }
  });
  if (asArray(route.route).length === 0) ctx.error([...base, 'route'], 'SNW0227', 'TCP route is required');
  validateRouteDestinations(ctx, route.route, [...base, 'route'], false);
}

// === unreachable rules (analyzeUnreachableHTTPRules & co.) ===

/** A canonical JSON of a match without its name, to spot identical matches. */
function matchKey(match: unknown): string {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (isObject(v)) {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .filter((k) => v[k] !== undefined)
          .map((k) => [k, canon(v[k])]),
      );
    }
    return v;
  };
  const copy = isObject(match) ? { ...match } : match;
  if (isObject(copy)) delete copy.name;
  return JSON.stringify(canon(copy));
}

interface PrefixMatch {
  rule: number;
  match: number;
  routeStr: string;
  matchStr: string;
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Map<string, string>;
  queryParams: Map<string, string>;
  withoutHeaders: Map<string, string>;
}

const exactOrPrefix = (sm: unknown): string => {
  const o = asObject(sm);
  if (has(o.exact)) return `exact:${String(o.exact)}`;
  if (has(o.prefix)) return `prefix:${String(o.prefix)}`;
  return '';
};

function mapOf(v: unknown): Map<string, string> {
  return new Map(Object.entries(asObject(v)).map(([k, sm]) => [k, exactOrPrefix(sm)]));
}

/** coveredValidation: does the earlier prefix match `a` take every request of the later `b`? */
function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  if (!b.prefix.startsWith(a.prefix)) return false;
  if (a.port !== b.port) return false;
  if (a.method !== b.method && !a.method.startsWith(b.method)) return false;
  if (a.authority !== b.authority && !a.authority.startsWith(b.authority)) return false;
  for (const [am, bm] of [
    [a.headers, b.headers],
    [a.queryParams, b.queryParams],
    [a.withoutHeaders, b.withoutHeaders],
  ]) {
    if (am.size !== bm.size) return false;
    for (const [k, v] of am) {
      const other = bm.get(k);
      if (other === undefined) return false;
      if (v !== other && !v.startsWith(other)) return false;
    }
  }
  return true;
}

function analyzeUnreachableRules(ctx: SemanticContext, routes: unknown[], kind: 'http' | 'tcp' | 'tls'): void {
  const routeName = (r: unknown, n: number) => (kind === 'http' && has(asObject(r).name) ? `"${String(asObject(r).name)}"` : `#${n}`);
  const requestName = (m: unknown, n: number) => (kind === 'http' && has(asObject(m).name) ? `"${String(asObject(m).name)}"` : `#${n}`);
  const unused = (n: number, ruleno: string, reason: string) =>
    ctx.warn(['spec', kind, n], 'SNW0224', `virtualService rule ${ruleno} not used (${reason})`);
  const ineffective = (path: FieldPath, ruleno: string, matchno: string, dupno: string) =>
    ctx.warn(path, 'SNW0224', `virtualService rule ${ruleno} match ${matchno} is not used (duplicate/overlapping match in rule ${dupno})`);

  const seen = new Map<string, number>();
  let emptyMatchAt = -1;
  const prefixMatches: PrefixMatch[] = [];
  routes.forEach((route, n) => {
    if (!isObject(route)) return;
    const matches = asArray(route.match);
    if (matches.length === 0) {
      if (emptyMatchAt >= 0) unused(n, routeName(route, n), 'only the last rule can have no matches');
      emptyMatchAt = n;
      return;
    }
    let duplicates = 0;
    matches.forEach((m, j) => {
      if (emptyMatchAt >= 0) {
        unused(n, routeName(route, n), 'route without matches defined before');
        return;
      }
      const key = matchKey(m);
      const dup = seen.get(key);
      if (dup !== undefined) {
        ineffective(['spec', kind, n, 'match', j], routeName(route, n), requestName(m, j), routeName(routes[dup], dup));
        duplicates++;
        return;
      }
      seen.set(key, n);
      const mo = asObject(m);
      const prefix = str(asObject(mo.uri).prefix);
      if (kind === 'http' && prefix) {
        prefixMatches.push({
          rule: n,
          match: j,
          routeStr: routeName(route, n),
          matchStr: requestName(m, j),
          prefix,
          port: num(mo.port) ?? 0,
          // Istio's overlap check assumes GET when no method is matched.
          method: exactOrPrefix(mo.method) || 'exact:GET',
          authority: exactOrPrefix(mo.authority),
          headers: mapOf(mo.headers),
          queryParams: mapOf(mo.queryParams),
          withoutHeaders: mapOf(mo.withoutHeaders),
        });
      }
    });
    if (duplicates === matches.length) unused(n, routeName(route, n), 'all matches used by prior rules');
  });

  for (let i = 0; i < prefixMatches.length; i++) {
    for (let k = i + 1; k < prefixMatches.length; k++) {
      const a = prefixMatches[i];
      const b = prefixMatches[k];
      if (a.prefix === b.prefix) continue; // identical matches were reported above
      if (covers(a, b)) {
        ineffective(
          ['spec', 'http', b.rule, 'match', b.match],
          b.routeStr,
          `${b.matchStr} of prefix ${b.prefix}`,
          `${a.matchStr} of prefix ${a.prefix} on ${a.routeStr}`,
        );
      }
    }
  }
}
