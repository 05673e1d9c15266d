import { distance } from 'fastest-levenshtein';

/**
 * "Did you mean": the closest candidate to `input`, if it is close enough to be a typo
 * (at most a third of the word's length, and at least 1 edit, away). Case differences
 * count as near misses too (`maxconnections` -> `maxConnections`).
 */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  const lower = input.toLowerCase();
  for (const candidate of candidates) {
    if (candidate === input) return undefined;
    const score = candidate.toLowerCase() === lower ? 0.5 : distance(lower, candidate.toLowerCase());
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  if (best === undefined) return undefined;
  // Allow more edits for longer words; a prefix/suffix match (hosts -> host, maxConnection ->
  // maxConnections) is always a near miss.
  const limit = Math.max(1, Math.floor(Math.max(input.length, best.length) / 3));
  const bl = best.toLowerCase();
  const affix = (bl.startsWith(lower) || lower.startsWith(bl)) && Math.abs(bl.length - lower.length) <= 2;
  if (bestScore <= limit || affix) return best;
  return undefined;
}

/** `; did you mean "x"?` or the empty string. */
export function didYouMean(input: string, candidates: Iterable<string>): string {
  const match = closest(input, candidates);
  return match === undefined ? '' : `; did you mean "${match}"?`;
}
