/**
 * The replicas the runner registered (`PUT /api/v1/registrations/...`): which workload and
 * gateway replicas run where, with their ports. Registrations survive a control-plane restart
 * in the state directory: the runner re-sends them too, but until it does the endpoints stay
 * known and proxies resync to the same config. What is read back is checked with the same
 * schema as what the API accepts, so a hand-edited file cannot smuggle in a bad one.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkloadRegistration } from '../api/mesh-status.js';
import type { Logger } from '../core/logger.js';
import { writeAtomic } from '../config/store.js';
import { problemsOf, registrationSchema } from './api-schemas.js';

const REGISTRATIONS_FILE = 'registrations.json';

/** `<kind>/<namespace>/<name>`, the key of a registration. */
export const registrationKey = (r: Pick<WorkloadRegistration, 'kind' | 'namespace' | 'name'>): string => `${r.kind}/${r.namespace}/${r.name}`;

export class Registrations {
  readonly #byKey = new Map<string, WorkloadRegistration>();
  // Writes are chained so the file always ends with the latest state, whatever the order
  // in which concurrent registrations finish.
  #persisting: Promise<void> = Promise.resolve();

  private constructor(
    private readonly stateDir: string | undefined,
    private readonly logger: Logger,
  ) {}

  /** The registrations kept in `stateDir` (none without one). */
  static async open(stateDir: string | undefined, logger: Logger): Promise<Registrations> {
    const book = new Registrations(stateDir, logger);
    if (!stateDir) return book;
    let text: string;
    try {
      text = await readFile(join(stateDir, REGISTRATIONS_FILE), 'utf8');
    } catch {
      return book; // first start
    }
    let saved: unknown;
    try {
      saved = JSON.parse(text);
    } catch (err) {
      logger.warn('registrations file is not JSON; starting without registrations (the runner re-sends them)', { error: (err as Error).message });
      return book;
    }
    for (const [i, value] of (Array.isArray(saved) ? saved : []).entries()) {
      const parsed = registrationSchema.safeParse(value);
      if (parsed.success) book.#byKey.set(registrationKey(parsed.data), parsed.data);
      else logger.warn('ignored an invalid saved registration', { index: i, problems: problemsOf(parsed.error) });
    }
    return book;
  }

  /** Every registration by key; the map the compiler reads. */
  get map(): ReadonlyMap<string, WorkloadRegistration> {
    return this.#byKey;
  }

  values(): IterableIterator<WorkloadRegistration> {
    return this.#byKey.values();
  }

  /**
   * Records a registration at once (the next build sees it) and persists the set; the
   * promise settles once it is on disk.
   */
  set(registration: WorkloadRegistration): Promise<void> {
    this.#byKey.set(registrationKey(registration), registration);
    return this.#persist();
  }

  /** Removes a registration at once; `existed` says whether there was one, `saved` settles once the set is on disk. */
  delete(key: string): { existed: boolean; saved: Promise<void> } {
    const existed = this.#byKey.delete(key);
    return { existed, saved: existed ? this.#persist() : Promise.resolve() };
  }

  #persist(): Promise<void> {
    if (!this.stateDir) return Promise.resolve();
    const file = join(this.stateDir, REGISTRATIONS_FILE);
    this.#persisting = this.#persisting
      .catch(() => undefined)
      .then(() => writeAtomic(file, JSON.stringify([...this.#byKey.values()])))
      .catch((err: Error) => {
        this.logger.error('could not save registrations', { file, error: err.message });
        throw err;
      });
    return this.#persisting;
  }
}
