/**
 * The hash function of consistent-hash load balancing (RING_HASH, MAGLEV) and of the route's
 * hash policy (http/hash-policy.ts), which must share one space.
 *
 * Envoy uses xxHash64 for both; any hash with a good spread works as long as the ring and the
 * request use the same space. We use a 53-bit hash built from two 32-bit multiply lanes
 * (cyrb53, public domain) so the values stay plain JS numbers: no BigInt on the request path.
 */

/** 2^53: every hash lives in [0, HASH_SPACE). */
export const HASH_SPACE = 9007199254740992;

/** A 53-bit hash of a string; `seed` gives independent hash functions (Maglev needs two). */
export function hashString(input: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < input.length; i++) {
    const ch = input.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Brings a caller-supplied hash (bigint or number) into [0, 2^53). */
export function normalizeHash(hash: bigint | number): number {
  if (typeof hash === 'bigint') return Number(BigInt.asUintN(53, hash));
  if (Number.isSafeInteger(hash) && hash >= 0) return hash;
  // Negative or fractional numbers: fold deterministically rather than reject.
  return hashString(String(hash));
}
