/**
 * The control plane's config API (what `sinew apply/delete/get` and the console call).
 *
 *   POST   /api/v1/apply                          body: YAML or JSON, one or many documents
 *   POST   /api/v1/delete                         body: YAML or JSON naming the resources to delete
 *   GET    /api/v1/resources[?kind=K&namespace=N]
 *   GET    /api/v1/resources/<kind>/<namespace>/<name>
 *   DELETE /api/v1/resources/<kind>/<namespace>/<name>
 *   GET    /api/v1/history
 *
 * The control plane mounts this behind its gate (http-api.ts: Host, Origin, credential,
 * media type); bodies are read within `maxBodyBytes` as strict UTF-8, and query strings are
 * checked with their schemas (api-schemas.ts): bad input gets 400 with every problem.
 *
 * An apply is all or nothing: any validation error refuses the whole batch with every
 * diagnostic (422), and the config in force does not change. Cross-resource references are
 * NOT checked here — a VirtualService may name a subset whose DestinationRule arrives a
 * moment later (`sinew analyze` reports such gaps; the proxy answers 503 NC meanwhile).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Diagnostic } from '../api/diagnostics.js';
import type { Resource } from '../api/resources/meta.js';
import { findKind, groupOf, manifestOf } from '../api/resources/index.js';
import { GarbageBound } from '../core/garbage-bound.js';
import { ClientGoneError, HttpBodyError, drainAfterRefusal, readText, readTextPieces } from '../core/http-body.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import { parseText } from '../config/load.js';
import { TextValidator } from '../config/validate.js';
import { keyOf, type ConfigStore, type ResourceKey } from '../config/store.js';
import { namespaceQuerySchema, problemsOf, queryObject, resourceListQuerySchema } from './api-schemas.js';

export interface ConfigApiOptions {
  store: ConfigStore;
  /**
   * The status the control plane shows with resources (the Gateway API's, computed for the
   * config in force and the running gateways): called once per request, it returns the status
   * of each resource, or undefined for none.
   */
  statusFor?: () => (r: Resource) => Record<string, unknown> | undefined;
  logger?: Logger;
  /**
   * Warnings about the machine the proxies share with the control plane (certificate files
   * named by path that cannot be read there, SNW1020), added to an apply's diagnostics. Absent
   * when the proxies run elsewhere (Kubernetes).
   */
  localDiagnostics?: (resources: readonly Resource[]) => Diagnostic[];
  /** Largest request body accepted (default 16 MiB); larger gets 413. */
  maxBodyBytes?: number;
}

/**
 * How much garbage reading an apply may leave in the heap before a full collection
 * (core/garbage-bound.ts). For the 15 MB benchmark config (bench/controlplane-memory.ts):
 * 16 MB held the peak to ~135 MB of RSS with ~60 collections, but the apply took ~45% more
 * CPU time (38 s against 25-27 s at load averages of 6-11); 24 MB gave ~10 MB more at the
 * peak with 40 collections; none, ~300 MB. Larger semi-spaces (8 MB) promote less and need
 * fewer collections, but the young generation they grow to kept the peak at ~145 MB.
 */
const APPLY_GARBAGE_SLACK_BYTES = 16 * 1024 * 1024;

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly body?: unknown) {
    super(message);
  }
}

const describe = (r: Resource) => ({ kind: r.kind, namespace: r.metadata.namespace || undefined, name: r.metadata.name });

