/**
 * Istio's AuthorizationPolicy rules: istio/istio pkg/config/validation/validation.go
 * ValidateAuthorizationPolicy and checkDryRunAnnotation, with the attribute checks of
 * pkg/config/security/security.go (ValidateAttribute, ValidateIPs, ValidatePorts,
 * CheckEmptyValues, CheckValidPathTemplate), plus the CRD's CEL rule on serviceAccounts.
 */
import { isIP } from 'node:net';
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import { asArray, asObject, checkPolicySelection, DRY_RUN_ANNOTATION, isObject, parseGoBool } from './rules.js';

const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks',
  'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains',
] as const;
const IP_FIELDS = ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const;
/** Source fields a TCP connection carries (the peer identity and addresses), as Istio counts them. */
const TCP_SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks',
  'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains',
] as const;
const OPERATION_FIELDS = ['ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths', 'hosts', 'notHosts'] as const;

/** Istio names the fields in Go style in its messages ("found in NotIpBlocks"). */
const goName = (field: string): string => field[0].toUpperCase() + field.slice(1);

// === security.go attribute checks ===

/** security.ValidateIPs for one value. */
function checkIPValue(v: string): string | undefined {
  if (v.includes('/')) {
    const [ip, bits, extra] = v.split('/');
    const version = isIPv(ip);
    const max = version === 4 ? 32 : 128;
    if (extra !== undefined || version === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > max) return `bad CIDR range (${v})`;
    return undefined;
  }
  return isIPv(v) === 0 ? `bad IP address (${v})` : undefined;
}

/** netip.ParseAddr: an IPv4 or IPv6 address (an IPv6 zone such as `%eth0` is allowed). */
function isIPv(value: string): number {
  const zone = value.indexOf('%');
  return isIP(zone > 0 && value.includes(':') ? value.slice(0, zone) : value);
}

/** security.ValidatePorts for one value: an unsigned integer up to 65535. */
function checkPortValue(v: string): string | undefined {
  if (!/^\d+$/.test(v)) return `bad port (${v}): not a number`;
  if (Number(v) > 65535) return `bad port (${v}): must be in the range 0..65535`;
  return undefined;
}

/** security.validateMapKey: `a[b]`. */
function mapKeyError(key: string): string | undefined {
  const open = key.indexOf('[');
  if (key.endsWith(']') && open > 0 && open < key.length - 2) return undefined;
  return `bad key (${key}): should have format a[b]`;
}

/**
 * security.ValidateAttribute, split so that a bad value is reported at its own index:
 * returns the key's own error and a checker for each value.
 */
function attributeRules(key: string): { keyError?: string; value?: (v: string) => string | undefined } {
  if (key.startsWith('request.headers')) return { keyError: mapKeyError(key) };
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') return { value: checkIPValue };
  if (['source.namespace', 'source.principal', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'connection.sni', 'source.trustDomain', 'source.serviceAccount'].includes(key)) return {};
  if (key.startsWith('request.auth.claims')) return { keyError: mapKeyError(key) };
  if (key === 'destination.port') return { value: checkPortValue };
  if (key.startsWith('experimental.envoy.filters.')) return { keyError: mapKeyError(key) };
  if (key === 'destination.namespace') return { keyError: `attribute ${key} is replaced by the metadata.namespace` };
  if (key.startsWith('destination.labels')) return { keyError: `attribute ${key} is replaced by the workload selector` };
  if (key === 'destination.name' || key === 'destination.user') return { keyError: `deprecated attribute ${key}: only supported in v1alpha1` };
  return { keyError: `unknown attribute: ${key}` };
}

/** Named variables, `{}` and bare `*` / `**` segments are not supported inside a path template. */
const UNSUPPORTED_PATH_TEMPLATE = /\/\{\w+=\*\*?\}|\{\w*\}|\/\*\*?|\*\*?\//;
const isPathTemplate = (p: string): boolean => p.includes('{*}') || p.includes('{**}');

// === the validator ===

