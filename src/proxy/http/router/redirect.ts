/** Envoy's redirect (RouteEntryImplBase::newUri): scheme, host, port and path pieces replaced. */
import type { RedirectAction } from '../../../api/proxy-config.js';

export interface RedirectRequest {
  readonly scheme: string;
  readonly authority: string;
  readonly path: string;
  readonly query: string;
  /** The port the request arrived on. */
  readonly port: number;
  /** The path prefix the route's match consumed. */
  readonly matchedLength: number;
}

/** The Location of a redirect. */
export function redirectLocation(a: RedirectAction, r: RedirectRequest): string {
  const scheme = a.scheme ?? r.scheme;
  const { host: reqHost, port: reqPort } = splitAuthority(r.authority);
  let host = a.host ?? reqHost;
  let port: string | undefined;
  if (a.port !== undefined) port = String(a.port);
  else if (a.derivePort === 'FROM_REQUEST_PORT') port = String(reqPort ?? r.port);
  else if (a.derivePort === 'FROM_PROTOCOL_DEFAULT') port = undefined;
  else if (a.host === undefined && reqPort !== undefined) {
    // Envoy strips the original scheme's default port when the scheme changes.
    const dropped = scheme !== r.scheme && ((r.scheme === 'http' && reqPort === 80) || (r.scheme === 'https' && reqPort === 443));
    port = dropped ? undefined : String(reqPort);
  }
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  let path = r.path;
  if (a.path !== undefined) path = a.path;
  else if (a.prefixRewrite !== undefined) path = a.prefixRewrite + r.path.slice(r.matchedLength);
  const query = r.query && !path.includes('?') ? `?${r.query}` : '';
  return `${scheme}://${host}${port ? `:${port}` : ''}${path}${query}`;
}

export function splitAuthority(authority: string): { host: string; port?: number } {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    const host = authority.slice(1, end);
    const rest = authority.slice(end + 1);
    return rest.startsWith(':') ? { host, port: Number(rest.slice(1)) || undefined } : { host };
  }
  const colon = authority.lastIndexOf(':');
  if (colon < 0) return { host: authority };
  const port = Number(authority.slice(colon + 1));
  return Number.isInteger(port) && port > 0 && port < 65536 ? { host: authority.slice(0, colon), port } : { host: authority };
}
