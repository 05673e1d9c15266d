/**
 * A listener's filter chains (Envoy's filter_chains with filter_chain_match): which chain a new
 * connection gets, from what the TLS inspector read of it, and each chain's transport socket.
 * Built once per applied config (and rebuilt when the certificates it uses change); the
 * listener only asks `select`. HTTP and TCP listeners share them: a TCP chain may terminate
 * TLS (a sidecar's inbound TCP port under mutual TLS) or only match on the ClientHello's
 * server name and pass the bytes on encrypted (`FilterChain.tcp` without `tls`: TLS
 * passthrough by SNI).
 */
import type { DownstreamTls, FilterChain, FilterChainMatch, Listener, Secret, TcpProxy } from '../../api/proxy-config.js';
import type tls from 'node:tls';
import { downstreamTlsProblems, downstreamTransport, type DownstreamTransport } from './transport-socket.js';
import { inspectClientHello } from './tls-inspector.js';

export interface CompiledFilterChain {
  readonly name: string;
  /** The route table of this chain's requests (http listeners), when it has its own. */
  readonly routeConfigName?: string;
  /** The TCP routes of this chain's connections (tcp listeners), when it has its own. */
  readonly tcp?: TcpProxy;
  /** Absent: plaintext. */
  readonly transport: DownstreamTransport | undefined;
  readonly match: FilterChainMatch;
}

/** What the listener knows of a connection when it chooses (from the TLS inspector). */
export interface ConnectionFacts {
  readonly transportProtocol: 'tls' | 'raw_buffer';
  readonly serverName?: string;
  readonly alpn?: readonly string[];
}

export interface ListenerChains {
  readonly chains: readonly CompiledFilterChain[];
  /** Some chain needs the TLS inspector's facts (more than one chain, or a match). */
  readonly inspect: boolean;
  /** Settings and certificates: a change rebuilds the chains. */
  readonly key: string;
  select(facts: ConnectionFacts): CompiledFilterChain | undefined;
}

/** The chains of a listener: `filterChains`, or the one (or two, permissive) its `tls` stands for, or plaintext. */
export function chainsOf(l: Listener): FilterChain[] {
  if (l.filterChains !== undefined) return l.filterChains;
  if (l.tls === undefined) return [{ name: 'plaintext' }];
  if (!l.tls.permissive) return [{ name: 'tls', tls: l.tls }];
  // Permissive (Envoy's tls_inspector and a plaintext chain beside the TLS one).
  return [
    { name: 'tls', match: { transportProtocol: 'tls' }, tls: l.tls },
    { name: 'plaintext', match: { transportProtocol: 'raw_buffer' } },
  ];
}

/** Problems with a listener's chains and their TLS settings, as `[field under the listener, message]`. */
export function filterChainProblems(l: Listener, secrets: readonly Secret[] | undefined): [string, string][] {
  const out: [string, string][] = [];
  if (l.filterChains !== undefined && l.tls !== undefined) out.push(['.filterChains', 'give either tls or filterChains, not both']);
  if (l.filterChains !== undefined && (!Array.isArray(l.filterChains) || l.filterChains.length === 0)) {
    out.push(['.filterChains', 'must list at least one filter chain']);
    return out;
  }
  const chains = chainsOf(l);
  const names = new Set<string>();
  const matches = new Set<string>();
  chains.forEach((c, i) => {
    const at = l.filterChains ? `.filterChains[${i}]` : '';
    if (l.filterChains && (typeof c.name !== 'string' || c.name.length === 0)) out.push([`${at}.name`, 'a filter chain needs a name']);
    if (names.has(c.name)) out.push([`${at}.name`, `two filter chains are named ${JSON.stringify(c.name)}`]);
    names.add(c.name);
    const m = c.match ?? {};
    for (const n of m.serverNames ?? []) {
      // Labels may hold `_`: Istio's AUTO_PASSTHROUGH names (`outbound_.9080_._.reviews...`) do.
      if (!/^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(n)) out.push([`${at}.match.serverNames`, `${JSON.stringify(n)} is not a lower-case host name or *.suffix`]);
    }
    if (m.transportProtocol !== undefined && m.transportProtocol !== 'tls' && m.transportProtocol !== 'raw_buffer') out.push([`${at}.match.transportProtocol`, 'must be tls or raw_buffer']);
    if (c.tls !== undefined && m.transportProtocol === 'raw_buffer') out.push([`${at}.match.transportProtocol`, 'a chain that terminates TLS cannot match raw_buffer connections']);
    if (c.tcp !== undefined && l.protocol !== 'tcp') out.push([`${at}.tcp`, 'TCP routes belong to the chains of tcp listeners']);
    if (c.routeConfigName !== undefined && l.protocol !== 'http') out.push([`${at}.routeConfigName`, 'a route table belongs to the chains of http listeners']);
    if (l.protocol === 'tcp' && m.applicationProtocols?.length && c.tls === undefined && m.transportProtocol !== 'tls') out.push([`${at}.match.applicationProtocols`, 'ALPN is only known of TLS connections: match transportProtocol tls too']);
    // Envoy refuses two chains with the same match: the choice between them would be arbitrary.
    const key = JSON.stringify([[...(m.serverNames ?? [])].sort(), m.transportProtocol ?? '', [...(m.applicationProtocols ?? [])].sort()]);
    if (matches.has(key)) out.push([`${at}.match`, 'another filter chain has the same match']);
    matches.add(key);
    if (c.tls !== undefined) for (const [field, message] of downstreamTlsProblems(c.tls, secrets, l.protocol === 'http' && Boolean(l.http?.http2))) out.push([`${at || ''}${field}`, message]);
  });
  return out;
}

