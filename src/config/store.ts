/**
 * The config store: the set of resources in force, with a revision per change, a bounded
 * history and change notifications. Two backends share one interface: memory (tests,
 * short-lived meshes) and a state directory (the control plane), whose writes are atomic
 * (write to a temporary file, fsync, rename) so a crash never leaves half a config.
 *
 * The store only holds resources that passed validation; whoever applies (the control
 * plane's API, `sinew up`) validates first and refuses the whole batch on any error, so
 * "the last good config stays in force".
 *
 * Secrets live here too, so the state directory is owner-only: the directory 0700 and every
 * file 0600, whatever the umask (as kubelet keeps a Secret volume, and ssh its keys).
 *
 * Resources are keyed by kind, namespace and name, the kind as `kindKey` gives it: two groups
 * may share a kind's name (Istio's Gateway and the Gateway API's, stored as
 * `Gateway.gateway.networking.k8s.io`).
 *
 * It stamps what the Kubernetes API server stamps (./object-meta.ts): `creationTimestamp` and
 * `uid` on create, kept on update; `generation`, bumped when the spec changes; and
 * `resourceVersion`, the revision of the last change. Creation order decides which of two
 * conflicting resources wins (DESIGN.md behaviour 12), so a later apply is always younger,
 * even when the clock did not move or went back.
 */
import { chmod, mkdir, open, readFile, rename, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Resource } from '../api/resources/meta.js';
import { kindKeyOf, manifestOf } from '../api/resources/index.js';
import { deepFreeze } from '../core/freeze.js';
import { creationTime } from '../semantics/creation-order.js';
import { isStamped, sameContent, stampApplied } from './object-meta.js';
import { GarbageBound } from '../core/garbage-bound.js';
import { TextValidator } from './validate.js';

export interface ResourceKey {
  /** The kind's key (`kindKey`): the kind, or `Kind.group` where two groups share its name. */
  kind: string;
  namespace: string;
  name: string;
}

