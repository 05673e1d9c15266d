/**
 * Incremental pushes (protocol.ts "delta"), in the spirit of Envoy's delta xDS and VHDS:
 * the server sends a proxy only the resources that changed since the version it last sent
 * it, keyed by name, and the proxy applies them to the config it holds.
 *
 * Server side, `encodeDelta` diffs two configs list by list. A list is its proxy's own
 * items followed by its class's shared ones (content.ts), and the shared halves are diffed
 * once per pair of shared lists and the result's JSON kept (a WeakMap on the lists): for
 * one VirtualService change every proxy of a class gets the same bytes, and a proxy costs
 * the diff of its own few items. A route table whose only change is in its virtual hosts
 * is sent as a patch of those virtual hosts, since one VirtualService change alters one
 * virtual host of a route table holding a thousand.
 *
 * Client side, `applyDelta` rebuilds the whole config; the caller checks its content hash
 * against the delta's version, so a delta that would not give exactly what the server
 * holds is never applied, whatever the reason.
 */
import type { ProxyConfig, RouteConfiguration, VirtualHost } from '../api/proxy-config.js';
import { LIST_FIELDS, digestOf, isListField, jsonOf, listIndex, listParts, nameOf } from './content.js';
import type { ConfigContent, ListField, ListIndex } from './content.js';
import { XdsError, XdsErrorCode } from './protocol.js';
import type { ConfigChanges, ListDelta, VirtualHostPatch } from './protocol.js';

// === diffing (server) ===

/** How one list changed: whole items to add or replace, route-table patches, names gone, and whether the order needs saying. */
interface ListDiff {
  updated: unknown[];
  /** JSON of VirtualHostPatch objects (route tables only). */
  patches: string[];
  removed: string[];
  /** Names not in the old list. */
  added: number;
  /** Names in both lists. */
  kept: number;
  /**
   * True when the new list is the old one's surviving items in their old order followed by
   * the added ones: the default a client rebuilds without being told an order.
   */
  appendOnly: boolean;
}

function diffList(field: ListField | 'virtualHosts', before: ListIndex, after: ListIndex): ListDiff {
  const diff: ListDiff = { updated: [], patches: [], removed: [], added: 0, kept: 0, appendOnly: true };
  let lastPosition = -1;
  after.items.forEach((item, i) => {
    const position = before.positions.get(after.names[i]!);
    if (position === undefined) {
      diff.updated.push(item);
      diff.added++;
      return;
    }
    diff.kept++;
    if (diff.added > 0 || position < lastPosition) diff.appendOnly = false;
    lastPosition = position;
    const old = before.items[position];
    if (old === item || digestOf(old) === digestOf(item)) return;
    const patch = field === 'routeConfigs' ? virtualHostPatch(old as RouteConfiguration, item as RouteConfiguration) : undefined;
    if (patch !== undefined) diff.patches.push(patch);
    else diff.updated.push(item);
  });
  if (diff.kept < before.items.length) for (const name of before.names) if (!after.positions.has(name)) diff.removed.push(name);
  return diff;
}

/**
 * A route table's change as a patch of its virtual hosts, when nothing else in it changed,
 * its virtual hosts are named uniquely, and the patch is smaller than the table.
 */
function virtualHostPatch(before: RouteConfiguration, after: RouteConfiguration): string | undefined {
  if (JSON.stringify({ ...before, virtualHosts: undefined }) !== JSON.stringify({ ...after, virtualHosts: undefined })) return undefined;
  const old = listIndex('virtualHosts', before.virtualHosts ?? []);
  const next = listIndex('virtualHosts', after.virtualHosts ?? []);
  if (!old.unique || !next.unique) return undefined;
  const diff = diffList('virtualHosts', old, next);
  const patch: VirtualHostPatch = { routeConfig: after.name };
  if (diff.updated.length) patch.updated = diff.updated as VirtualHost[];
  if (diff.removed.length) patch.removed = diff.removed;
  if (!diff.appendOnly) patch.order = [...next.names];
  const json = JSON.stringify(patch);
  return json.length < routeTableJsonLength(after, next) ? json : undefined;
}

/**
 * The length of a route table's JSON, counted from its virtual hosts' JSON (which hashing
 * has already made and kept beside each frozen one) rather than by serialising the table:
 * a table of a thousand virtual hosts is made anew by every change to one of them, and
 * serialising it whole, once per proxy class, cost more than the rest of the diff.
 */
function routeTableJsonLength(table: RouteConfiguration, hosts: ListIndex): number {
  let length = JSON.stringify({ ...table, virtualHosts: [] }).length + Math.max(0, hosts.items.length - 1);
  for (const host of hosts.items) length += jsonOf(host).length;
  return length;
}

/** A shared list's diff with its JSON, made once per pair of shared lists. */
interface SharedDiff extends ListDiff {
  updatedJson: Buffer;
  patchesJson: Buffer;
  removedJson: Buffer;
}

