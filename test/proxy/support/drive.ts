/**
 * Drives a ManualClock while a request is in flight: whenever the proxy has a timer pending
 * and the event loop has nothing else to do, time jumps to it. Nothing sleeps.
 */
import { setImmediate as tick } from 'node:timers/promises';
import type { ManualClock } from '../../../src/core/clock.js';

export async function drive<T>(clock: ManualClock, work: Promise<T>, stepMs = 5): Promise<T> {
  let settled = false;
  const result = work.finally(() => { settled = true; });
  while (!settled) {
    await tick();
    if (!settled && clock.pendingTimers() > 0) clock.advance(stepMs);
  }
  return result;
}

/** Resolves once `cond` holds, checking after each turn of the event loop. */
export async function until(cond: () => boolean, what = 'condition', maxTurns = 100_000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (cond()) return;
    await tick();
  }
  throw new Error(`gave up waiting for ${what}`);
}
