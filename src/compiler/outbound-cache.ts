/**
 * Incremental outbound builds. A sidecar's outbound config is, per visible service, a
 * virtual host per port and a cluster (with endpoints) per port and subset; the tables and
 * lists around them are cheap joins (outbound.ts `joinRouteConfigs`, clusters.ts
 * `joinClusters`). What one service's part is built from is the service itself, the
 * VirtualService that owns its host, the mesh settings, and whatever it reads through the
 * CompileContext: the services and DestinationRules its routes name, delegate
 * VirtualServices, and the proxy's labels, namespace and locality (context.ts `track`).
 *
 * `OutboundCache` keeps each service's part with those reads. When a later build finds the
 * same service object and VirtualService object, and every recorded read gives the same
 * answer again (the same frozen snapshot objects, the same booleans), the part is the one
 * a fresh build would produce, and is reused. So a change to one VirtualService rebuilds
 * the one host it owns (and those whose routes read it) in each proxy class, instead of all
 * of them; and classes that see a service alike (same answers) share one build of it, as
 * Istio's xds cache serves one entry to every proxy whose dependencies match.
 *
 * The compiler stays a function of its inputs: the cache is an object the caller owns and
 * passes in; it changes how fast a result comes, never what it is. It is used only with
 * frozen snapshots, whose objects cannot change under it. Memory is bounded by two
 * generations: the parts used since the snapshots last changed and the ones used before;
 * older ones are dropped when the snapshots change again.
 */
import type { RegistryService, RegistrySnapshot } from '../api/registry-snapshot.js';
import type { Resource } from '../api/resources/meta.js';
import { deepFreeze } from '../core/freeze.js';
import { serviceClusters, type ServiceCluster } from './clusters.js';
import type { CompileContext, ContextRead, VirtualServiceResource } from './context.js';
import { serviceVirtualHosts, type ServiceVirtualHost } from './outbound.js';

/** One service's outbound part for a proxy (deep-frozen when it comes from the cache). */
export interface ServiceOutbound {
  readonly virtualHosts: readonly ServiceVirtualHost[];
  readonly clusters: readonly ServiceCluster[];
}

interface Entry {
  readonly vs: VirtualServiceResource | undefined;
  readonly reads: readonly ContextRead[];
  readonly outbound: ServiceOutbound;
  /** Classes that used it, tried first by the same class on the next build. */
  readonly classes: Set<string>;
}

/** Builds a service's outbound part afresh (what the cache stands in for). */
export function buildServiceOutbound(ctx: CompileContext, service: RegistryService, vs: VirtualServiceResource | undefined): ServiceOutbound {
  return { virtualHosts: serviceVirtualHosts(ctx, service, vs), clusters: serviceClusters(ctx, service) };
}

/**
 * Entries of other classes tried for a service before building it: they differ from the
 * class's own in a read (a namespace, a selector) and usually fail at once, but a mesh of
 * many classes should not replay every one of them per service.
 */
const MAX_FOREIGN_TRIES = 4;

/** Service outbound parts kept across builds and shared across proxy classes; see the file comment. */
export class OutboundCache {
  #resources: readonly Resource[] | undefined;
  #registry: RegistrySnapshot | undefined;
  #mesh: string | undefined;
  #current = new Map<RegistryService, Entry[]>();
  #previous = new Map<RegistryService, Entry[]>();
  #compiled = 0;
  #reused = 0;
  readonly #onCompile: ((service: RegistryService, classKey: string) => void) | undefined;

  /** `onCompile` is told of every service part built rather than reused (for tests and metrics). */
  constructor(options: { onCompile?: (service: RegistryService, classKey: string) => void } = {}) {
    this.#onCompile = options.onCompile;
  }

  /** Service parts built since the cache was made. */
  get compiled(): number {
    return this.#compiled;
  }

  /** Service parts reused since the cache was made. */
  get reused(): number {
    return this.#reused;
  }

  /**
   * Starts or continues a generation for these snapshots. A new pair of snapshots makes the
   * current parts the previous ones (still reusable where their reads agree) and drops the
   * ones before; different mesh settings drop everything, since the reads do not cover them.
   */
  begin(resources: readonly Resource[], registry: RegistrySnapshot, ctx: CompileContext): void {
    const mesh = JSON.stringify(ctx.mesh);
    if (mesh !== this.#mesh) {
      this.#mesh = mesh;
      this.#previous = new Map();
      this.#current = new Map();
    } else if (resources !== this.#resources || registry !== this.#registry) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#resources = resources;
    this.#registry = registry;
  }

  /** The service's part for the proxy class of `ctx`: a kept one whose reads still hold, else a new build. */
  serviceOutbound(ctx: CompileContext, classKey: string, service: RegistryService, vs: VirtualServiceResource | undefined): ServiceOutbound {
    const current = this.#current.get(service);
    const found = this.#find(ctx, classKey, vs, current, true) ?? this.#find(ctx, classKey, vs, this.#previous.get(service), true);
    const entry =
      found ?? this.#find(ctx, classKey, vs, current, false) ?? this.#find(ctx, classKey, vs, this.#previous.get(service), false);
    if (entry) {
      this.#reused++;
      entry.classes.add(classKey);
      if (!current?.includes(entry)) this.#add(service, entry);
      return entry.outbound;
    }
    const { value, reads } = ctx.track(() => buildServiceOutbound(ctx, service, vs));
    this.#compiled++;
    this.#onCompile?.(service, classKey);
    this.#add(service, { vs, reads, outbound: deepFreeze(value), classes: new Set([classKey]) });
    return value;
  }

  #find(ctx: CompileContext, classKey: string, vs: VirtualServiceResource | undefined, entries: Entry[] | undefined, own: boolean): Entry | undefined {
    if (!entries) return undefined;
    let tries = 0;
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (e.vs !== vs || e.classes.has(classKey) !== own) continue;
      if (!own && ++tries > MAX_FOREIGN_TRIES) return undefined;
      if (ctx.replays(e.reads)) return e;
    }
    return undefined;
  }

  #add(service: RegistryService, entry: Entry): void {
    const list = this.#current.get(service);
    if (list) list.push(entry);
    else this.#current.set(service, [entry]);
  }
}
