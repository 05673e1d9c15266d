/**
 * A proxy's config as the push protocol handles it: hashed to name its content, encoded as
 * a whole (push) and indexed by resource name (delta.ts). Shared by server and client, so
 * both compute the same content hash.
 *
 * At fleet size most of every config is shared: proxies of one class hold the same frozen
 * route tables, clusters and endpoints. A config source may say so by returning a
 * `ComposedConfig` (the proxy's own part plus the class's `SharedConfig`); the server then
 * serialises, hashes, indexes and diffs each shared list once for all the proxies holding
 * it, and a proxy costs only its own few items. A plain ProxyConfig is its own part with
 * nothing shared, and works the same, only without that saving.
 *
 * Everything cached here is keyed by frozen objects (WeakMaps): what is frozen cannot
 * change, and the cache goes when the object does.
 */
import { createHash } from 'node:crypto';
import type { Cluster, ClusterLoadAssignment, Listener, ProxyConfig, RouteConfiguration } from '../api/proxy-config.js';

// === shapes ===

/** The resource lists of a ProxyConfig that are keyed by name (Envoy's LDS, RDS, CDS, EDS). */
export type ListField = 'listeners' | 'routeConfigs' | 'clusters' | 'endpoints';
export const LIST_FIELDS: readonly ListField[] = ['listeners', 'routeConfigs', 'clusters', 'endpoints'];

/**
 * The part of a config that a group of proxies share (Istio caches CDS/RDS per
 * SidecarScope alike). Deep-frozen; in each list its items follow the proxy's own items.
 */
export interface SharedConfig {
  readonly listeners?: readonly Listener[];
  readonly routeConfigs?: readonly RouteConfiguration[];
  readonly clusters?: readonly Cluster[];
  readonly endpoints?: readonly ClusterLoadAssignment[];
}

/** A config given as the proxy's own part and the part it shares with its class. */
export interface ComposedConfig {
  readonly own: ProxyConfig;
  readonly shared: SharedConfig;
}

/** What the server holds of a config: always an own part, and a shared one when the source gave it. */
export interface ConfigContent {
  readonly own: ProxyConfig;
  readonly shared?: SharedConfig;
}

export function isComposed(value: ProxyConfig | ComposedConfig): value is ComposedConfig {
  return 'own' in value && 'shared' in value;
}

export function contentOf(value: ProxyConfig | ComposedConfig): ConfigContent {
  return isComposed(value) ? value : { own: value };
}

export function isListField(key: string): key is ListField {
  return key === 'listeners' || key === 'routeConfigs' || key === 'clusters' || key === 'endpoints';
}

/** A resource's identity within its list: `clusterName` for endpoints, `name` for the rest (and for virtual hosts). */
export function nameOf(field: ListField | 'virtualHosts', item: unknown): string {
  const name = (item as Record<string, unknown> | null)?.[field === 'endpoints' ? 'clusterName' : 'name'];
  return typeof name === 'string' ? name : '';
}

// === items ===

const jsonCache = new WeakMap<object, string>();
const digestCache = new WeakMap<object, bigint>();

/** JSON of a value; kept beside it when frozen (the server serialises shared items once). */
export function jsonOf(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  let json = jsonCache.get(value);
  if (json === undefined) {
    json = JSON.stringify(value) ?? 'null';
    if (Object.isFrozen(value)) jsonCache.set(value, json);
  }
  return json;
}

/**
 * A 60-bit digest of an item's JSON, kept beside it when frozen. `keepJson` false (the
 * client) keeps the digest only, so a proxy does not hold a second copy of its config as text.
 * A route table digests as its other fields plus the list hash of its virtual hosts, so a
 * change to one virtual host of a table holding a thousand re-serialises that one only.
 */
