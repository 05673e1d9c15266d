/**
 * The admission webhooks (Istio's istiod serves both on 15017):
 *
 *  - `/inject` — mutating, for Pods: the sidecar (inject.ts) when Istio's selection rules say
 *    so, as a JSON patch;
 *  - `/validate` — validating, for the Istio kinds: the resource is refused with every error
 *    `sinew validate` would print (`error [SNW0104] spec.http[0]...: ...`), so a bad
 *    VirtualService never reaches the cluster. Warnings are returned as admission warnings.
 *
 * AdmissionReview v1 (admission.k8s.io/v1). A request the webhook cannot read gets a 400;
 * the body is bounded (the API server sends at most a few MiB: a Pod or a resource).
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatDiagnostic } from '../api/diagnostics.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { injectPod, injectionDecision, type InjectSettings } from './inject.js';
import { checkObject, workloadNameOf, type KubePod } from './objects.js';

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface WebhookOptions {
  port: number;
  host?: string;
  certPem: string;
  keyPem: string;
  inject: InjectSettings;
  /** A namespace's labels (the injector's selection rules read them). */
  namespaceLabels(name: string): Promise<Record<string, string> | undefined>;
  logger?: Logger;
}

export interface WebhookServer {
  address(): AddressInfo;
  /** Requests answered, by path (for tests and metrics). */
  readonly calls: Record<string, number>;
  close(): Promise<void>;
}

interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  namespace?: string;
  operation?: string;
  object?: Record<string, any>;
  dryRun?: boolean;
}

interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
}

/** The mutating answer for a Pod: a JSON patch adding the sidecar, or no change. */
export async function admitPod(request: AdmissionRequest, options: Pick<WebhookOptions, 'inject' | 'namespaceLabels'>): Promise<AdmissionResponse> {
  const pod = request.object ?? {};
  const namespace = request.namespace ?? pod.metadata?.namespace ?? 'default';
  const decision = injectionDecision(pod, { name: namespace, labels: (await options.namespaceLabels(namespace)) ?? {} });
  if (!decision.inject) return { uid: request.uid, allowed: true };
  const injected = injectPod(pod, options.inject, workloadNameOf({ ...pod, metadata: { ...pod.metadata, name: pod.metadata?.name ?? String(pod.metadata?.generateName ?? '').replace(/-$/, '') } } as KubePod));
  // Whole fields replaced ("add" replaces an existing member, RFC 6902 4.1).
  const patch = ['initContainers', 'containers', 'volumes']
    .filter((f) => injected.spec[f] !== undefined)
    .map((f) => ({ op: 'add', path: `/spec/${f}`, value: injected.spec[f] }));
  patch.push({ op: 'add', path: '/metadata/labels', value: injected.metadata.labels }, { op: 'add', path: '/metadata/annotations', value: injected.metadata.annotations });
  return { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
}

/** The validating answer for an Istio resource: refused with every error, warnings passed on. */
export function admitConfig(request: AdmissionRequest): AdmissionResponse {
  if (request.operation === 'DELETE' || !request.object) return { uid: request.uid, allowed: true };
  const checked = checkObject({ ...request.object, kind: request.kind?.kind ?? request.object.kind }, 'admission');
  const errors = checked.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic);
  const warnings = checked.diagnostics.filter((d) => d.level === 'warning').map(formatDiagnostic);
  if (errors.length === 0) return { uid: request.uid, allowed: true, ...(warnings.length ? { warnings } : {}) };
  return {
    uid: request.uid,
    allowed: false,
    status: { code: 400, reason: 'Invalid', message: `sinew refuses ${request.kind?.kind ?? 'this resource'}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n${errors.join('\n')}` },
    ...(warnings.length ? { warnings } : {}),
  };
}

export async function startWebhookServer(options: WebhookOptions): Promise<WebhookServer> {
  const logger = options.logger ?? silentLogger;
  const calls: Record<string, number> = {};
  const server = https.createServer({ cert: options.certPem, key: options.keyPem }, (req, res) => {
    handle(req, res).catch((err: Error) => {
      logger.error('webhook failed', { error: err.stack ?? err.message });
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'https://webhook').pathname;
    if (req.method === 'GET' && (path === '/ready' || path === '/healthz')) return send(res, 200, { ok: true });
    if (req.method !== 'POST' || (path !== '/inject' && path !== '/validate')) return send(res, 404, { error: 'POST an AdmissionReview to /inject or /validate' });
    let review: { apiVersion?: string; request?: AdmissionRequest };
    try {
      review = JSON.parse(await readBody(req));
    } catch (err) {
      return send(res, 400, { error: `not an AdmissionReview: ${(err as Error).message}` });
    }
    const request = review.request;
    if (!request || typeof request.uid !== 'string') return send(res, 400, { error: 'an AdmissionReview needs request.uid' });
    calls[path] = (calls[path] ?? 0) + 1;
    const response = path === '/inject' ? await admitPod(request, options) : admitConfig(request);
    send(res, 200, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    address: () => server.address() as AddressInfo,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > MAX_BODY_BYTES) {
        reject(new Error(`body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
