/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
 * the holder renews `renewTime` every `retryMs`; another replica takes the Lease over once
 * `leaseDurationSeconds` passed without a renewal. Every write carries the resourceVersion it
 * read, so two replicas racing for the Lease cannot both win (the API server refuses the
 * second with 409). Only what must be written once is done by the leader (the status of
 * resources); every replica serves proxies.
 */
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { KubeApiError, type KubeClient } from './api.js';

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** This replica (the pod's name). */
  identity: string;
  leaseDurationMs?: number;
  /** How often the holder renews and the others try (client-go: 2 s). */
  retryMs?: number;
  clock?: Clock;
  logger?: Logger;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

export class LeaderElector {
  #leading = false;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #running: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(leading: boolean) => void>();
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(private readonly options: LeaderElectionOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Called with true when this replica starts leading, false when it stops. */
  onChange(listener: (leading: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    this.#tick();
  }

  /** Stops trying; a leader gives the Lease up (holder cleared) so another takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    await this.#running;
    if (this.#leading) {
      const lease = await this.#get().catch(() => undefined);
      if (lease?.spec.holderIdentity === this.options.identity) {
        await this.#put({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } }).catch(() => undefined);
      }
      this.#set(false);
    }
  }

  #tick(): void {
    this.#running = this.#try().catch((err: Error) => {
      this.#logger.warn('leader election attempt failed', { error: err.message });
      // Cannot tell whether the Lease is still ours: stop acting as leader (client-go does too).
      this.#set(false);
    });
    void this.#running.then(() => {
      if (!this.#stopped) this.#timer = this.#clock.setTimeout(() => this.#tick(), this.options.retryMs ?? 2_000);
    });
  }

  async #try(): Promise<void> {
    const o = this.options;
    const now = new Date(this.#clock.now());
    const durationS = Math.max(1, Math.round((o.leaseDurationMs ?? 15_000) / 1000));
    const lease = await this.#get();
    if (!lease) {
      await this.#create({ metadata: { name: o.name, namespace: o.namespace }, spec: { holderIdentity: o.identity, leaseDurationSeconds: durationS, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 } });
      return this.#set(true);
    }
    const holder = lease.spec.holderIdentity;
    const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired = !holder || renewed + (lease.spec.leaseDurationSeconds ?? durationS) * 1000 < now.getTime();
    if (holder !== o.identity && !expired) return this.#set(false);
    const spec = {
      ...lease.spec,
      holderIdentity: o.identity,
      leaseDurationSeconds: durationS,
      renewTime: micro(now),
      ...(holder !== o.identity ? { acquireTime: micro(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      await this.#put({ ...lease, spec });
      this.#set(true);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return this.#set(false); // another replica won
      throw err;
    }
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#logger.info(leading ? 'leading: this replica writes status' : 'not leading', { lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity });
    for (const l of this.#listeners) l(leading);
  }

  #path(name?: string): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases${name ? `/${name}` : ''}`;
  }

  async #get(): Promise<Lease | undefined> {
    try {
      return await this.options.client.get<Lease>(this.#path(this.options.name));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  #create(lease: Lease): Promise<unknown> {
    return this.options.client.request('POST', this.#path(), { body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...lease } });
  }

  #put(lease: Lease): Promise<unknown> {
    return this.options.client.request('PUT', this.#path(this.options.name), { body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...lease } });
  }
}

/** MicroTime, as the Lease API wants it. */
function micro(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