export function digestOf(item: unknown, keepJson = true): bigint {
  const frozen = item !== null && typeof item === 'object' && Object.isFrozen(item);
  if (frozen) {
    const cached = digestCache.get(item as object);
    if (cached !== undefined) return cached;
  }
  const virtualHosts = (item as { virtualHosts?: unknown } | null)?.virtualHosts;
  let text: string;
  if (Array.isArray(virtualHosts)) {
    const hosts = Object.isFrozen(virtualHosts) ? listIndex('virtualHosts', virtualHosts, keepJson).hash() : hashItems(virtualHosts, keepJson);
    text = `${JSON.stringify({ ...(item as object), virtualHosts: undefined })}|${hosts.count}:${hosts.poly.toString(16)}`;
  } else {
    text = keepJson ? jsonOf(item) : (JSON.stringify(item) ?? 'null');
  }
  const digest = BigInt('0x' + createHash('sha256').update(text).digest('hex').slice(0, 15));
  if (frozen) digestCache.set(item as object, digest);
  return digest;
}

// === list hashes ===

/*
 * A list hashes as a polynomial over its item digests modulo the Mersenne prime 2^61 - 1,
 * which composes: hash(A ++ B) = hash(A) * R^|B| + hash(B). So a proxy's list, its own items
 * followed by its class's shared ones, hashes in time proportional to its own items, and a
 * proxy holding the same items as one flat list (the client) gets the same value. It names
 * content, it does not defend against forgery: configs come from the operator, and the
 * chance that two different lists of a few thousand items collide is about n / 2^61.
 */
const P = (1n << 61n) - 1n;
const R = 0x1f3a5c7e9b2d4f6n;

interface ListHash {
  count: number;
  poly: bigint;
  /** R^count mod P, to append this list's hash after another one. */
  shift: bigint;
}

function hashItems(items: readonly unknown[], keepJson: boolean): ListHash {
  let poly = 0n;
  let shift = 1n;
  for (const item of items) {
    poly = (poly * R + digestOf(item, keepJson)) % P;
    shift = (shift * R) % P;
  }
  return { count: items.length, poly, shift };
}

function concatHash(a: ListHash, b: ListHash): ListHash {
  return { count: a.count + b.count, poly: (a.poly * b.shift + b.poly) % P, shift: (a.shift * b.shift) % P };
}

// === list indexes ===

/** A list with what hashing, encoding and diffing need of it; built once per frozen list. */
export interface ListIndex<T = unknown> {
  readonly items: readonly T[];
  readonly names: readonly string[];
  /** Name -> position. */
  readonly positions: ReadonlyMap<string, number>;
  /** False when two items share a name (or one has none): such a list cannot be diffed by name. */
  readonly unique: boolean;
  /** The list's composable hash (computed on first use). */
  hash(): ListHash;
  /** The items' JSON joined with commas (built on first use: only whole pushes need it). */
  json(): Buffer;
  /** The names as JSON strings joined with commas (built on first use). */
  namesJson(): Buffer;
}

const indexCache = new WeakMap<readonly unknown[], ListIndex>();

export function listIndex<T>(field: ListField | 'virtualHosts', items: readonly T[], keepJson = true): ListIndex<T> {
  const cached = indexCache.get(items);
  if (cached) return cached as ListIndex<T>;
  const names = items.map((item) => nameOf(field, item));
  const positions = new Map<string, number>();
  let unique = true;
  names.forEach((name, i) => {
    if (name === '' || positions.has(name)) unique = false;
    else positions.set(name, i);
  });
  let hash: ListHash | undefined;
  let json: Buffer | undefined;
  let namesJson: Buffer | undefined;
  const index: ListIndex<T> = {
    items,
    names,
    positions,
    unique,
    hash: () => (hash ??= hashItems(items, keepJson)),
    json: () => (json ??= Buffer.from(items.map((item) => jsonOf(item)).join(','))),
    namesJson: () => (namesJson ??= Buffer.from(names.map((n) => JSON.stringify(n)).join(','))),
  };
  if (Object.isFrozen(items)) indexCache.set(items, index);
  return index;
}

