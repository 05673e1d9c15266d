/**
 * The control plane's HTTP API port: what the CLI, the runner, the console and the proxies'
 * span exporters call. Every request passes the same gate, in this order:
 *
 *   1. Host and Origin (http-guard.ts)                       403
 *   2. /healthz and /ready answer here, without a credential (probes)
 *   3. a credential (credentials.ts)                          401, with WWW-Authenticate
 *   4. the credential's right to the route: proxies may only send spans, everything else is
 *      the operator's (the API token)                        403
 *   5. a body's media type (http-guard.ts)                    415
 *   6. the route, whose input is checked with its schema      400 with every problem
 *      (api-schemas.ts, or config's own for resources); bodies are read within their size
 *      limit and as strict UTF-8 (core/http-body.ts)        413, 400 with the byte offset
 *
 *   GET    /healthz, /ready                                    liveness (no credential)
 *   GET    /api/v1/status                                      the mesh (sinew status)
 *   GET    /api/v1/proxies                                     push state per proxy (sinew proxy-status)
 *   PUT    /api/v1/registrations/<workload|gateway>/<ns>/<name> a runner's replicas
 *   DELETE /api/v1/registrations/<workload|gateway>/<ns>/<name>
 *   POST   /api/v1/proxy-credentials   {node}                  a push credential for a proxy the runner starts
 *   POST   /v1/traces, /api/v2/spans                           the trace collector (traces.ts); proxies' credentials too
 *   GET    /api/v1/traces[/<id>], /api/v1/services             trace queries (traces.ts)
 *   ...    /api/v1/apply, delete, resources, history          the config API (api.ts)
 *
 * Registration needs the operator's credential, which only the runner that started the mesh
 * (and the person who ran it) can read: no other process can repoint a workload's endpoints.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MeshStatus, WorkloadRegistration } from '../api/mesh-status.js';
import { ClientGoneError, HttpBodyError, drainAfterRefusal, readJson } from '../core/http-body.js';
import type { Logger } from '../core/logger.js';
import type { ConfigStore } from '../config/store.js';
import type { TraceStore } from '../telemetry/trace-store.js';
import type { PushServer } from '../xds/server.js';
import { createConfigApiHandler, type ConfigApiOptions } from './api.js';
import { problemsOf, proxyCredentialRequestSchema, registrationBodySchema, namespaceSchema, nameSchema, type InputProblem } from './api-schemas.js';
import { bearerToken, type ControlPlaneCredentials, type Principal } from './credentials.js';
import { checkBodyType, checkHostAndOrigin } from './http-guard.js';
import { registrationKey, type Registrations } from './registrations.js';
import { createTraceApiHandler, isCollectorPath } from './traces.js';

export interface ControlPlaneApiOptions {
  credentials: ControlPlaneCredentials;
  store: ConfigStore;
  registrations: Registrations;
  push: PushServer;
  traces: TraceStore;
  status(): MeshStatus;
  /** Called after a registration changed (the daemon re-syncs the registry and pushes). */
  onRegistrationChanged(key: string): void;
  logger: Logger;
  /** Largest config body (default 16 MiB). */
  maxConfigBodyBytes?: number;
  /** The status shown with resources (the Gateway API's): see ConfigApiOptions.statusFor. */
  statusFor?: ConfigApiOptions['statusFor'];
  /** Warnings about the proxies' own machine added to an apply's: see ConfigApiOptions.localDiagnostics. */
  localDiagnostics?: ConfigApiOptions['localDiagnostics'];
  /** Tokens from elsewhere the trace collector takes (ControlPlaneOptions.authenticateCollectorToken). */
  authenticateCollectorToken?: (token: string) => Promise<string | undefined>;
}

/** The API's request handler; mount it for both `request` and `checkContinue` (core/http-body.ts). */
export interface ControlPlaneApi {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Tells the gate which Host values are this port's own, once it is bound (http-guard.ts ownAuthorities). */
  setOwnAuthorities(isOwn: (authority: string) => boolean): void;
  /**
   * The same routes for a caller another port has already let in as the operator: the web
   * console, which checks its own session cookie or bearer token and its own Host and Origin
   * (console/auth.ts) before it passes `/api/v1/*` here. Steps 1, 3 and 4 of the gate are
   * that port's; the rest apply as they do here.
   */
  asOperator(req: IncomingMessage, res: ServerResponse): void;
}

