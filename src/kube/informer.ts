/**
 * Informers: one per kind, list then watch from the list's resourceVersion, built on
 * client-node's `ListWatch` (which keeps the cache, answers a 410 Gone — a resourceVersion the
 * server no longer has — with a fresh list that reports what was deleted meanwhile, and skips
 * objects whose resourceVersion did not change). Around it this module adds what client-node
 * leaves to the caller, as client-go's reflector does:
 *
 *  - watch bookmarks (`allowWatchBookmarks`), so a quiet watch still moves its resourceVersion
 *    forward and a reconnect does not fall out of the server's window;
 *  - paginated lists (`limit` / `continue`), so a large cluster is not one giant response;
 *  - restart with exponential backoff (1 s doubling to 30 s, by the injected clock) when a
 *    list or watch fails, instead of stopping;
 *  - `synced`, which resolves after the first complete list (client-go's HasSynced).
 */
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { KubeClient } from './api.js';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T> {
  client: KubeClient;
  /** Collection path, e.g. `/api/v1/pods` or `/apis/networking.istio.io/v1beta1/virtualservices`. */
  path: string;
  onEvent(event: InformerEvent, object: T): void;
  clock?: Clock;
  logger?: Logger;
  /** Page size of lists (500, client-go's default). */
  pageSize?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** A field selector for the list and the watch (e.g. `type!=kubernetes.io/service-account-token`). */
  fieldSelector?: string;
  /**
   * Trims each object as it arrives, before the cache keeps it (after `slim`): the Secrets
   * informer drops the values of Secrets that are not mesh credentials, so the control plane
   * neither holds nor could leak them.
   */
  trim?: (object: T) => T;
}

/**
 * The cache keeps objects without `metadata.managedFields` (server-side apply's bookkeeping,
 * often half an object's size, which nothing in the mesh reads): a large cluster's pods then
 * cost the control plane about half the memory.
 */
function slim<O>(object: O): O {
  const meta = (object as { metadata?: { managedFields?: unknown } } | undefined)?.metadata;
  if (meta && meta.managedFields !== undefined) delete meta.managedFields;
  return object;
}

/** A watch that asks the server for bookmarks (client-node's ListWatch does not). */
class BookmarkWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly extraParams: Record<string, string>,
    private readonly trim: (object: any) => any,
  ) {
    super(config);
  }

  override watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    // A server-side timeout (client-go picks 5-10 min) rotates long watches; the informer
    // then resumes from the last resourceVersion (or bookmark) it saw.
    return super.watch(path, { ...queryParams, ...this.extraParams, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) }, (phase, obj, watchObj) => callback(phase, this.trim(slim(obj)), watchObj), done);
  }
}

/** Objects arrive as the server sends them (JSON: timestamps are strings); `T` only names their shape. */
export class KubeInformer<T extends object> {
  readonly path: string;
  /** Resolves after the first complete list has been delivered. */
  readonly synced: Promise<void>;
  /** Lists made (the first, and one after each 410 Gone or restart). */
  lists = 0;
  /** Failed lists or watches. */
  errors = 0;
  readonly #options: InformerOptions<T>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #listWatch: ListWatch<KubernetesObject> | undefined;
  #markSynced!: () => void;
  #backoffMs: number;
  #retry: TimerHandle | undefined;
  #stopped = false;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.path = options.path;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#backoffMs = options.backoff?.initialMs ?? 1_000;
    this.synced = new Promise<void>((resolve) => (this.#markSynced = resolve));
  }

  /** The cached objects (what the last list and the watch since delivered). */
  list(): T[] {
    return [...(this.#listWatch?.list() ?? [])] as unknown as T[];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#listWatch?.get(name, namespace) as T | undefined;
  }

  start(): void {
    const lw = new ListWatch<KubernetesObject>(this.path, new BookmarkWatch(this.#options.client.config, this.#selector(), (o) => this.#trim(o)), () => this.#listAll(), false);
    lw.on('add', (o) => this.#deliver('add', o as unknown as T));
    lw.on('update', (o) => this.#deliver('update', o as unknown as T));
    lw.on('delete', (o) => this.#deliver('delete', o as unknown as T));
    lw.on('error', (err) => this.#failed(err));
    this.#listWatch = lw;
    void lw.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) this.#clock.clearTimeout(this.#retry);
    await this.#listWatch?.stop();
  }

  #selector(): Record<string, string> {
    return this.#options.fieldSelector ? { fieldSelector: this.#options.fieldSelector } : {};
  }

  #trim<O>(object: O): O {
    // A watch's BOOKMARK and ERROR events carry no object of the kind: only objects are trimmed.
    return this.#options.trim && (object as { metadata?: unknown } | undefined)?.metadata ? (this.#options.trim(object as unknown as T) as unknown as O) : object;
  }

  #deliver(event: InformerEvent, object: T): void {
    try {
      this.#options.onEvent(event, object);
    } catch (err) {
      // A handler's bug must not stop the informer (nor be swallowed silently).
      this.#logger.error('informer handler failed', { path: this.path, error: (err as Error).stack ?? String(err) });
    }
  }

  async #listAll(): Promise<KubernetesListObject<KubernetesObject>> {
    const items: KubernetesObject[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#options.client.get<KubernetesListObject<KubernetesObject>>(this.path, { ...this.#selector(), limit: String(this.#options.pageSize ?? 500), continue: continueToken });
      for (const item of page.items) items.push(this.#trim(slim(item)));
      // The server's JSON says `continue` (client-node's typed models rename it `_continue`).
      continueToken = (page.metadata as { continue?: string } | undefined)?.continue || undefined;
      // Every page of one list is read at the first page's resourceVersion.
      resourceVersion ||= page.metadata?.resourceVersion ?? '';
    } while (continueToken);
    this.lists++;
    this.#backoffMs = this.#options.backoff?.initialMs ?? 1_000;
    // ListWatch delivers the items right after this resolves, before any timer runs.
    setImmediate(this.#markSynced);
    return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion }, items };
  }

  #failed(err: unknown): void {
    this.errors++;
    if (this.#stopped) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(delay * 2, this.#options.backoff?.maxMs ?? 30_000);
    this.#logger.warn('list/watch failed; retrying', { path: this.path, inMs: delay, error: (err as Error)?.message ?? String(err) });
    this.#retry = this.#clock.setTimeout(() => {
      this.#retry = undefined;
      if (!this.#stopped) void this.#listWatch?.start();
    }, delay);
  }
}