const EMPTY_LIST: readonly never[] = Object.freeze([]);

/** The own and shared halves of one list of a config. */
export function listParts<T>(content: ConfigContent, field: ListField): { own: ListIndex<T>; shared: ListIndex<T> } {
  const own = (content.own[field] ?? EMPTY_LIST) as unknown as readonly T[];
  const shared = (content.shared?.[field] ?? EMPTY_LIST) as unknown as readonly T[];
  return { own: listIndex(field, own), shared: listIndex(field, shared) };
}

// === content hash ===

/**
 * A short hash of a config's content, ignoring its `version` field (the compiler may stamp
 * a new version on identical content) and the order of its top-level fields. A list hashes
 * by its items, however they were split between own and shared parts.
 */
export function contentHash(content: ConfigContent, options: { keepJson?: boolean } = {}): string {
  const keepJson = options.keepJson ?? true;
  const own = content.own as unknown as Record<string, unknown>;
  const keys = new Set(Object.keys(own));
  for (const field of LIST_FIELDS) if (content.shared?.[field]) keys.add(field);
  const lines: string[] = [];
  for (const key of [...keys].sort()) {
    if (key === 'version') continue;
    const value = own[key];
    if (isListField(key)) {
      const ownItems = (value ?? EMPTY_LIST) as readonly unknown[];
      const sharedItems = content.shared?.[key] as readonly unknown[] | undefined;
      const ownHash = Object.isFrozen(ownItems) ? listIndex(key, ownItems, keepJson).hash() : hashItems(ownItems, keepJson);
      const hash = sharedItems ? concatHash(ownHash, listIndex(key, sharedItems, keepJson).hash()) : ownHash;
      lines.push(`${key}[${hash.count}:${hash.poly.toString(16)}]`);
      continue;
    }
    if (value === undefined || typeof value === 'function') continue;
    lines.push(`${key}=${keepJson ? jsonOf(value) : JSON.stringify(value)}`);
  }
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

/** A short content hash of a config, ignoring its `version` field. */
export function configHash(config: ProxyConfig | ComposedConfig): string {
  return contentHash(contentOf(config));
}

// === whole-config encoding ===

/**
 * The JSON of a whole config with `version` set, as segments to write in order: shared lists
 * go out as the Buffers every proxy of the class reuses, never copied per proxy.
 */
export function encodeConfig(content: ConfigContent, version: string): (string | Buffer)[] {
  const segments: (string | Buffer)[] = [];
  let text = `{"version":${JSON.stringify(version)}`;
  const own = content.own as unknown as Record<string, unknown>;
  const keys = [...Object.keys(own)];
  for (const field of LIST_FIELDS) if (content.shared?.[field] && !(field in own)) keys.push(field);
  for (const key of keys) {
    if (key === 'version') continue;
    const value = own[key];
    if (!isListField(key)) {
      if (value === undefined || typeof value === 'function') continue;
      text += `,${JSON.stringify(key)}:${jsonOf(value)}`;
      continue;
    }
    const ownItems = (value ?? EMPTY_LIST) as readonly unknown[];
    text += `,${JSON.stringify(key)}:[` + ownItems.map((item) => jsonOf(item)).join(',');
    const sharedItems = content.shared?.[key] as readonly unknown[] | undefined;
    if (sharedItems && sharedItems.length > 0) {
      if (ownItems.length > 0) text += ',';
      segments.push(text, listIndex(key, sharedItems).json());
      text = '';
    }
    text += ']';
  }
  segments.push(text + '}');
  return segments;
}

/** Bytes of a frame made of these segments. */
export function segmentsBytes(segments: readonly (string | Buffer)[]): number {
  let bytes = 0;
  for (const seg of segments) bytes += typeof seg === 'string' ? Buffer.byteLength(seg) : seg.length;
  return bytes;
}
