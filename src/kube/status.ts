/**
 * Status of Istio resources that got into the cluster without passing the webhook (installed
 * before it, or with it down): the leader writes on each refused resource a condition
 * `Accepted=False` with every error and Istio's `validationMessages` list, and clears them
 * (`Accepted=True`, no messages) once a valid version arrives. Written through the status
 * subresource, so the spec and the resource's generation stay as the user left them.
 */
import type { Diagnostic } from '../api/diagnostics.js';
import { formatDiagnostic } from '../api/diagnostics.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { KubeClient } from './api.js';
import type { KubeSource, RejectedResource } from './source.js';

export interface StatusWriterOptions {
  client: KubeClient;
  source: KubeSource;
  clock?: Clock;
  logger?: Logger;
}

export class StatusWriter {
  #leading = false;
  /** Refused resources whose status says so, by key, with the path to write to. */
  readonly #marked = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();
  readonly #unsubscribe: () => void;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(private readonly options: StatusWriterOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#unsubscribe = options.source.onRejected((key, entry) => {
      if (this.#leading) this.#enqueue(key, entry);
    });
  }

  /** Leadership changed: a new leader writes the status of everything refused now. */
  setLeading(leading: boolean): void {
    this.#leading = leading;
    if (leading) for (const [key, entry] of this.options.source.rejected) this.#enqueue(key, entry);
  }

  /** Resolves when every write so far is done. */
  idle(): Promise<void> {
    return this.#queue;
  }

  close(): void {
    this.#unsubscribe();
  }

  #enqueue(key: string, entry: RejectedResource | undefined): void {
    this.#queue = this.#queue.then(() => this.#write(key, entry)).catch((err: Error) => this.#logger.warn('status not written', { resource: key, error: err.message }));
  }

  async #write(key: string, entry: RejectedResource | undefined): Promise<void> {
    if (!entry) {
      const path = this.#marked.get(key);
      if (!path) return;
      this.#marked.delete(key);
      await this.#patch(path, true, []);
      return;
    }
    // Istio's status shape on Istio's kinds only: the Gateway API's status (conditions per
    // parent) is not written to the cluster yet; a refused Gateway API object is logged.
    if (!entry.kind.group.endsWith('istio.io')) {
      this.#logger.warn('refused, the last valid version stays in force', { resource: key, errors: entry.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic).join('; ') });
      return;
    }
    const meta = entry.object.metadata ?? {};
    const apiVersion = entry.object.apiVersion ?? `${entry.kind.group}/${entry.kind.versions[0]}`;
    const path = `/apis/${apiVersion}/namespaces/${meta.namespace}/${entry.kind.plural}/${meta.name}/status`;
    this.#marked.set(key, path);
    await this.#patch(path, false, entry.diagnostics, meta.generation);
  }

  async #patch(path: string, accepted: boolean, diagnostics: readonly Diagnostic[], generation?: number): Promise<void> {
    const errors = diagnostics.filter((d) => d.level === 'error');
    const status = {
      conditions: [
        {
          type: 'Accepted',
          status: accepted ? 'True' : 'False',
          reason: accepted ? 'Accepted' : 'Invalid',
          message: accepted ? 'in force' : `refused by sinew, the last valid version stays in force:\n${errors.map(formatDiagnostic).join('\n')}`,
          lastTransitionTime: new Date(this.#clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          ...(generation !== undefined ? { observedGeneration: generation } : {}),
        },
      ],
      // Istio's shape (analysis messages in status): level and code per finding.
      validationMessages: diagnostics.map((d) => ({ level: d.level.toUpperCase(), type: { code: d.code }, message: d.message, ...(d.path ? { path: d.path } : {}) })),
    };
    await this.options.client.request('PATCH', path, { contentType: 'application/merge-patch+json', body: { status } });
  }
}