const sharedDiffs = new WeakMap<readonly unknown[], WeakMap<readonly unknown[], SharedDiff>>();

function sharedDiff(field: ListField, before: ListIndex, after: ListIndex): SharedDiff {
  let byAfter = sharedDiffs.get(before.items);
  let diff = byAfter?.get(after.items);
  if (diff) return diff;
  const plain = diffList(field, before, after);
  diff = {
    ...plain,
    updatedJson: Buffer.from(plain.updated.map((item) => jsonOf(item)).join(',')),
    patchesJson: Buffer.from(plain.patches.join(',')),
    removedJson: Buffer.from(plain.removed.map((n) => JSON.stringify(n)).join(',')),
  };
  // Only frozen lists can be remembered: anything else could change under the cache.
  if (Object.isFrozen(before.items) && Object.isFrozen(after.items)) {
    if (!byAfter) sharedDiffs.set(before.items, (byAfter = new WeakMap()));
    byAfter.set(after.items, diff);
  }
  return diff;
}

/** Appends `parts` as one JSON array body (without brackets), skipping empty parts. */
function joinParts(out: (string | Buffer)[], parts: (string | Buffer)[]): void {
  let first = true;
  for (const part of parts) {
    if (part.length === 0) continue;
    if (!first) out.push(',');
    out.push(part);
    first = false;
  }
}

/**
 * The delta of one list as JSON segments, `undefined` when unchanged, or `false` when it
 * cannot be said by name (a name used twice, or an item moving between a proxy's own part
 * and its shared part), so a whole push must be sent.
 */
function encodeListDelta(field: ListField, base: ConfigContent, next: ConfigContent): (string | Buffer)[] | undefined | false {
  const before = listParts(base, field);
  const after = listParts(next, field);
  if (before.own.items === after.own.items && before.shared.items === after.shared.items) return undefined;
  if (!before.own.unique || !before.shared.unique || !after.own.unique || !after.shared.unique) return false;
  for (const name of before.own.names) if (before.shared.positions.has(name) || after.shared.positions.has(name)) return false;
  for (const name of after.own.names) if (after.shared.positions.has(name) || before.shared.positions.has(name)) return false;

  const own = diffList(field, before.own, after.own);
  const shared = sharedDiff(field, before.shared, after.shared);
  const updated = own.updated.length + shared.updated.length;
  const removed = own.removed.length + shared.removed.length;
  const patches = own.patches.length + shared.patches.length;
  // The client keeps surviving items in place and appends new ones in the order sent (own
  // then shared); that is the new order when each half is append-only and no own item is
  // added ahead of surviving shared ones. Otherwise the order is sent.
  const orderKept = own.appendOnly && shared.appendOnly && (own.added === 0 || shared.kept === 0);
  if (updated === 0 && removed === 0 && patches === 0 && orderKept) return undefined;

  const out: (string | Buffer)[] = ['{'];
  const fields: string[] = [];
  const open = (name: string) => {
    out.push(`${fields.length ? ',' : ''}"${name}":[`);
    fields.push(name);
  };
  if (updated) {
    open('updated');
    joinParts(out, [own.updated.map((item) => jsonOf(item)).join(','), shared.updatedJson]);
    out.push(']');
  }
  if (removed) {
    open('removed');
    joinParts(out, [own.removed.map((n) => JSON.stringify(n)).join(','), shared.removedJson]);
    out.push(']');
  }
  if (!orderKept) {
    open('order');
    joinParts(out, [after.own.namesJson(), after.shared.namesJson()]);
    out.push(']');
  }
  if (patches) {
    open('virtualHosts');
    joinParts(out, [own.patches.join(','), shared.patchesJson]);
    out.push(']');
  }
  out.push('}');
  return out;
}

/**
 * The `changes` of a delta from `base` to `next` as JSON segments, or `undefined` when the
 * change cannot be said as a delta and the whole config must be pushed.
 */
export function encodeDelta(base: ConfigContent, next: ConfigContent): (string | Buffer)[] | undefined {
  const out: (string | Buffer)[] = [];
  let entries = 0;
  const entry = (key: string, value: string | (string | Buffer)[]) => {
    out.push(`${entries++ ? ',' : '{'}${JSON.stringify(key)}:`);
    if (typeof value === 'string') out.push(value);
    else out.push(...value);
  };

  // Top-level fields other than the lists (node, secrets, telemetry): whole values.
  const baseOwn = base.own as unknown as Record<string, unknown>;
  const nextOwn = next.own as unknown as Record<string, unknown>;
  const set: string[] = [];
  const unset: string[] = [];
  for (const key of new Set([...Object.keys(baseOwn), ...Object.keys(nextOwn)])) {
    if (key === 'version' || isListField(key)) continue;
    const before = baseOwn[key];
    const after = nextOwn[key];
    if (before === after) continue;
    if (after === undefined || typeof after === 'function') {
      if (before !== undefined) unset.push(JSON.stringify(key));
      continue;
    }
    const json = jsonOf(after);
    if (before === undefined || jsonOf(before) !== json) set.push(`${JSON.stringify(key)}:${json}`);
  }
  if (set.length) entry('set', `{${set.join(',')}}`);
  if (unset.length) entry('unset', `[${unset.join(',')}]`);

  for (const field of LIST_FIELDS) {
    const list = encodeListDelta(field, base, next);
    if (list === false) return undefined;
    if (list) entry(field, list);
  }
  out.push(entries ? '}' : '{}');
  return out;
}

