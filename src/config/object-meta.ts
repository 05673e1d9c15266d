/**
 * The metadata the store sets on a resource, as the Kubernetes API server sets it
 * (apimachinery's rest.BeforeCreate / BeforeUpdate and the registry's generation strategy):
 *
 *   creationTimestamp  when the resource was created; kept on every update
 *   uid                a new UUID on create; kept on every update
 *   generation         1 on create; +1 when the spec changes (metadata changes leave it)
 *   resourceVersion    the store revision of the last change, as etcd's revision is
 *
 * What a client sends for these fields is replaced, as the API server replaces it, so a
 * manifest saved with `sinew get -o yaml` applies again cleanly. The timestamp is written to
 * the millisecond (RFC 3339 allows fractions; Kubernetes itself truncates to seconds) so that
 * two applies a moment apart still order as they happened: the oldest of several
 * VirtualServices for one host is the one sidecars use (src/semantics/creation-order.ts).
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Resource } from '../api/resources/meta.js';
import { deepFreeze } from '../core/freeze.js';

/** Metadata fields the store owns; whatever an applied manifest says for them is replaced. */
export const SERVER_SET_FIELDS = ['creationTimestamp', 'generation', 'resourceVersion', 'uid'] as const;

/** The metadata a user writes: everything but the fields the store sets. */
export function userMetadata(metadata: Resource['metadata']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) if (!(SERVER_SET_FIELDS as readonly string[]).includes(k)) out[k] = v;
  return out;
}

/**
 * True when applying `incoming` over `existing` would change nothing a user wrote (kubectl's
 * "unchanged"). Compared as data, so the order of keys does not count.
 */
export function sameContent(existing: Resource, incoming: Resource): boolean {
  return (
    existing.apiVersion === incoming.apiVersion &&
    isDeepStrictEqual(existing.spec, incoming.spec) &&
    isDeepStrictEqual(userMetadata(existing.metadata), userMetadata(incoming.metadata))
  );
}

export interface StampContext {
  /** The creationTimestamp of a resource created now (RFC 3339, to the millisecond). */
  creationTimestamp: string;
  /** The resourceVersion of the change being made. */
  resourceVersion: string;
  /** A new uid (default: a random UUID). */
  newUid?: () => string;
}

/**
 * `incoming` as the store keeps it once applied over `existing` (undefined when it is new):
 * the server-set fields replaced, metadata keys in kubectl's (alphabetical) order, frozen.
 */
export function stampApplied(incoming: Resource, existing: Resource | undefined, ctx: StampContext): Resource {
  const stamped: Record<string, unknown> = { ...userMetadata(incoming.metadata) };
  if (existing) {
    stamped.creationTimestamp = existing.metadata.creationTimestamp ?? ctx.creationTimestamp;
    stamped.uid = existing.metadata.uid ?? (ctx.newUid ?? randomUUID)();
    const generation = existing.metadata.generation ?? 1;
    stamped.generation = isDeepStrictEqual(existing.spec, incoming.spec) ? generation : generation + 1;
  } else {
    stamped.creationTimestamp = ctx.creationTimestamp;
    stamped.uid = (ctx.newUid ?? randomUUID)();
    stamped.generation = 1;
  }
  stamped.resourceVersion = ctx.resourceVersion;
  const metadata: Record<string, unknown> = {};
  for (const k of Object.keys(stamped).sort()) metadata[k] = stamped[k];
  return deepFreeze({ ...incoming, metadata }) as Resource;
}

/** Whether the store has stamped this resource (state written before stamping existed has not). */
export function isStamped(r: Resource): boolean {
  return typeof r.metadata.uid === 'string' && typeof r.metadata.creationTimestamp === 'string' && typeof r.metadata.resourceVersion === 'string';
}
