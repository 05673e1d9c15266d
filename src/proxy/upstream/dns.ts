/**
 * DNS resolution of `dns` clusters (ServiceEntry `resolution: DNS` and `DNS_ROUND_ROBIN`),
 * as Envoy resolves the clusters Istio gives them:
 *
 * - `strict` (Istio's DNS -> Envoy STRICT_DNS): every endpoint hostname is resolved, and every
 *   address it resolves to is a host of the cluster, balanced like any other; the names are
 *   resolved again when the answer's TTL runs out (Envoy's respect_dns_ttl, which Istio sets),
 *   or every `refreshMs` when it carries none (Istio's meshConfig.dnsRefreshRate, 60 s by
 *   default), and the hosts follow the answers.
 * - `logical` (Istio's DNS_ROUND_ROBIN -> Envoy LOGICAL_DNS): only the first endpoint's name
 *   counts, and new connections go to the first address of its latest answer (one host whose
 *   address moves with the answers); for a name with many addresses that rotate, each
 *   resolution hands new connections to the next.
 *
 * Endpoints that are already IP addresses are kept as they are. A name that fails to resolve
 * contributes no host (the cluster answers 503 UH when none is left, as Envoy's does); a
 * failed refresh keeps the last answer (Envoy keeps its hosts on a resolution failure).
 *
 * Names are resolved by the proxy itself with the lookup it is given: the system's
 * (getaddrinfo: /etc/hosts, then the resolvers of /etc/resolv.conf, as Envoy's getaddrinfo
 * resolver) or, with `sinew proxy --dns-resolver`, the DNS servers named there (c-ares, as
 * Envoy's `dns_resolvers`).
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { Cluster, Endpoint } from '../../api/proxy-config.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';

/** An answer with the records' time to live (seconds; the smallest of the records'). */
export interface DnsAnswer {
  addresses: string[];
  /** Absent or 0: the answer says nothing about how long it holds (the refresh rate decides). */
  ttlSeconds?: number;
}

/**
 * Resolves a name to its addresses (IPv4 first), with their TTL when the resolver knows it
 * (getaddrinfo does not); rejects when it has none.
 */
export type DnsLookup = (hostname: string) => Promise<string[] | DnsAnswer>;

/** The system resolver (getaddrinfo), as a process's own connections would resolve the name. */
export const systemLookup: DnsLookup = async (hostname) => {
  const answers = await dns.lookup(hostname, { all: true, order: 'ipv4first' });
  return answers.map((a) => a.address);
};

/**
 * A lookup that asks these DNS servers (`host:port` or `[v6]:port`, port 53 by default) and
 * nothing else: A records, then AAAA when there are none. Two tries of 2 s each, so that a
 * dead server costs a refresh at most a few seconds.
 */
export function serverLookup(servers: readonly string[]): DnsLookup {
  const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([...servers]);
  const answer = (records: { address: string; ttl: number }[]): DnsAnswer => ({ addresses: records.map((r) => r.address), ttlSeconds: Math.min(...records.map((r) => r.ttl)) });
  return async (hostname) => {
    const v4 = await resolver.resolve4(hostname, { ttl: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENODATA' || err.code === 'ENOTFOUND') return [];
      throw err;
    });
    if (v4.length > 0) return answer(v4);
    return answer(await resolver.resolve6(hostname, { ttl: true }));
  };
}

/** Istio's default dnsRefreshRate (meshConfig), used when a cluster names none. */
export const DEFAULT_DNS_REFRESH_MS = 60_000;

interface Watched {
  config: Cluster;
  endpoints: readonly Endpoint[];
  /** The names to resolve (the endpoints' hostnames, in order). */
  names: string[];
  /** The last answer per name. */
  answers: Map<string, string[]>;
  /** The TTL (ms) of each name's last answer, when it had one. */
  ttls: Map<string, number>;
  timer: TimerHandle | undefined;
  /** Bumped on every change of config, so a resolution started before it is dropped. */
  generation: number;
  /** Settles when the first resolution of this generation is done. */
  first: Promise<void>;
}

/**
 * Keeps the resolved endpoints of every `dns` cluster: `endpoints()` gives the addresses known
 * now (resolving in the background), and `onResolved(name, endpoints)` is called whenever an
 * answer changes them.
 */
export class DnsResolution {
  readonly #watched = new Map<string, Watched>();
  #closed = false;

  constructor(
    private readonly deps: {
      lookup: DnsLookup;
      clock: Clock;
      logger: Logger;
      onResolved: (cluster: string, endpoints: Endpoint[]) => void;
    },
  ) {}

