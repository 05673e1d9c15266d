/**
 * What the runner tells the control plane about the replicas it runs. The control plane
 * takes a workload's registration whole (`PUT /api/v1/registrations/<kind>/<ns>/<name>`,
 * every replica at once), so the runner keeps one registration per workload holding EVERY
 * replica it plans, from before the first sidecar starts, and each change to one replica
 * sends that whole registration again.
 *
 * Two rules keep what the control plane holds right:
 *   - a registration is built from every planned replica, never from the ones that happen to
 *     have started: two replicas starting at once each published "the replicas started so
 *     far", the later PUT dropped the other replica, and its sidecar never got a config
 *     ("no registered replica for proxy sidecar~echo-v1-0.default");
 *   - one PUT per workload is in flight at a time, and the next one sends the state as it is
 *     then: two PUTs on two connections could otherwise land in either order, and the older
 *     state would win.
 * A PUT that fails (the control plane is restarting) is retried with backoff until it lands.
 */
import type { ReplicaRegistration, WorkloadRegistration } from '../api/mesh-status.js';
import type { ControlPlaneClient } from './control-plane-client.js';

interface Entry {
  registration: WorkloadRegistration;
  /** A PUT is in flight (or waiting to retry). */
  sending?: Promise<void>;
  /** The registration changed since the PUT in flight was built. */
  dirty: boolean;
  /** Resolvers of flush() calls waiting for the current state to land. */
  waiters: (() => void)[];
}

export class RegistrationPublisher {
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  /** Whether the last attempt failed (so an outage is reported once, not per retry). */
  private failing = false;

  constructor(
    private readonly client: ControlPlaneClient,
    private readonly output: (line: string) => void,
    private readonly retryDelayMs = (attempt: number) => Math.min(100 * 2 ** attempt, 2000),
  ) {}

  /** Adds a workload with every replica it will run. Sent by the next publishAll(). */
  add(registration: WorkloadRegistration): void {
    this.entries.set(keyOf(registration), { registration: { ...registration, replicas: [...registration.replicas].sort(byId) }, dirty: false, waiters: [] });
  }

  /** The current registration of one replica. */
  replica(workload: Pick<WorkloadRegistration, 'kind' | 'namespace' | 'name'>, replicaId: string): ReplicaRegistration | undefined {
    return this.entries.get(keyOf(workload))?.registration.replicas.find((r) => r.id === replicaId);
  }

  /** Changes one replica and sends its workload's registration (at once, or right after the PUT in flight). */
  update(workload: Pick<WorkloadRegistration, 'kind' | 'namespace' | 'name'>, replicaId: string, change: Partial<Omit<ReplicaRegistration, 'id'>>): void {
    const entry = this.entries.get(keyOf(workload));
    if (!entry) throw new Error(`no registration for ${keyOf(workload)}`);
    const replicas = entry.registration.replicas.map((r) => (r.id === replicaId ? { ...r, ...change } : r));
    const before = JSON.stringify(entry.registration.replicas);
    entry.registration = { ...entry.registration, replicas };
    if (JSON.stringify(replicas) !== before) this.send(entry);
  }

  /** Sends every registration (at start, and after the control plane came back) and waits until all landed. */
  async publishAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.flushEntry(e, true)));
  }

  /** Waits until every change made so far has landed at the control plane. */
  async flush(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.flushEntry(e, false)));
  }

  /** Stops sending (the mesh is stopping). */
  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) for (const resolve of entry.waiters.splice(0)) resolve();
  }

  private flushEntry(entry: Entry, force: boolean): Promise<void> {
    if (force) this.send(entry);
    if (!entry.sending || this.closed) return Promise.resolve();
    return new Promise((resolve) => entry.waiters.push(resolve));
  }

  private send(entry: Entry): void {
    if (this.closed) return;
    if (entry.sending) {
      entry.dirty = true;
      return;
    }
    entry.sending = this.loop(entry).finally(() => {
      entry.sending = undefined;
      for (const resolve of entry.waiters.splice(0)) resolve();
    });
  }

  /** Sends the latest registration until none is newer than the last one that landed. */
  private async loop(entry: Entry): Promise<void> {
    let attempt = 0;
    do {
      entry.dirty = false;
      const registration = entry.registration;
      for (;;) {
        if (this.closed) return;
        try {
          await this.client.register(registration);
          if (this.failing) this.output(`• the control plane took the registrations again`);
          this.failing = false;
          attempt = 0;
          break;
        } catch (err) {
          if (!this.failing) this.output(`[sinew] could not update ${registration.namespace}/${registration.name} in the control plane (${(err as Error).message}); retrying`);
          this.failing = true;
          // A newer state supersedes the one that failed.
          if (entry.dirty) break;
          await new Promise((r) => setTimeout(r, this.retryDelayMs(attempt++)));
        }
      }
    } while (entry.dirty && !this.closed);
  }
}

const keyOf = (w: Pick<WorkloadRegistration, 'kind' | 'namespace' | 'name'>) => `${w.kind}/${w.namespace}/${w.name}`;
const byId = (a: ReplicaRegistration, b: ReplicaRegistration) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
