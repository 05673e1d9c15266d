/**
 * The original destination of traffic to a pass-through cluster (Istio's PassthroughCluster and
 * `loadBalancer.simple: PASSTHROUGH`, Envoy's ORIGINAL_DST). Under iptables capture Envoy reads
 * it from the socket (SO_ORIGINAL_DST); an app that reaches its sidecar as an HTTP forward proxy
 * (`HTTP_PROXY`, or a CONNECT tunnel) names it instead, in the request's authority — so the
 * authority is the original destination here: `host:port`, or the scheme's default port.
 */
import type { Address } from '../../api/proxy-config.js';

/** Why a request cannot pass through, as the local reply says it. */
export type PassthroughProblem = 'no_original_destination' | 'passthrough_to_self';

/**
 * `example.com:8080` -> { host: 'example.com', port: 8080 }; `[::1]:80` -> { host: '::1', ... };
 * without a port, `defaultPort`. Undefined for an authority with no host or a bad port.
 */
export function originalDestination(authority: string, defaultPort: number): Address | undefined {
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    if (end < 0) return undefined;
    host = authority.slice(1, end);
    const rest = authority.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return undefined;
    portText = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
  }
  if (host === '' || /[\s/?#@]/.test(host)) return undefined;
  if (portText === undefined) return { host, port: defaultPort };
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  return port > 0 && port < 65536 ? { host, port } : undefined;
}

const LOOPBACK = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1|0\.0\.0\.0|::)$/i;

/**
 * A pass-through to the very listener the request came in on would send the proxy its own
 * request, again and again, until it runs out of sockets (under iptables capture Envoy is kept
 * out of this loop by its own uid's exemption; an HTTP_PROXY client has no such guard).
 */
export function isOwnListener(dest: Address, listener: { host: string; port: number }): boolean {
  if (dest.port !== listener.port) return false;
  const host = dest.host.toLowerCase();
  return host === listener.host.toLowerCase() || (LOOPBACK.test(host) && LOOPBACK.test(listener.host));
}

/**
 * The original destination of a request the router sends to an originalDst cluster, or why
 * there is none. `listener` is the address the request arrived on (its bound port).
 */
export function passthroughDestination(authority: string, scheme: string, listener: { host: string; port: number }): Address | PassthroughProblem {
  const dest = originalDestination(authority, scheme === 'https' ? 443 : 80);
  if (dest === undefined) return 'no_original_destination';
  return isOwnListener(dest, listener) ? 'passthrough_to_self' : dest;
}
