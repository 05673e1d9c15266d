/**
 * Who may use the console port. It is a control-plane port: every request needs the mesh's
 * token, as `Authorization: Bearer <token>` (the CLI, scripts) or as the console's session
 * cookie (a browser). A browser gets the cookie once: `sinew up` prints the console URL with
 * `?token=<token>`, and the console answers it with the cookie (HttpOnly, SameSite=Strict)
 * and a redirect to the same URL without the token, so the token leaves the address bar and
 * the history.
 *
 * Writes (anything but GET and HEAD) made with the cookie must also come from the console's
 * own origin: the `Origin` header, which browsers send on every cross-origin and every
 * non-GET fetch, must name the same host and port as `Host`, and `Host` must be a name this
 * port answers to (a loopback name or the address it listens on), so neither a form on another
 * site nor a DNS-rebound page can write config (OWASP's CSRF and DNS-rebinding defences).
 */
import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { bearerToken, sameSecret } from '../credentials.js';

export const SESSION_COOKIE = 'sinew_console';

export type AuthResult = { ok: true; via: 'bearer' | 'cookie' } | { ok: false; status: 401 | 403; reason: string };

export class ConsoleAuth {
  private readonly session: string;
  private readonly hosts: Set<string>;

  constructor(private readonly token: string, listenHost: string, port: number) {
    // The cookie is derived from the token, not the token itself: a leaked cookie does not open the API port.
    this.session = createHmac('sha256', token).update('sinew console session').digest('hex');
    const names = new Set(['localhost', '127.0.0.1', '[::1]', listenHost.includes(':') && !listenHost.startsWith('[') ? `[${listenHost}]` : listenHost]);
    this.hosts = new Set([...names].map((n) => `${n}:${port}`));
  }

  /** Whether `?token=` holds the token (the login link). */
  tokenMatches(presented: string | null): boolean {
    return presented !== null && sameSecret(presented, this.token);
  }

  /** The Set-Cookie value that logs a browser in. */
  sessionCookie(): string {
    return `${SESSION_COOKIE}=${this.session}; HttpOnly; SameSite=Strict; Path=/`;
  }

  check(req: IncomingMessage): AuthResult {
    const bearer = bearerToken(req);
    if (bearer !== undefined) {
      return sameSecret(bearer, this.token) ? { ok: true, via: 'bearer' } : { ok: false, status: 401, reason: 'the bearer token is not the mesh\'s token' };
    }
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (!cookie || !sameSecret(cookie, this.session)) {
      return { ok: false, status: 401, reason: 'no credential: open the console URL that "sinew up" printed (it carries ?token=...), or send Authorization: Bearer <token> (the token is in the control plane\'s state directory, file api-token)' };
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const host = String(req.headers.host ?? '').toLowerCase();
      if (!this.hosts.has(host)) return { ok: false, status: 403, reason: `writes are refused for Host "${host}"; use the console's own address` };
      const origin = req.headers.origin;
      if (!origin || origin.toLowerCase() !== `http://${host}`) return { ok: false, status: 403, reason: `writes must come from the console's own page (Origin ${origin ?? 'missing'})` };
    }
    return { ok: true, via: 'cookie' };
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

