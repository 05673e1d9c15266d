/**
 * What the control plane's HTTP ports check before anything else, against web pages and
 * other local processes (issue: a page at http://evil.example could apply config through a
 * browser on the same machine):
 *
 * - **Host** must name the port's own address (a loopback port also answers to `localhost`,
 *   `127.0.0.1` and `[::1]`; a port bound to every address to any IP literal and the machine's
 *   name). A browser sends the page's host name, so a DNS-rebinding page (evil.example
 *   resolving to 127.0.0.1) is refused (RFC 9110 §7.2; the defence Docker's and Jupyter's
 *   local APIs use).
 * - **Origin**, when a browser sends one, must be the port itself (RFC 6454): the console the
 *   control plane serves is same-origin, any other page is foreign.
 * - **Content type** of a body: `application/json` or `application/yaml` only. `text/plain`
 *   and form encodings are what a page can send cross-origin without a CORS preflight
 *   (Fetch's "CORS-safelisted request-header"), so refusing them closes that door too.
 *
 * The credential check itself lives in credentials.ts.
 */
import type { IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { isIP } from 'node:net';

/** A refusal: the status and the message for the JSON error body. */
export interface Refusal {
  status: 403 | 415;
  message: string;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** `host[:port]` -> lower-case host and port (80 when absent: these ports speak plain http). */
function splitAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^\s:/@[\]]+)(?::(\d{1,5}))?$/i.exec(authority.trim());
  if (!m) return undefined;
  return { host: m[1]!.toLowerCase(), port: m[2] === undefined ? 80 : Number(m[2]) };
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
const bareHost = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

/**
 * Which `Host` values name a server bound to `bindHost:port` (see the file comment); more
 * names (a load balancer's, a tunnel's) can be allowed with `extraHosts`.
 */
export function ownAuthorities(bindHost: string, port: number, extraHosts: readonly string[] = []): (authority: string) => boolean {
  const names = new Set<string>([bindHost.includes(':') && !bindHost.startsWith('[') ? `[${bindHost}]` : bindHost, ...extraHosts].map((h) => h.toLowerCase()));
  const any = bindHost === '0.0.0.0' || bindHost === '::' || bindHost === '';
  if (any || isLoopback(bindHost)) for (const n of LOOPBACK_NAMES) names.add(n);
  if (any) names.add(hostname().toLowerCase());
  return (authority) => {
    const parsed = splitAuthority(authority);
    if (!parsed || parsed.port !== port) return false;
    if (names.has(parsed.host)) return true;
    if (isLoopback(parsed.host) && isLoopback(bindHost)) return true;
    return any && isIP(bareHost(parsed.host)) !== 0;
  };
}

/** Refuses a request whose Host is not this port's own, or whose Origin is another site. */
export function checkHostAndOrigin(req: IncomingMessage, isOwn: (authority: string) => boolean): Refusal | undefined {
  const host = req.headers.host;
  if (host === undefined || !isOwn(host)) {
    return { status: 403, message: `Host "${host ?? ''}" is not this control plane's address; use the address it listens on (sinew status prints it)` };
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let own = false;
    try {
      const url = new URL(origin);
      own = url.protocol === 'http:' && url.pathname === '/' && isOwn(url.host);
    } catch {
      // "null" (a sandboxed or file: page) and anything unparsable are foreign.
    }
    if (!own) return { status: 403, message: `requests from web pages of another origin (${origin}) are refused` };
  }
  return undefined;
}

/** The media types a request body may have. */
export const BODY_TYPES = ['application/json', 'application/yaml'] as const;

/**
 * Refuses a request that carries a body (or says it will) of any other media type than
 * `allowed`, or in another charset than UTF-8.
 */
export function checkBodyType(req: IncomingMessage, allowed: readonly string[] = BODY_TYPES): Refusal | undefined {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  const type = req.headers['content-type'];
  if (!hasBody && type === undefined) return undefined;
  const [essence = '', ...params] = String(type ?? '').split(';').map((p) => p.trim().toLowerCase());
  if (!allowed.includes(essence)) {
    return { status: 415, message: `request bodies must be ${allowed.join(' or ')}${type === undefined ? ' (no Content-Type was sent)' : `, not ${essence || '""'}`}` };
  }
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/^"|"$/g, '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return { status: 415, message: `request bodies must be UTF-8, not ${charset}` };
  return undefined;
}
