/**
 * A bound on the garbage one long, allocation-heavy job leaves in V8's old generation: reading
 * a large config (the control plane's apply, or its state file at start).
 *
 * Why it is needed: the YAML library builds each document's syntax tree and the validator
 * its resource while a megabyte or more of other short-lived objects is allocated around
 * them, so with small semi-spaces most of that survives two young collections and is
 * promoted. V8 then lets the old generation grow to up to ~4x what survived its last full
 * collection before it collects again (its heap growing factor, highest when collections
 * take little of the time, as here). Reading a 15 MB config kept ~50-60 MB alive but made
 * the heap climb to ~220 MB between full collections: a peak of 310-350 MB of RSS
 * (bench/controlplane-memory.ts).
 *
 * The job calls `check()` between pieces of its work: once the heap holds more than
 * `slackBytes` beyond what survived the last collection, a full collection runs, so the
 * heap stays within the survivors plus the slack. Each collection of a ~60 MB heap takes
 * tens of milliseconds; one comes per `slackBytes` of promoted garbage. Nothing changes for
 * the rest of the process (setting `--heap-growing-percent` for good did bound the apply,
 * but made every later collection come sooner too: pushes took twice as long).
 *
 * A full collection on demand needs V8's `gc` function: `--expose-gc` is set at first use
 * and the function taken from a fresh context (the flag only adds it to contexts created
 * after it is set), so the process's own global scope stays as it was. Where that is not
 * possible the bound does nothing and V8's own heuristics decide, as before.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's full collection, or null when it cannot be had; undefined until first asked for. */
let fullCollection: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (fullCollection === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
      fullCollection = typeof gc === 'function' ? () => (gc as () => void)() : null;
    } catch {
      fullCollection = null;
    }
  }
  return fullCollection;
}

const usedHeap = () => getHeapStatistics().used_heap_size;

export class GarbageBound {
  /** What the heap held after the last full collection (or at the start). */
  private floor = usedHeap();
  /** Full collections this bound has run. */
  collections = 0;

  constructor(private readonly slackBytes: number) {}

  /** Between two pieces of the job: a full collection when the heap has grown past the bound. */
  check(): void {
    if (usedHeap() - this.floor < this.slackBytes) return;
    const collect = collector();
    if (!collect) return;
    collect();
    this.collections++;
    this.floor = usedHeap();
  }
}
