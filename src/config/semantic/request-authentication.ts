/**
 * Istio's RequestAuthentication rules: istio/istio pkg/config/validation/validation.go
 * ValidateRequestAuthentication and validateJwtRule, security.ParseJwksURI
 * (pkg/config/security/security.go), plus the CRD's CEL rules (jwks vs jwksUri).
 */
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import {
  asArray,
  asObject,
  checkDuration,
  checkIstioHeaderName,
  checkPolicySelection,
  DRY_RUN_ANNOTATION,
  dryRunAnnotationUnsupported,
  isObject,
} from './rules.js';

/**
 * security.ParseJwksURI as Go's url.Parse sees it: the scheme (lower-cased) must be http or
 * https; control characters make the URL unparsable.
 */
export function checkJwksUri(uri: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(uri)) return `parse ${JSON.stringify(uri)}: net/url: invalid control character in URL`;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri);
  const scheme = m ? m[1].toLowerCase() : '';
  if (scheme !== 'http' && scheme !== 'https') return `URI scheme "${scheme}" is not supported: jwksUri must be an http:// or https:// URL`;
  try {
    const url = new URL(uri);
    if (url.hostname === '') return `jwksUri "${uri}" has no host`;
  } catch {
    return `jwksUri "${uri}" is not a valid URL`;
  }
  return undefined;
}

/**
 * What lestrrat-go/jwx's jwk.Parse accepts: a JSON Web Key Set (`{"keys": [...]}`) or a
 * single JSON Web Key, each key an object with a `kty`.
 */
export function checkJwks(jwks: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(jwks);
  } catch (err) {
    return `jwks parse error: ${(err as Error).message}`;
  }
  if (!isObject(parsed)) return 'jwks parse error: expected a JSON object (a key set or a key)';
  const keys = 'keys' in parsed ? parsed.keys : [parsed];
  if (!Array.isArray(keys)) return 'jwks parse error: "keys" must be a list';
  for (const [i, key] of keys.entries()) {
    if (!isObject(key) || typeof key.kty !== 'string' || key.kty === '') return `jwks parse error: key ${i} has no "kty"`;
  }
  return undefined;
}

/** Istio's ValidateRequestAuthentication. */
export function validateRequestAuthentication(spec: unknown, ctx: SemanticContext): void {
  const ra = asObject(spec);
  // Only AuthorizationPolicy has a dry-run mode (Istio's checkDryRunAnnotation).
  const dryRun = dryRunAnnotationUnsupported(ctx.metadata.annotations, ctx.resource.namespace, ctx.resource.name);
  if (dryRun) ctx.error(['metadata', 'annotations', DRY_RUN_ANNOTATION], 'SNW0404', dryRun);

  checkPolicySelection(ra, ctx, { oneOf: 'SNW0402', selector: 'SNW0400', noLabels: 'SNW0401', targetRef: 'SNW0403' });
  asArray(ra.jwtRules).forEach((rule, i) => {
    if (isObject(rule)) checkJwtRule(rule, ['spec', 'jwtRules', i], ctx);
  });
}

/** Istio's validateJwtRule. */
function checkJwtRule(rule: Record<string, unknown>, base: FieldPath, ctx: SemanticContext): void {
  const uriField = rule.jwksUri !== undefined ? 'jwksUri' : 'jwks_uri';
  const jwksUri = typeof rule[uriField] === 'string' ? (rule[uriField] as string) : '';
  const issuer = typeof rule.issuer === 'string' ? rule.issuer : '';
  // An empty issuer is accepted when the keys come from a jwksUri (Istio's test
  // "empty issuer and set jwksUri"); without both, no token can be matched.
  if (issuer === '' && jwksUri === '') ctx.error([...base, 'issuer'], 'SNW0430', 'issuer must be set');

  asArray(rule.audiences).forEach((a, i) => {
    if (a === '') ctx.error([...base, 'audiences', i], 'SNW0437', 'audience must be non-empty string');
  });
  if (jwksUri !== '') {
    const err = checkJwksUri(jwksUri);
    if (err) ctx.error([...base, uriField], 'SNW0431', err);
  }
  if (typeof rule.jwks === 'string' && rule.jwks !== '') {
    const err = checkJwks(rule.jwks);
    if (err) ctx.error([...base, 'jwks'], 'SNW0432', err);
  }
  const keySources = ['jwksUri', 'jwks_uri', 'jwks'].filter((k) => rule[k] !== undefined);
  if (keySources.length > 1) ctx.error(base, 'SNW0433', `only one of jwks or jwksUri can be set (found ${keySources.join(', ')})`);

  asArray(rule.fromHeaders).forEach((h, i) => {
    if (isObject(h) && h.name === '') ctx.error([...base, 'fromHeaders', i, 'name'], 'SNW0434', 'location header name must be non-empty string');
  });
  asArray(rule.fromParams).forEach((p, i) => {
    if (p === '') ctx.error([...base, 'fromParams', i], 'SNW0434', 'location query must be non-empty string');
  });
  asArray(rule.fromCookies).forEach((c, i) => {
    if (c === '') ctx.error([...base, 'fromCookies', i], 'SNW0434', 'cookie name must be non-empty string');
  });
  asArray(rule.outputClaimToHeaders).forEach((raw, i) => {
    if (!isObject(raw)) return;
    const path = [...base, 'outputClaimToHeaders', i];
    if (raw.claim === '' || raw.header === '') {
      ctx.error(path, 'SNW0435', 'outputClaimToHeaders header and claim value must be non-empty string');
      return;
    }
    if (typeof raw.header === 'string') {
      const err = checkIstioHeaderName(raw.header);
      if (err) ctx.error([...path, 'header'], 'SNW0435', err);
    }
  });
  if (typeof rule.outputPayloadToHeader === 'string' && rule.outputPayloadToHeader !== '') {
    const err = checkIstioHeaderName(rule.outputPayloadToHeader);
    if (err) ctx.error([...base, 'outputPayloadToHeader'], 'SNW0435', err);
  }
  if (rule.timeout !== undefined) {
    const err = checkDuration(rule.timeout);
    if (err) ctx.error([...base, 'timeout'], 'SNW0436', err);
  }
  asArray(rule.spaceDelimitedClaims).forEach((c, i) => {
    if (c === '') ctx.error([...base, 'spaceDelimitedClaims', i], 'SNW0437', 'spaceDelimitedClaims entries must be non-empty strings');
  });
}