/** Istio's ValidateAuthorizationPolicy (and the dry-run annotation rule of validateMetadata). */
export function validateAuthorizationPolicy(spec: unknown, ctx: SemanticContext): void {
  const ap = asObject(spec);
  const action = typeof ap.action === 'string' ? ap.action : 'ALLOW';
  const where = `${ctx.resource.namespace}/${ctx.resource.name}`;

  const annotations = asObject(ctx.metadata.annotations);
  if (DRY_RUN_ANNOTATION in annotations) {
    const path = ['metadata', 'annotations', DRY_RUN_ANNOTATION];
    const val = String(annotations[DRY_RUN_ANNOTATION]);
    if (action !== 'ALLOW' && action !== 'DENY') {
      ctx.error(path, 'SNW0404', `the annotation ${DRY_RUN_ANNOTATION} currently only supports action ALLOW/DENY, found action ${action} in ${where}`);
    } else if (parseGoBool(val) === undefined) {
      ctx.error(path, 'SNW0404', `${where} has annotation ${DRY_RUN_ANNOTATION} with invalid value (${val}): use true or false`);
    }
  }

  checkPolicySelection(ap, ctx, { oneOf: 'SNW0402', selector: 'SNW0400', noLabels: 'SNW0401', targetRef: 'SNW0403' });

  const rules = asArray(ap.rules);
  if (action === 'CUSTOM') {
    if (ap.rules === undefined || ap.rules === null) {
      ctx.error(['spec', 'rules'], 'SNW0410', 'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
    } else if (!isObject(ap.provider) || typeof ap.provider.name !== 'string' || ap.provider.name === '') {
      ctx.error(isObject(ap.provider) ? ['spec', 'provider', 'name'] : ['spec', 'provider'], 'SNW0411', '`provider.name` must not be empty');
    }
    checkCustomRules(rules, ctx);
  }
  if (ap.provider !== undefined && action !== 'CUSTOM') {
    ctx.error(['spec', 'provider'], 'SNW0411', `\`provider\` must not be with non CUSTOM action, found ${action}`);
  }
  if (action === 'DENY' && (ap.rules === undefined || ap.rules === null)) {
    ctx.error(['spec', 'rules'], 'SNW0412', 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
  }

  rules.forEach((raw, i) => {
    if (!isObject(raw)) return; // a null rule is a structural error
    checkRule(raw, i, action, ctx);
  });
}

/** The fields CUSTOM (external authorization) cannot match on: the ext_authz filter runs before JWT and peer identity are known to it. */
function checkCustomRules(rules: unknown[], ctx: SemanticContext): void {
  rules.forEach((raw, i) => {
    const rule = asObject(raw);
    asArray(rule.from).forEach((f, j) => {
      const src = asObject(asObject(f).source);
      for (const field of ['namespaces', 'notNamespaces', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals']) {
        if (asArray(src[field]).length !== 0) {
          ctx.error(['spec', 'rules', i, 'from', j, 'source', field], 'SNW0410', `From.${goName(field)} is currently not supported with CUSTOM action`);
        }
      }
    });
    asArray(rule.when).forEach((w, k) => {
      const key = asObject(w).key;
      if (typeof key === 'string' && (key === 'source.namespace' || key === 'source.principal' || key.startsWith('request.auth.'))) {
        ctx.error(['spec', 'rules', i, 'when', k, 'key'], 'SNW0410', `${key} is currently not supported with CUSTOM action`);
      }
    });
  });
}

function checkEmptyValues(values: unknown, field: string, path: FieldPath, ctx: SemanticContext): void {
  // Istio reports the first empty value of each field.
  const idx = asArray(values).findIndex((v) => v === '');
  if (idx >= 0) ctx.error([...path, idx], 'SNW0414', `empty value not allowed, found in ${goName(field)}`);
}

function checkRule(rule: Record<string, unknown>, i: number, action: string, ctx: SemanticContext): void {
  const base = ['spec', 'rules', i];
  let fromRuleExist = false;
  let toRuleExist = false;
  let tcpRulesInFrom = false;
  let tcpRulesInTo = false;

  if (Array.isArray(rule.from) && rule.from.length === 0) ctx.error([...base, 'from'], 'SNW0413', `\`from\` must not be empty, found at rule ${i}`);
  asArray(rule.from).forEach((f, j) => {
    if (!isObject(f)) return;
    const path = [...base, 'from', j, 'source'];
    if (!isObject(f.source)) {
      ctx.error(path, 'SNW0413', `\`from.source\` must not be nil, found at rule ${i}`);
      return;
    }
    fromRuleExist = true;
    const src = f.source;
    if (SOURCE_FIELDS.every((field) => asArray(src[field]).length === 0)) {
      ctx.error(path, 'SNW0413', `\`from.source\` must not be empty, found at rule ${i}`);
    }
    for (const field of IP_FIELDS) {
      asArray(src[field]).forEach((v, k) => {
        if (typeof v !== 'string' || v === '') return;
        const err = checkIPValue(v);
        if (err) ctx.error([...path, field, k], 'SNW0415', err);
      });
    }
    for (const field of SOURCE_FIELDS) checkEmptyValues(src[field], field, [...path, field], ctx);
    // The CRD's CEL rule: a service account already names its namespace and principal.
    const hasSA = src.serviceAccounts !== undefined || src.notServiceAccounts !== undefined;
    if (hasSA && ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].some((k) => src[k] !== undefined)) {
      ctx.error(path, 'SNW0420', 'Cannot set serviceAccounts with namespaces or principals');
    }
    if (TCP_SOURCE_FIELDS.some((field) => src[field] !== undefined)) tcpRulesInFrom = true;
  });

  if (Array.isArray(rule.to) && rule.to.length === 0) ctx.error([...base, 'to'], 'SNW0413', `\`to\` must not be empty, found at rule ${i}`);
  asArray(rule.to).forEach((t, j) => {
    if (!isObject(t)) return;
    const path = [...base, 'to', j, 'operation'];
    if (!isObject(t.operation)) {
      ctx.error(path, 'SNW0413', `\`to.operation\` must not be nil, found at rule ${i}`);
      return;
    }
    toRuleExist = true;
    const op = t.operation;
    if (OPERATION_FIELDS.every((field) => asArray(op[field]).length === 0)) {
      ctx.error(path, 'SNW0413', `\`to.operation\` must not be empty, found at rule ${i}`);
    }
    for (const field of ['ports', 'notPorts'] as const) {
      asArray(op[field]).forEach((v, k) => {
        if (typeof v !== 'string' || v === '') return;
        const err = checkPortValue(v);
        if (err) ctx.error([...path, field, k], 'SNW0416', err);
      });
    }
    for (const field of OPERATION_FIELDS) checkEmptyValues(op[field], field, [...path, field], ctx);
    for (const field of ['paths', 'notPaths'] as const) {
      const idx = asArray(op[field]).findIndex((p) => typeof p === 'string' && isPathTemplate(p) && UNSUPPORTED_PATH_TEMPLATE.test(p));
      if (idx >= 0) ctx.error([...path, field, idx], 'SNW0417', `invalid or unsupported path template, found in ${goName(field)}`);
    }
    if (op.ports !== undefined || op.notPorts !== undefined) tcpRulesInTo = true;
  });

  asArray(rule.when).forEach((w, k) => {
    if (!isObject(w)) return;
    const path = [...base, 'when', k];
    const key = typeof w.key === 'string' ? w.key : '';
    if (key === '') {
      ctx.error([...path, 'key'], 'SNW0418', '`key` must not be empty');
      return;
    }
    const values = asArray(w.values);
    const notValues = asArray(w.notValues);
    if (values.length === 0 && notValues.length === 0) {
      ctx.error(path, 'SNW0418', `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
      return;
    }
    const rules = attributeRules(key);
    if (rules.keyError) ctx.error([...path, 'key'], 'SNW0418', `invalid \`key\` ${key}: ${rules.keyError}`);
    for (const [field, list, what] of [['values', values, 'value'], ['notValues', notValues, 'notValue']] as const) {
      list.forEach((v, idx) => {
        if (typeof v !== 'string') return;
        const err = v === '' ? `empty value not allowed, found in ${key}` : rules.value?.(v);
        if (err) ctx.error([...path, field, idx], 'SNW0418', `invalid \`${what}\` for \`key\` ${key}: ${err}`);
      });
    }
  });

  // A DENY rule that only names HTTP attributes cannot be evaluated on a TCP connection, so
  // Istio's generated filter denies such connections outright; warn as istiod does.
  if (action === 'DENY' && ((fromRuleExist && !toRuleExist && !tcpRulesInFrom) || (toRuleExist && !tcpRulesInTo))) {
    ctx.warn(base, 'SNW0419', 'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port');
  }
}