/** Creates the API's request handler; mount it on any node:http server. */
export function createConfigApiHandler(options: ConfigApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { store } = options;
  const logger = options.logger ?? silentLogger;
  const maxBody = options.maxBodyBytes ?? 16 * 1024 * 1024;

  const routes = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<{ status: number; body: unknown }> => {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== 'api' || parts[1] !== 'v1') throw new HttpError(404, `no such endpoint ${url.pathname}; see /api/v1/resources`);
    const [, , collection, kind, namespace, name] = parts;

    if (collection === 'apply' && req.method === 'POST') {
      const { namespace: defaultNamespace } = query(namespaceQuerySchema, url);
      // Validated a piece at a time, each chunk of the body let go once read: its text is
      // never held whole (for a 15 MB config, its text and its line table were about 25 MB
      // of the peak; bench/controlplane-memory.ts). Between pieces, the garbage the parser
      // leaves in the old generation is bounded (core/garbage-bound.ts).
      const validator = new TextValidator(req.headers['x-sinew-source'] as string ?? '<request>', { defaultNamespace });
      const pieces = await readTextPieces(req, res, { maxBytes: maxBody });
      // From here: the body received is not garbage, what reading it leaves is.
      const garbage = new GarbageBound(APPLY_GARBAGE_SLACK_BYTES);
      for (const piece of pieces) {
        validator.write(piece);
        garbage.check();
      }
      const result = validator.end();
      const errors = result.diagnostics.filter((d) => d.level === 'error');
      if (errors.length > 0) {
        return { status: 422, body: { error: `refused: ${errors.length} validation error(s); nothing was applied`, diagnostics: result.diagnostics } };
      }
      // kubectl's words: created (new), configured (changed), unchanged.
      const inForce = new Set(store.list().map(keyOf));
      const existed = new Set(result.resources.map(keyOf).filter((k) => inForce.has(k)));
      const change = await store.apply(result.resources, 'apply');
      const changed = new Set(change.applied.map(keyOf));
      logger.info('config applied', { revision: change.revision, changed: changed.size });
      const resultOf = (key: string) => (!changed.has(key) ? 'unchanged' : existed.has(key) ? 'configured' : 'created');
      return {
        status: 200,
        body: {
          revision: store.revision,
          resources: result.resources.map((r) => ({
            ...describe(r),
            result: resultOf(keyOf(r)),
          })),
          diagnostics: [...result.diagnostics, ...(options.localDiagnostics?.(result.resources) ?? [])],
        },
      };
    }

    if (collection === 'delete' && req.method === 'POST') {
      const { namespace: defaultNamespace } = query(namespaceQuerySchema, url);
      const text = await readText(req, res, { maxBytes: maxBody });
      const keys = keysFromText(text, defaultNamespace ?? 'default');
      const change = await store.delete(keys, 'delete');
      const deleted = new Set(change.deleted.map((k) => `${k.kind}/${k.namespace}/${k.name}`));
      return {
        status: 200,
        body: { revision: store.revision, resources: keys.map((k) => ({ ...k, result: deleted.has(`${k.kind}/${k.namespace}/${k.name}`) ? 'deleted' : 'not found' })) },
      };
    }

    if (collection === 'history' && req.method === 'GET') {
      return { status: 200, body: store.history().map((c) => ({ revision: c.revision, at: new Date(c.at).toISOString(), cause: c.cause, applied: c.applied.map(describe), deleted: c.deleted })) };
    }

    if (collection === 'resources') {
      if (!kind && req.method === 'GET') {
        const filter = query(resourceListQuerySchema, url);
        const list = store.list(filter.kind, filter.namespace);
        const statusOf = options.statusFor?.();
        return { status: 200, body: { revision: store.revision, items: list.map((r) => toManifest(r, statusOf)) } };
      }
      if (kind && namespace !== undefined && name) {
        if (!findKind(kind)) throw new HttpError(400, `unknown kind "${kind}"`);
        if (req.method === 'GET') {
          const r = store.get(kind, namespace, name);
          if (!r) throw new HttpError(404, `${kind} ${namespace}/${name} not found`);
          return { status: 200, body: toManifest(r, options.statusFor?.()) };
        }
        if (req.method === 'DELETE') {
          const change = await store.delete([{ kind, namespace, name }], 'delete');
          if (change.deleted.length === 0) throw new HttpError(404, `${kind} ${namespace}/${name} not found`);
          return { status: 200, body: { revision: store.revision, deleted: { kind, namespace, name } } };
        }
      }
    }
    throw new HttpError(req.method === 'GET' || req.method === 'POST' || req.method === 'DELETE' ? 404 : 405, `no route for ${req.method} ${url.pathname}`);
  };

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://control-plane');
    routes(req, res, url).then(
      ({ status, body }) => sendJson(res, status, body),
      (err: unknown) => {
        if (err instanceof ClientGoneError) return;
        if (err instanceof HttpError) sendJson(res, err.status, err.body ?? { error: err.message });
        else if (err instanceof HttpBodyError) sendJson(res, err.status, { error: err.message, ...err.detail });
        else {
          logger.error('config API failure', { error: (err as Error).message });
          sendJson(res, 500, { error: `internal error: ${(err as Error).message}` });
        }
        // A refusal may come before the body was read (or while it still arrives).
        drainAfterRefusal(req);
      },
    );
  };
}

/**
 * Starts a standalone config API server without the control plane's gate (tests of the
 * config routes; the daemon mounts the handler behind http-api.ts).
 */
export async function startConfigApi(options: ConfigApiOptions & { port?: number; host?: string }): Promise<{ server: Server; address: AddressInfo }> {
  const handler = createConfigApiHandler(options);
  const server = createServer(handler);
  server.on('checkContinue', handler);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  return { server, address: server.address() as AddressInfo };
}

/** A resource as the API shows it: Secrets' values redacted (manifestOf), with its status when it has one. */
export function toManifest(r: Resource, statusOf?: (r: Resource) => Record<string, unknown> | undefined): Record<string, unknown> {
  const status = statusOf?.(r);
  return { ...manifestOf(r, { redact: true }), ...(status ? { status } : {}) };
}

/** Reads the kinds and names of the documents in `text`, for delete-by-file; content is not validated. */
function keysFromText(text: string, defaultNamespace: string): ResourceKey[] {
  const loaded = parseText('<request>', text);
  const errors = loaded.diagnostics.filter((d: Diagnostic) => d.level === 'error');
  if (errors.length) throw new HttpError(400, 'cannot read the request body', { error: 'cannot read the request body', diagnostics: errors });
  const keys: ResourceKey[] = [];
  for (const doc of loaded.documents) {
    const v = doc.value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    if (typeof v?.kind !== 'string' || typeof v.metadata?.name !== 'string') continue;
    // In its group: deleting a Gateway API Gateway must not delete Istio's Gateway of that name.
    const def = typeof (v as { apiVersion?: unknown }).apiVersion === 'string' ? findKind(v.kind, groupOf((v as { apiVersion: string }).apiVersion)) : findKind(v.kind);
    if (!def) continue;
    keys.push({ kind: def.key ?? def.kind, name: v.metadata.name, namespace: def.namespaced ? (typeof v.metadata.namespace === 'string' ? v.metadata.namespace : defaultNamespace) : '' });
  }
  return keys;
}

/** The URL's query checked with `schema`: 400 with every problem. */
function query<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } }, url: URL): T {
  const result = schema.safeParse(queryObject(url.searchParams));
  if (result.success) return result.data;
  const problems = problemsOf(result.error);
  throw new HttpError(400, 'invalid query', { error: `invalid query: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
