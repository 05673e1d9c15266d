/**
 * The console's calls to its control plane: same origin, the session cookie rides along
 * (the server set it from the login link), JSON in and out. Writes go to the control plane's
 * config API (`/api/v1/apply`, `/api/v1/delete`), the path `sinew apply` takes.
 */
import type { Diagnostic } from '../api/diagnostics.js';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly diagnostics: Diagnostic[] = []) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: string, contentType = 'application/json', headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(path, { method, body, credentials: 'same-origin', headers: body === undefined ? headers : { 'content-type': contentType, ...headers } });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  if (!res.ok) {
    const p = parsed as { error?: string; diagnostics?: Diagnostic[] };
    throw new ApiError(res.status, p?.error ?? `${res.status} ${res.statusText}`, p?.diagnostics ?? []);
  }
  return parsed as T;
}

export const getJson = <T>(path: string) => call<T>('GET', path);
export const postJson = <T>(path: string, body: unknown) => call<T>('POST', path, JSON.stringify(body));
export const postText = <T>(path: string, text: string) => call<T>('POST', path, text, 'application/yaml');

export interface ApplyResult {
  revision: number;
  resources: { kind: string; namespace?: string; name: string; result: string }[];
  diagnostics: Diagnostic[];
}

/** `sinew apply` over HTTP: all or nothing; a refusal throws with every diagnostic. */
/** Diagnostics of what the console applies name this file, as `sinew validate` names the file it read. */
export const CONSOLE_SOURCE = '<console>';

export const applyYaml = (yaml: string) => call<ApplyResult>('POST', '/api/v1/apply', yaml, 'application/yaml', { 'x-sinew-source': CONSOLE_SOURCE });
export const deleteYaml = (yaml: string) => call<{ revision: number; resources: { kind: string; name: string; result: string }[] }>('POST', '/api/v1/delete', yaml, 'application/yaml');

export const consoleApi = (path: string) => `/console/api/v1/${path}`;
