/**
 * How commands find and talk to a running mesh. `sinew up` writes `<state dir>/mesh.json`
 * with the control plane's addresses; commands read it, unless `--server` or SINEW_SERVER
 * names the control plane directly (a remote or Kubernetes-hosted one).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SinewError } from '../core/errors.js';

export const DEFAULT_STATE_DIR = '.sinew';

export interface MeshFile {
  pid: number;
  startedAt: string;
  controlPlane: { api: string; push: string; monitoring?: string };
}

export function stateDir(explicit?: string): string {
  return resolve(explicit ?? process.env.SINEW_STATE_DIR ?? DEFAULT_STATE_DIR);
}

export async function readMeshFile(dir: string): Promise<MeshFile | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'mesh.json'), 'utf8')) as MeshFile;
  } catch {
    return undefined;
  }
}

/** The control plane's base URL, e.g. `http://127.0.0.1:15080`. */
export async function controlPlaneUrl(options: { server?: string; stateDir?: string }): Promise<string> {
  const explicit = options.server ?? process.env.SINEW_SERVER;
  if (explicit) return explicit.includes('://') ? explicit.replace(/\/$/, '') : `http://${explicit}`;
  const dir = stateDir(options.stateDir);
  const mesh = await readMeshFile(dir);
  if (!mesh) {
    throw new SinewError(
      'SNW_ERR_NO_MESH',
      `no running mesh found (no ${join(dir, 'mesh.json')}); start one with "sinew up", or point at a control plane with --server host:port`,
    );
  }
  return `http://${mesh.controlPlane.api}`;
}

/** Calls the control plane; turns connection failures into an error that says what to do. */
export async function callControlPlane(base: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, init);
  } catch (err) {
    throw new SinewError('SNW_ERR_CONTROL_PLANE_DOWN', `cannot reach the control plane at ${base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}; is "sinew up" running?`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body };
}