/** A refusal with a status and a JSON body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const REGISTRATION_BODY_BYTES = 1024 * 1024;
const CREDENTIAL_BODY_BYTES = 64 * 1024;
const REGISTRATION_PATH = /^\/api\/v1\/registrations\/([^/]+)\/([^/]+)\/([^/]+)$/;

/** Throws a 400 with every problem when `result` is a failed parse. */
function parsed<T>(what: string, result: { success: true; data: T } | { success: false; error: import('zod').ZodError }): T {
  if (result.success) return result.data;
  const problems: InputProblem[] = problemsOf(result.error);
  throw new ApiError(400, `invalid ${what}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
}

export function createControlPlaneApi(options: ControlPlaneApiOptions): ControlPlaneApi {
  const { credentials, registrations, push, logger } = options;
  const configApi = createConfigApiHandler({ store: options.store, logger: logger.child('config'), maxBodyBytes: options.maxConfigBodyBytes, statusFor: options.statusFor, localDiagnostics: options.localDiagnostics });
  const traceApi = createTraceApiHandler(options.traces);
  let isOwn: (authority: string) => boolean = () => false;

  const operatorRoutes = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const path = url.pathname;
    if (path === '/api/v1/status' && req.method === 'GET') return sendJson(res, 200, options.status()), true;
    if (path === '/api/v1/proxies' && req.method === 'GET') {
      const proxies = push.status().map((p) => ({ id: p.node.id, workload: p.node.workload, namespace: p.node.namespace, versionSent: p.sentVersion, versionAcked: p.ackedVersion, sync: p.state, lastNack: p.lastNack?.reason }));
      sendJson(res, 200, proxies);
      return true;
    }
    if (path === '/api/v1/proxy-credentials' && req.method === 'POST') {
      const { node } = parsed('credential request', proxyCredentialRequestSchema.safeParse(await readJson(req, res, { maxBytes: CREDENTIAL_BODY_BYTES })));
      sendJson(res, 200, { nodeId: node.id, credential: credentials.mintProxyCredential(node) });
      return true;
    }
    const reg = REGISTRATION_PATH.exec(path);
    if (reg) {
      if (req.method !== 'PUT' && req.method !== 'DELETE') throw new ApiError(405, `${path} accepts PUT and DELETE`, {}, { allow: 'PUT, DELETE' });
      const [kind, namespace, name] = reg.slice(1).map((p) => decodeURIComponent(p)) as [string, string, string];
      if (kind !== 'workload' && kind !== 'gateway') throw new ApiError(404, `no registrations of kind "${kind}"; use workload or gateway`);
      parsed('namespace in the path', namespaceSchema.safeParse(namespace));
      parsed('name in the path', nameSchema.safeParse(name));
      const key = registrationKey({ kind, namespace, name });
      if (req.method === 'DELETE') {
        const { existed, saved } = registrations.delete(key);
        if (existed) options.onRegistrationChanged(key);
        await saved;
        sendJson(res, 200, { ok: true, deleted: existed });
        return true;
      }
      const body = parsed('registration', registrationBodySchema.safeParse(await readJson(req, res, { maxBytes: REGISTRATION_BODY_BYTES })));
      for (const [field, inPath] of [['kind', kind], ['namespace', namespace], ['name', name]] as const) {
        if (body[field] !== undefined && body[field] !== inPath) throw new ApiError(400, `the body's ${field} "${body[field]}" is not the path's "${inPath}"`);
      }
      const registration: WorkloadRegistration = { ...body, kind, namespace, name };
      // Pushed at once; answered once it is on disk too.
      const saved = registrations.set(registration);
      options.onRegistrationChanged(key);
      await saved;
      sendJson(res, 200, { ok: true });
      return true;
    }
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, gatedElsewhere: boolean): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://control-plane');
    const hostOrOrigin = gatedElsewhere ? undefined : checkHostAndOrigin(req, isOwn);
    if (hostOrOrigin) throw new ApiError(hostOrOrigin.status, hostOrOrigin.message);
    if ((url.pathname === '/healthz' || url.pathname === '/ready') && (req.method === 'GET' || req.method === 'HEAD')) {
      // The pid lets a supervisor tell a restarted control plane from the one it started.
      sendJson(res, 200, { ok: true, pid: process.pid });
      return;
    }
    const collector = isCollectorPath(url.pathname);
    let principal: Principal | undefined = gatedElsewhere ? { kind: 'operator' } : credentials.authenticate(req);
    if (!principal && collector && options.authenticateCollectorToken) {
      // A proxy in a pod sends its service-account token, which only the API server can vouch for.
      const token = bearerToken(req);
      const who = token === undefined ? undefined : await options.authenticateCollectorToken(token);
      if (who !== undefined) principal = { kind: 'proxy', nodeId: who };
    }
    if (!principal) {
      const presented = req.headers.authorization !== undefined;
      throw new ApiError(
        401,
        presented
          ? 'the credential is not valid for this control plane (a restarted mesh has a new token); use the API token from its state directory'
          : 'this control plane needs a credential: send "Authorization: Bearer <token>" with the API token from its state directory (<state dir>/control-plane/api-token; the sinew CLI finds it, or pass --token)',
        {},
        { 'www-authenticate': `Bearer realm="sinew", error="${presented ? 'invalid_token' : 'invalid_request'}"` },
      );
    }
    if (!collector && principal.kind !== 'operator') throw forbidden(principal, url.pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const refused = checkBodyType(req, collector ? ['application/json'] : undefined);
      if (refused) throw new ApiError(refused.status, refused.message);
    }
    if (traceApi(req, res, url)) return;
    if (await operatorRoutes(req, res, url)) return;
    configApi(req, res);
  };

  const serve = (req: IncomingMessage, res: ServerResponse, gatedElsewhere: boolean): void => {
    handle(req, res, gatedElsewhere).catch((err: unknown) => {
      if (err instanceof ClientGoneError) return;
      if (err instanceof HttpBodyError) {
        sendJson(res, err.status, { error: err.message, ...err.detail });
      } else if (err instanceof ApiError) {
        sendJson(res, err.status, { error: err.message, ...err.extra }, err.headers);
      } else {
        logger.error('API failure', { path: req.url, error: (err as Error).message });
        sendJson(res, 500, { error: `internal error: ${(err as Error).message}` });
      }
      // A refusal may come before the body was read (or while it still arrives).
      drainAfterRefusal(req);
    });
  };
  const api = ((req: IncomingMessage, res: ServerResponse) => serve(req, res, false)) as ControlPlaneApi;
  api.asOperator = (req, res) => serve(req, res, true);
  api.setOwnAuthorities = (fn) => {
    isOwn = fn;
  };
  return api;
}

function forbidden(principal: Principal, path: string): ApiError {
  return new ApiError(403, `${principal.kind === 'proxy' ? `proxy ${principal.nodeId}` : 'this credential'} may only send spans, not call ${path}`);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