// === applying (client) ===

function mismatch(message: string): XdsError {
  return new XdsError(XdsErrorCode.DeltaMismatch, message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw mismatch(`${where} must be a list of names`);
  return value as string[];
}

/** Applies one list's delta: removed names go, updated items replace or join, then the order. */
function applyList<T>(field: ListField | 'virtualHosts', items: readonly T[], value: unknown, where: string): T[] {
  if (!isObject(value)) throw mismatch(`${where} must be an object`);
  const delta = value as ListDelta<unknown>;
  const index = listIndex(field, items, false);
  if (!index.unique) throw mismatch(`${where}: the held list names an item twice`);
  const current = new Map<string, T>();
  items.forEach((item, i) => current.set(index.names[i]!, item));
  for (const name of stringList(delta.removed, `${where}.removed`)) {
    if (!current.delete(name)) throw mismatch(`${where}: cannot remove ${JSON.stringify(name)}, it is not held`);
  }
  const updated = delta.updated ?? [];
  if (!Array.isArray(updated)) throw mismatch(`${where}.updated must be a list`);
  const added: string[] = [];
  const seen = new Set<string>();
  for (const item of updated) {
    const name = nameOf(field, item);
    if (!isObject(item) || name === '' || seen.has(name)) throw mismatch(`${where}.updated has an unnamed or repeated item`);
    seen.add(name);
    if (!index.positions.has(name)) added.push(name);
    current.set(name, item as T);
  }
  if (delta.order !== undefined) {
    const order = stringList(delta.order, `${where}.order`);
    if (order.length !== current.size) throw mismatch(`${where}.order names ${order.length} items, ${current.size} are held`);
    return order.map((name) => {
      const item = current.get(name);
      if (item === undefined) throw mismatch(`${where}.order names ${JSON.stringify(name)}, which is not held`);
      return item;
    });
  }
  const out: T[] = [];
  for (const name of index.names) {
    const item = current.get(name);
    if (item !== undefined) out.push(item);
  }
  for (const name of added) out.push(current.get(name)!);
  return out;
}

/**
 * Rebuilds a whole config from the one held and a delta's changes. Throws an `XdsError`
 * (DeltaMismatch) when the changes do not fit the held config. The result shares every
 * unchanged item with `base`; `version` is set by the caller.
 */
export function applyDelta(base: ProxyConfig, changes: ConfigChanges): ProxyConfig {
  if (!isObject(changes)) throw mismatch('delta.changes must be an object');
  const config = { ...base } as unknown as Record<string, unknown>;
  if (changes.set !== undefined) {
    if (!isObject(changes.set)) throw mismatch('delta.changes.set must be an object');
    for (const [key, value] of Object.entries(changes.set)) {
      if (key === 'version' || isListField(key)) throw mismatch(`delta.changes.set cannot set ${key}`);
      config[key] = value;
    }
  }
  for (const key of stringList(changes.unset, 'delta.changes.unset')) delete config[key];
  for (const field of LIST_FIELDS) {
    const delta = changes[field];
    if (delta === undefined) continue;
    let list = applyList(field, (base[field] ?? []) as readonly unknown[], delta, `delta.changes.${field}`);
    if (field === 'routeConfigs') list = applyVirtualHostPatches(list as RouteConfiguration[], (delta as ConfigChanges['routeConfigs'])!.virtualHosts);
    config[field] = list;
  }
  return config as unknown as ProxyConfig;
}

function applyVirtualHostPatches(routeConfigs: RouteConfiguration[], patches: unknown): RouteConfiguration[] {
  if (patches === undefined) return routeConfigs;
  if (!Array.isArray(patches)) throw mismatch('delta.changes.routeConfigs.virtualHosts must be a list');
  const positions = new Map(routeConfigs.map((rc, i) => [rc.name, i]));
  const out = [...routeConfigs];
  for (const patch of patches as VirtualHostPatch[]) {
    const i = isObject(patch) && typeof patch.routeConfig === 'string' ? positions.get(patch.routeConfig) : undefined;
    if (i === undefined) throw mismatch('a virtual host patch names a route table that is not held');
    const rc = out[i]!;
    out[i] = { ...rc, virtualHosts: applyList('virtualHosts', rc.virtualHosts, patch, `virtual hosts of ${patch.routeConfig}`) };
  }
  return out;
}
