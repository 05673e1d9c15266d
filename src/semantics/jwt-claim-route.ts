/**
 * Istio's routing on JWT claims (istio.io's jwt-route task): a VirtualService match on a
 * "header" named `@request.auth.claims.<name>` is not a header match at all. Istio
 * (pilot/pkg/networking/core/route TranslateRouteMatch -> translateMetadataMatch, with
 * pkg/jwt ToRoutingClaim) turns it into a match on the claims of the token the jwt_authn
 * filter verified, and its validation allows it only in VirtualServices bound to gateways,
 * where the jwt filter clears the route cache once a token is verified.
 *
 * The key names the claim by its path into the payload, with `.` or `[]` as separator:
 * `@request.auth.claims.group.id` and `@request.auth.claims[group][id]` are the nested claim
 * `id` of `group`. The prefix is compared case-insensitively, the claim names as written.
 */

const PREFIX = '@request.auth.claims';

/**
 * The claim path a routing key names (Istio's ToRoutingClaim), or undefined when the key is
 * an ordinary header name: `@request.auth.claims.groups` -> `["groups"]`.
 */
export function routingClaimPath(key: string): string[] | undefined {
  if (key.length <= PREFIX.length || key.slice(0, PREFIX.length).toLowerCase() !== PREFIX) return undefined;
  const name = key.slice(PREFIX.length);
  if (name.startsWith('.') && name.length > 1) return name.slice(1).split('.');
  if (name.startsWith('[') && name.endsWith(']') && name.length > 2) return name.slice(1, -1).split('][');
  return undefined;
}