/** Builds the chains of a validated listener. */
export interface ChainHandlers {
  /** A handshake completed (and the client passed): serve the TLS socket, on `chain`. */
  onSecure(socket: tls.TLSSocket, chain: CompiledFilterChain): void;
  /** A handshake failed, or the client was refused: `chain` names the chain. */
  onError(err: Error, chain: string): void;
}

export function buildListenerChains(l: Listener, secrets: readonly Secret[] | undefined, handshakeTimeoutMs: number | undefined, handlers: ChainHandlers): ListenerChains {
  const tcp = l.protocol === 'tcp';
  const http2 = !tcp && Boolean(l.http?.http2);
  const chains: CompiledFilterChain[] = chainsOf(l).map((c) => {
    const chain: { -readonly [K in keyof CompiledFilterChain]: CompiledFilterChain[K] } = { name: c.name, match: c.match ?? {}, transport: undefined };
    if (c.routeConfigName !== undefined) chain.routeConfigName = c.routeConfigName;
    if (c.tcp !== undefined) chain.tcp = c.tcp;
    if (c.tls !== undefined) {
      chain.transport = downstreamTransport(c.tls, secrets, { http2, tcp, handshakeTimeoutMs, onSecure: (socket) => handlers.onSecure(socket, chain), onError: (err) => handlers.onError(err, c.name) });
    }
    return chain;
  });
  const only = chains.length === 1 ? chains[0] : undefined;
  const inspect = !(only !== undefined && isEmptyMatch(only.match));
  const key = listenerChainsKey(l, secrets, handshakeTimeoutMs);
  return { chains, inspect, key, select: (facts) => (only !== undefined && !inspect ? only : selectChain(chains, facts)) };
}

/**
 * What decides a listener's chains: their settings and the contents of the secrets they name.
 * A change (a rotated certificate) builds new chains, used by new connections only.
 */
export function listenerChainsKey(l: Listener, secrets: readonly Secret[] | undefined, handshakeTimeoutMs: number | undefined): string {
  const named = new Set<string>();
  for (const c of chainsOf(l)) if (c.tls) for (const n of [c.tls.certificate, c.tls.validationContext]) if (n !== undefined) named.add(n);
  const used = (secrets ?? []).filter((s) => named.has(s.name));
  return JSON.stringify([chainsOf(l), l.protocol, Boolean(l.http?.http2), handshakeTimeoutMs ?? null, used]);
}

/**
 * Envoy's tls_inspector then filter_chain_match, from a connection's first bytes: the chain
 * for them, `'need-more'` while the ClientHello is incomplete, `undefined` when no chain
 * matches (Envoy then closes the connection: listener_no_filter_chain_match).
 */
export function selectByFirstBytes(chains: ListenerChains, seen: Buffer): CompiledFilterChain | 'need-more' | undefined {
  const hello = inspectClientHello(seen);
  if (hello.kind === 'need-more') return 'need-more';
  if (hello.kind === 'raw_buffer') return chains.select({ transportProtocol: 'raw_buffer' });
  return chains.select(hello.kind === 'tls' ? { transportProtocol: 'tls', serverName: hello.serverName, alpn: hello.alpn } : { transportProtocol: 'tls' });
}

const isEmptyMatch = (m: FilterChainMatch) => !m.serverNames?.length && m.transportProtocol === undefined && !m.applicationProtocols?.length;

/** Envoy's FilterChainManagerImpl order: server name, then transport protocol, then ALPN; the most specific at each step. */
export function selectChain<C extends { readonly match: FilterChainMatch }>(chains: readonly C[], facts: ConnectionFacts): C | undefined {
  let candidates = byServerName(chains, facts.serverName);
  const tp = candidates.filter((c) => c.match.transportProtocol === facts.transportProtocol);
  candidates = tp.length ? tp : candidates.filter((c) => c.match.transportProtocol === undefined);
  const offered = facts.alpn ?? [];
  const alpn = candidates.filter((c) => c.match.applicationProtocols?.some((p) => offered.includes(p)));
  candidates = alpn.length ? alpn : candidates.filter((c) => !c.match.applicationProtocols?.length);
  return candidates[0];
}

function byServerName<C extends { readonly match: FilterChainMatch }>(chains: readonly C[], serverName: string | undefined): C[] {
  if (serverName !== undefined) {
    const exact = chains.filter((c) => c.match.serverNames?.includes(serverName));
    if (exact.length) return exact;
    // The longest wildcard first: `*.b.example.com` before `*.example.com`.
    for (let dot = serverName.indexOf('.'); dot >= 0; dot = serverName.indexOf('.', dot + 1)) {
      const wildcard = `*${serverName.slice(dot)}`;
      const hits = chains.filter((c) => c.match.serverNames?.includes(wildcard));
      if (hits.length) return hits;
    }
  }
  return chains.filter((c) => !c.match.serverNames?.length);
}

export type { DownstreamTls };