  /**
   * The endpoints a `dns` cluster has now: its IP endpoints and what its names resolved to
   * last. Starts (or restarts, when the names changed) the cluster's resolution.
   */
  endpoints(config: Cluster, endpoints: readonly Endpoint[]): Endpoint[] {
    const names = [...new Set(endpoints.filter((e) => isIP(e.address.host) === 0).map((e) => e.address.host.toLowerCase()))];
    let w = this.#watched.get(config.name);
    const refreshMs = config.dns?.refreshMs ?? DEFAULT_DNS_REFRESH_MS;
    const same = w !== undefined && w.names.join() === names.join() && (w.config.dns?.refreshMs ?? DEFAULT_DNS_REFRESH_MS) === refreshMs && w.config.dns?.mode === config.dns?.mode;
    if (w && same) {
      w.config = config;
      w.endpoints = endpoints;
      return expand(w);
    }
    if (w?.timer) this.deps.clock.clearTimeout(w.timer);
    const answers = w?.answers ?? new Map<string, string[]>();
    for (const name of answers.keys()) if (!names.includes(name)) answers.delete(name);
    const ttls = w?.ttls ?? new Map<string, number>();
    for (const name of ttls.keys()) if (!names.includes(name)) ttls.delete(name);
    w = { config, endpoints, names, answers, ttls, timer: undefined, generation: (w?.generation ?? 0) + 1, first: Promise.resolve() };
    this.#watched.set(config.name, w);
    if (names.length > 0) w.first = this.#resolve(w, w.generation);
    return expand(w);
  }

  /** Stops resolving clusters that are not in `names` (removed by a config update). */
  retain(names: ReadonlySet<string>): void {
    for (const [name, w] of this.#watched) {
      if (names.has(name)) continue;
      if (w.timer) this.deps.clock.clearTimeout(w.timer);
      this.#watched.delete(name);
    }
  }

  /** Resolves when every cluster's current first resolution is done (tests, and the admin's readiness). */
  async settled(): Promise<void> {
    await Promise.all([...this.#watched.values()].map((w) => w.first));
  }

  close(): void {
    this.#closed = true;
    this.retain(new Set());
  }

  async #resolve(w: Watched, generation: number): Promise<void> {
    const current = () => !this.#closed && this.#watched.get(w.config.name) === w && w.generation === generation;
    const before = JSON.stringify(expand(w));
    let failed = false;
    await Promise.all(
      w.names.map(async (name) => {
        try {
          const got = await this.deps.lookup(name);
          if (!current()) return;
          const answer = Array.isArray(got) ? { addresses: got } : got;
          w.answers.set(name, answer.addresses);
          if (answer.ttlSeconds && answer.ttlSeconds > 0) w.ttls.set(name, answer.ttlSeconds * 1000);
          else w.ttls.delete(name);
        } catch (err) {
          failed = true;
          // Envoy keeps the hosts of the last good answer when a refresh fails.
          if (current()) this.deps.logger.warn('DNS resolution failed; keeping the last answer', { cluster: w.config.name, name, error: (err as Error).message, kept: w.answers.get(name) ?? [] });
        }
      }),
    );
    if (!current()) return;
    const after = expand(w);
    if (JSON.stringify(after) !== before) this.deps.onResolved(w.config.name, after);
    const refreshMs = nextRefreshMs(w, failed);
    w.timer = this.deps.clock.setTimeout(() => {
      w.timer = undefined;
      void this.#resolve(w, generation);
    }, refreshMs);
    w.timer.unref();
  }
}

/**
 * When to resolve again: Envoy's respect_dns_ttl, which Istio sets on every DNS cluster: the
 * answers' TTL (the soonest to expire among the names) when they carry one, else the refresh
 * rate (meshConfig.dnsRefreshRate). A failed lookup is tried again at the refresh rate
 * (Envoy's dns_failure_refresh_rate defaults to it), or sooner when another name's TTL says so.
 * (Envoy runs a timer per name; here the names of a cluster are resolved together, at the
 * soonest.)
 */
function nextRefreshMs(w: Watched, failed: boolean): number {
  const rate = w.config.dns?.refreshMs ?? DEFAULT_DNS_REFRESH_MS;
  // Each name is due when its TTL runs out, or at the refresh rate without one.
  const due = w.names.map((n) => w.ttls.get(n) ?? rate);
  if (failed) due.push(rate);
  return due.length ? Math.min(...due) : rate;
}

/** The cluster's endpoints with each name replaced by the addresses it resolved to. */
function expand(w: Watched): Endpoint[] {
  const out: Endpoint[] = [];
  const logical = w.config.dns?.mode === 'logical';
  // LOGICAL_DNS: one logical host, the first endpoint's.
  for (const ep of logical ? w.endpoints.slice(0, 1) : w.endpoints) {
    const host = ep.address.host;
    if (isIP(host) !== 0) {
      out.push(ep);
    } else {
      const addresses = w.answers.get(host.toLowerCase()) ?? [];
      for (const address of logical ? addresses.slice(0, 1) : addresses) out.push({ ...ep, address: { host: address, port: ep.address.port } });
    }
  }
  return out;
}
