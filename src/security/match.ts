/**
 * Istio's value matching for authorization, compiled once into closures: strings (exact,
 * `prefix*`, `*suffix`, `*` for "present"), hosts (case-insensitive, any port), path templates
 * (`{*}`, `{**}`), address blocks and ports. Each matcher is handed the request's values for
 * one attribute (several for a list-valued one, such as audiences or a list claim) and holds
 * when any of them matches.
 */
import { BlockList, isIP } from 'node:net';
import type { ValueMatcher } from './policy.js';

export type CompiledMatcher = (value: string) => boolean;

/** Compiles one matcher; throws for a matcher that cannot be compiled (a bad CIDR, a bad template). */
export function compileMatcher(m: ValueMatcher): CompiledMatcher {
  if ('exact' in m) {
    if (!m.ignoreCase) return (v) => v === m.exact;
    const want = m.exact.toLowerCase();
    return (v) => v.toLowerCase() === want;
  }
  if ('prefix' in m) {
    if (!m.ignoreCase) return (v) => v.startsWith(m.prefix);
    const want = m.prefix.toLowerCase();
    return (v) => v.toLowerCase().startsWith(want);
  }
  if ('suffix' in m) {
    if (!m.ignoreCase) return (v) => v.endsWith(m.suffix);
    const want = m.suffix.toLowerCase();
    return (v) => v.toLowerCase().endsWith(want);
  }
  if ('present' in m) return (v) => v.length > 0;
  if ('host' in m) return hostMatcher(m.host);
  if ('template' in m) return templateMatcher(m.template);
  if ('cidr' in m) return cidrMatcher(m.cidr);
  const port = String(m.port);
  return (v) => v === port;
}

/**
 * Istio's host matcher (pilot authz `HostMatcherWithRegex`): case-insensitive, and a host
 * written without a port also matches it with any port (`example.com` matches
 * `Example.com:8080`). `*.example.com` and `example.*` are suffix and prefix matches.
 */
function hostMatcher(host: string): CompiledMatcher {
  const want = host.toLowerCase();
  if (want === '*') return (v) => v.length > 0;
  if (want.startsWith('*')) {
    const suffix = want.slice(1);
    return (v) => {
      const h = v.toLowerCase();
      return h.endsWith(suffix) || stripPort(h).endsWith(suffix);
    };
  }
  if (want.endsWith('*')) {
    const prefix = want.slice(0, -1);
    return (v) => v.toLowerCase().startsWith(prefix);
  }
  return (v) => {
    const h = v.toLowerCase();
    return h === want || stripPort(h) === want;
  };
}

/** `host:port` -> `host`, leaving an IPv6 literal without a port alone. */
function stripPort(host: string): string {
  const colon = host.lastIndexOf(':');
  if (colon < 0) return host;
  if (host.startsWith('[')) return host.endsWith(']') ? host : host.slice(0, colon);
  if (host.indexOf(':') !== colon) return host; // bare IPv6
  return /^\d+$/.test(host.slice(colon + 1)) ? host.slice(0, colon) : host;
}

/**
 * Envoy's uri_template matcher, which Istio uses for paths with `{*}` or `{**}`: `{*}` matches
 * exactly one segment (at least one character, no `/`), `{**}` zero or more characters across
 * segments, and the rest literally. Envoy's segment characters are pchar (RFC 3986 3.3).
 */
function templateMatcher(template: string): CompiledMatcher {
  const PCHAR = "[A-Za-z0-9\\-._~%!$&'()*+,;:@=]";
  let source = '^';
  let rest = template;
  while (rest.length > 0) {
    if (rest.startsWith('{**}')) {
      source += `(?:${PCHAR}|/)*`;
      rest = rest.slice(4);
    } else if (rest.startsWith('{*}')) {
      source += `${PCHAR}+`;
      rest = rest.slice(3);
    } else {
      const next = rest.search(/\{\*{1,2}\}/);
      const literal = next < 0 ? rest : rest.slice(0, next);
      source += literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      rest = next < 0 ? '' : rest.slice(next);
    }
  }
  const re = new RegExp(source + '$');
  return (v) => re.test(v);
}

/** An address (`10.0.0.1`) or block (`10.0.0.0/16`, `2001:db8::/32`); an IPv4-mapped IPv6 peer counts as IPv4. */
function cidrMatcher(cidr: string): CompiledMatcher {
  const list = new BlockList();
  const [address, bits] = cidr.split('/');
  const family = isIP(address);
  if (family === 0) throw new TypeError(`not an IP address or CIDR block: ${cidr}`);
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) list.addAddress(address, type);
  else {
    const prefix = Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32) || !/^\d+$/.test(bits)) throw new TypeError(`not a CIDR block: ${cidr}`);
    list.addSubnet(address, prefix, type);
  }
  return (v) => {
    const ip = v.startsWith('::ffff:') && isIP(v.slice(7)) === 4 ? v.slice(7) : v;
    const f = isIP(ip);
    return f !== 0 && list.check(ip, f === 6 ? 'ipv6' : 'ipv4');
  };
}