/** `kind/namespace/name`, the kind as its key (a resource with a `group` or `apiVersion` is keyed in its group). */
export const keyOf = (r: { kind: string; group?: string; apiVersion?: string; metadata: { namespace?: string; name: string } }): string =>
  `${kindKeyOf(r)}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

export interface ConfigChange {
  revision: number;
  /** Resources created or updated by this change. */
  applied: readonly Resource[];
  /** Keys removed by this change. */
  deleted: readonly ResourceKey[];
  /** When (ms since epoch). */
  at: number;
  /** Who or what made the change (`apply`, `delete`, `sinew up`). */
  cause: string;
}

export interface ConfigStore {
  /** The current revision; 0 for an empty, never-written store. */
  readonly revision: number;
  list(kind?: string, namespace?: string): readonly Resource[];
  get(kind: string, namespace: string, name: string): Resource | undefined;
  /** Creates or replaces resources as one change. Returns the change (revision unchanged when nothing differs). */
  apply(resources: readonly Resource[], cause?: string): Promise<ConfigChange>;
  delete(keys: readonly ResourceKey[], cause?: string): Promise<ConfigChange>;
  /** The most recent changes, newest last (bounded). */
  history(): readonly ConfigChange[];
  /** Calls `listener` after every change that altered something. Returns an unsubscribe function. */
  watch(listener: (change: ConfigChange) => void): () => void;
}

export interface StoreOptions {
  /** How many changes history keeps (default 100). */
  historyLimit?: number;
  now?: () => number;
  /** New uids (default: random UUIDs). */
  newUid?: () => string;
}

/** Keeps everything in memory. */
export class MemoryConfigStore implements ConfigStore {
  protected resources = new Map<string, Resource>();
  protected changes: ConfigChange[] = [];
  protected listeners = new Set<(change: ConfigChange) => void>();
  protected rev = 0;
  protected readonly historyLimit: number;
  protected readonly now: () => number;
  protected readonly newUid: (() => string) | undefined;
  /** The creation time of the youngest resource ever created here (ms); a new one is younger still. */
  protected youngest = Number.NEGATIVE_INFINITY;

  constructor(options: StoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? 100;
    this.now = options.now ?? Date.now;
    this.newUid = options.newUid;
  }

  get revision(): number {
    return this.rev;
  }

  list(kind?: string, namespace?: string): readonly Resource[] {
    const out: Resource[] = [];
    for (const r of this.resources.values()) {
      if (kind && kindKeyOf(r) !== kind) continue;
      if (namespace !== undefined && r.metadata.namespace !== namespace) continue;
      out.push(r);
    }
    return out.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
  }

  get(kind: string, namespace: string, name: string): Resource | undefined {
    return this.resources.get(`${kind}/${namespace}/${name}`);
  }

  async apply(resources: readonly Resource[], cause = 'apply'): Promise<ConfigChange> {
    const changed = resources.filter((r) => {
      const existing = this.resources.get(keyOf(r));
      return !existing || !sameContent(existing, r);
    });
    return this.commit(changed, [], cause);
  }

  async delete(keys: readonly ResourceKey[], cause = 'delete'): Promise<ConfigChange> {
    const present = keys.filter((k) => this.resources.has(`${k.kind}/${k.namespace}/${k.name}`));
    return this.commit([], present, cause);
  }

  history(): readonly ConfigChange[] {
    return this.changes;
  }

  watch(listener: (change: ConfigChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Persists a change (no-op in memory); the file backend overrides it. */
  protected async persist(_change: ConfigChange): Promise<void> {}

  private async commit(applied: readonly Resource[], deleted: readonly ResourceKey[], cause: string): Promise<ConfigChange> {
    const at = this.now();
    if (applied.length === 0 && deleted.length === 0) {
      return { revision: this.rev, applied: [], deleted: [], at, cause };
    }
    const revision = this.rev + 1;
    // Every resource this change creates gets one creation time (kubectl's batch lands within
    // a second too; name then orders them), later than any created before.
    const createdAt = Math.max(at, this.youngest + 1);
    const stampContext = { creationTimestamp: new Date(createdAt).toISOString(), resourceVersion: String(revision), newUid: this.newUid };
    const stamped = applied.map((r) => stampApplied(r, this.resources.get(keyOf(r)), stampContext));
    const change: ConfigChange = deepFreeze({ revision, applied: stamped, deleted: [...deleted], at, cause });
    // Update memory only after the change is durable, so a failed write changes nothing.
    const next = new Map(this.resources);
    for (const r of stamped) next.set(keyOf(r), r);
    for (const k of deleted) next.delete(`${k.kind}/${k.namespace}/${k.name}`);
    const previous = this.resources;
    this.resources = next;
    try {
      await this.persist(change);
    } catch (err) {
      this.resources = previous;
      throw err;
    }
    if (stamped.some((r) => creationTime(r) === createdAt)) this.youngest = createdAt;
    this.rev = change.revision;
    this.changes.push(change);
    if (this.changes.length > this.historyLimit) this.changes.splice(0, this.changes.length - this.historyLimit);
    for (const listener of this.listeners) listener(change);
    return change;
  }
}

const STATE_FILE = 'resources.json';
/** How much garbage reading the state file may leave before a full collection (core/garbage-bound.ts). */
const STATE_GARBAGE_SLACK_BYTES = 16 * 1024 * 1024;
const HISTORY_DIR = 'history';

/**
 * Keeps the resources in `<dir>/resources.json` and each change in `<dir>/history/<rev>.json`
 * (bounded). Open with `FileConfigStore.open(dir)`, which re-validates what it reads so a
 * hand-edited state file cannot smuggle in an invalid resource.
 */
export class FileConfigStore extends MemoryConfigStore {
  private constructor(private readonly dir: string, options: StoreOptions) {
    super(options);
  }

  static async open(dir: string, options: StoreOptions = {}): Promise<FileConfigStore> {
    const store = new FileConfigStore(dir, options);
    await mkdir(join(dir, HISTORY_DIR), { recursive: true, mode: 0o700 });
    // A directory made before the store held Secrets may be group- or world-readable.
    await chmod(dir, 0o700);
    await chmod(join(dir, HISTORY_DIR), 0o700);
    let text: string | undefined;
    try {
      text = await readFile(join(dir, STATE_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text) {
      const state = JSON.parse(text) as { revision: number; resources: (unknown | undefined)[] };
      text = undefined;
      // Validated a resource at a time, as an apply is (each one's JSON a document, in the
      // text their joining would make, so positions are the same), each let go once read, with
      // the garbage bounded as an apply bounds it: joined into one text first, the state of a
      // 15 MB config took the control plane's start to a peak of ~500 MB.
      const validator = new TextValidator(join(dir, STATE_FILE));
      const garbage = new GarbageBound(STATE_GARBAGE_SLACK_BYTES);
      for (let i = 0; i < state.resources.length; i++) {
        validator.write((i > 0 ? '\n---\n' : '') + JSON.stringify(state.resources[i]));
        state.resources[i] = undefined;
        garbage.check();
      }
      const result = validator.end();
      for (const r of result.resources) store.resources.set(keyOf(r), r);
      store.rev = state.revision;
      for (const r of result.resources) store.youngest = Math.max(store.youngest, creationTime(r));
      await store.stampUnstamped();
    }
    return store;
  }

  /**
   * State written before the store stamped resources: each gets a uid, and all one creation
   * time, now (so their names order them, as Istio orders equal times), and the state file is
   * rewritten at the same revision, so the stamps stay the same from then on.
   */
  private async stampUnstamped(): Promise<void> {
    const unstamped = [...this.resources.values()].filter((r) => !isStamped(r));
    if (unstamped.length === 0) return;
    const createdAt = Math.max(this.now(), this.youngest + 1);
    // Stamped as if created now: there is no earlier record to keep a creation time from.
    for (const r of unstamped) this.resources.set(keyOf(r), stampApplied(r, undefined, { creationTimestamp: new Date(createdAt).toISOString(), resourceVersion: String(this.rev), newUid: this.newUid }));
    this.youngest = createdAt;
    await this.writeState(this.rev);
  }

  /**
   * Written one resource at a time: serialising the whole state (and the whole change) into
   * one string, then one buffer, held about 90 MB at once for a 15 MB config.
   */
  private async writeState(revision: number): Promise<void> {
    const manifest = (r: Resource) => JSON.stringify(manifestOf(r), null, 1);
    await writeAtomicParts(join(this.dir, STATE_FILE), jsonParts(`{"revision":${revision},"resources":[\n`, this.resources.values(), manifest, '\n]}\n'));
  }

  protected override async persist(change: ConfigChange): Promise<void> {
    await this.writeState(change.revision);
    const { applied, revision: _revision, ...rest } = change;
    await writeAtomicParts(
      join(this.dir, HISTORY_DIR, `${String(change.revision).padStart(8, '0')}.json`),
      jsonParts(`{"revision":${change.revision},"applied":[`, applied, (r) => JSON.stringify(r), `],${JSON.stringify(rest).slice(1)}`),
    );
    const entries = (await readdir(join(this.dir, HISTORY_DIR))).filter((f) => f.endsWith('.json')).sort();
    for (const old of entries.slice(0, Math.max(0, entries.length - this.historyLimit))) {
      await unlink(join(this.dir, HISTORY_DIR, old)).catch(() => undefined);
    }
  }
}

let tmpCounter = 0;

/** How much writeAtomicParts gathers before each write. */
const WRITE_BUFFER_BYTES = 1 << 20;

/** Writes every byte of `bytes` at the file's position (a write may take only part of them). */
async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** `head`, then each item's JSON separated by commas, then `tail`: a JSON document in pieces. */
function* jsonParts<T>(head: string, items: Iterable<T>, json: (item: T) => string, tail: string): Generator<string> {
  yield head;
  let first = true;
  for (const item of items) {
    yield first ? json(item) : ',\n' + json(item);
    first = false;
  }
  yield tail;
}

/**
 * writeAtomic for content given in pieces, written about a MiB at a time; owner-only too.
 *
 * Each piece is encoded at once into a byte buffer outside V8's heap, which is written when
 * full. Joining the pieces into a MiB of string first kept every piece alive until its
 * write: they outlived young collections and were promoted, so writing the state of a 15 MB
 * config (28 MB of JSON, and 16 MB for its history entry) left ~45 MB of garbage in the old
 * generation at the apply's peak (bench/controlplane-memory.ts).
 */
export async function writeAtomicParts(path: string, parts: Iterable<string>): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    const buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
    let used = 0;
    for (const part of parts) {
      const length = Buffer.byteLength(part);
      if (used > 0 && used + length > buffer.length) {
        await writeAll(handle, buffer.subarray(0, used));
        used = 0;
      }
      if (length > buffer.length) await writeAll(handle, Buffer.from(part));
      else used += buffer.write(part, used);
    }
    if (used > 0) await writeAll(handle, buffer.subarray(0, used));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

/**
 * Writes a file so readers see the old or the new content, never a torn one. The file is
 * owner-only (0600): state files may hold Secrets.
 */
export async function writeAtomic(path: string, content: string): Promise<void> {
  // Unique per write: two writes of the same file in flight must not share a temp file.
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
