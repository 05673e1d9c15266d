/**
 * PASSTHROUGH / originalDst clusters (Istio's PassthroughCluster, Envoy's ORIGINAL_DST
 * cluster): there is no endpoint list; the host is the address the client asked for. Hosts
 * (and their pools) are created on first use and kept in a bounded LRU, as Envoy's
 * original_dst cluster keeps hosts until they go unused (cleanup_interval).
 */
import type { Address } from '../../../api/proxy-config.js';
import type { PickContext } from '../types.js';
import type { Balancer, LbHost } from './types.js';

export const DEFAULT_ORIGINAL_DST_HOSTS = 1024;

export class OriginalDstBalancer<H extends LbHost> implements Balancer {
  /** Insertion order = recency (a Map re-inserted on use is an LRU). */
  private readonly hosts = new Map<string, H>();

  constructor(
    private readonly create: (address: Address, key: string) => H,
    private readonly evict: (host: H) => void,
    private readonly capacity = DEFAULT_ORIGINAL_DST_HOSTS,
  ) {}

  pick(_hosts: readonly LbHost[], ctx: PickContext): H | undefined {
    const dest = ctx.originalDestination;
    if (!dest) return undefined;
    const key = `${dest.host}:${dest.port}`;
    let host = this.hosts.get(key);
    if (host) {
      this.hosts.delete(key);
      this.hosts.set(key, host);
      return host;
    }
    host = this.create({ host: dest.host, port: dest.port }, key);
    this.hosts.set(key, host);
    if (this.hosts.size > this.capacity) this.evictOne();
    return host;
  }

  /** Hosts currently known, least recently used first. */
  known(): H[] {
    return [...this.hosts.values()];
  }

  clear(): void {
    for (const host of this.hosts.values()) this.evict(host);
    this.hosts.clear();
  }

  private evictOne(): void {
    // Prefer the least recently used host with nothing in flight; a busy one is skipped.
    for (const [key, host] of this.hosts) {
      if (host.activeRequests === 0) {
        this.hosts.delete(key);
        this.evict(host);
        return;
      }
    }
  }
}
