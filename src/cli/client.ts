/**
 * How commands find and talk to a running mesh. `sinew up` writes `<state dir>/mesh.json`
 * with the control plane's addresses and where its API token is; commands read both, unless
 * `--server` or SINEW_SERVER names the control plane directly (a remote or Kubernetes-hosted
 * one), when the token comes from `--token` or SINEW_TOKEN.
 *
 * The token goes as `Authorization: Bearer <token>` (RFC 6750) on every call. A local mesh's
 * token is never sent to a `--server` given by hand: that server may be someone else's.
 */
import { join, resolve } from 'node:path';
import { API_TOKEN_FILE, readApiTokenFile } from '../controlplane/credentials.js';
import { SinewError } from '../core/errors.js';
import { readMeshFile } from '../mesh/state.js';

export const DEFAULT_STATE_DIR = '.sinew';

/** How a command names the control plane: `--server`, `--state-dir`, `--token`. */
export interface ConnectOptions {
  server?: string;
  stateDir?: string;
  token?: string;
}

/** A control plane to call, and the credential to call it with. */
export interface ControlPlaneConnection {
  /** e.g. `http://127.0.0.1:15080` */
  base: string;
  token?: string;
  /** Where the token came from, for error messages. */
  tokenSource: string;
}

export function stateDir(explicit?: string): string {
  return resolve(explicit ?? process.env.SINEW_STATE_DIR ?? DEFAULT_STATE_DIR);
}

/** Finds the control plane and its token (see the file comment). */
export async function connectControlPlane(options: ConnectOptions): Promise<ControlPlaneConnection> {
  const token = options.token ?? (process.env.SINEW_TOKEN || undefined);
  const tokenSource = options.token !== undefined ? '--token' : 'SINEW_TOKEN';
  const explicit = options.server ?? process.env.SINEW_SERVER;
  if (explicit) {
    const base = explicit.includes('://') ? explicit.replace(/\/$/, '') : `http://${explicit}`;
    return { base, token, tokenSource: token === undefined ? 'none (pass --token or set SINEW_TOKEN)' : tokenSource };
  }
  const dir = stateDir(options.stateDir);
  const mesh = readMeshFile(dir);
  if (!mesh) {
    throw new SinewError(
      'SNW_ERR_NO_MESH',
      `no running mesh found (no ${join(dir, 'mesh.json')}); start one with "sinew up", or point at a control plane with --server host:port`,
    );
  }
  const base = `http://${mesh.controlPlane.api}`;
  if (token !== undefined) return { base, token, tokenSource };
  const file = mesh.controlPlane.tokenFile ?? join(dir, 'control-plane', API_TOKEN_FILE);
  return { base, token: await readApiTokenFile(file), tokenSource: file };
}

/**
 * Calls the control plane with the connection's token; turns connection failures and
 * refused credentials into errors that say what to do.
 */
export async function callControlPlane(cp: ControlPlaneConnection, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const headers = new Headers(init.headers);
  if (cp.token !== undefined) headers.set('authorization', `Bearer ${cp.token}`);
  let res: Response;
  try {
    res = await fetch(`${cp.base}${path}`, { ...init, headers });
  } catch (err) {
    throw new SinewError('SNW_ERR_CONTROL_PLANE_DOWN', `cannot reach the control plane at ${cp.base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}; is "sinew up" running?`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  if (res.status === 401 || res.status === 403) {
    const said = (body as { error?: string } | undefined)?.error ?? text;
    const hint =
      res.status === 401
        ? cp.token === undefined
          ? 'pass the API token with --token or SINEW_TOKEN (it is in the control plane\'s state directory, file api-token)'
          : `the token from ${cp.tokenSource} was refused; a mesh started again has a new one`
        : 'the control plane refused this request';
    throw new SinewError('SNW_ERR_UNAUTHORIZED', `${cp.base} answered ${res.status}: ${said}\n  ${hint}`);
  }
  return { status: res.status, body };
}
