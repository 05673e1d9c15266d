/**
 * Calling a control plane started in a test as its operator (with its API token) and
 * connecting push clients to it as the proxies a runner would start (with a push credential
 * minted for each), as `sinew up` does.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyNode } from '../../src/api/proxy-config.js';
import type { ControlPlane } from '../../src/controlplane/daemon.js';
import { PushClient, type PushClientOptions } from '../../src/xds/client.js';

/** The control plane's API, called with its API token. */
export class OperatorApi {
  constructor(private readonly cp: ControlPlane) {}

  get base(): string {
    return `http://${this.cp.addresses.api}`;
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.cp.credentials.apiToken}`);
    return fetch(`${this.base}${path}`, { ...init, headers });
  }

  /** POST /api/v1/apply with a YAML (or JSON) body. */
  apply(yaml: string): Promise<Response> {
    return this.fetch('/api/v1/apply', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
  }

  /** PUT a workload (or gateway) registration. */
  register(registration: { kind: string; namespace: string; name: string }): Promise<Response> {
    return this.fetch(`/api/v1/registrations/${registration.kind}/${registration.namespace}/${registration.name}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(registration),
    });
  }

  async json<T>(path: string): Promise<T> {
    const res = await this.fetch(path);
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  }
}

/** A push client for `node` holding the credential the control plane mints for it. */
export function proxyClient(cp: ControlPlane, node: ProxyNode, options: Partial<PushClientOptions> = {}): PushClient {
  const [host, port] = cp.addresses.push.split(':');
  return new PushClient({ host: host!, port: Number(port), node, credential: cp.credentials.mintProxyCredential(node), apply: () => undefined, backoff: { initialMs: 5 }, ...options });
}

/** Resolves with `promise`, or rejects naming `what` after `ms` (so a regression fails instead of hanging). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Makes `stateDir` name `cp` as `sinew up` does (mesh.json, with the API token in an
 * owner-only file beside it), so CLI commands run with `--state-dir` find and call it.
 */
export function writeMeshState(cp: ControlPlane, stateDir: string): void {
  const tokenFile = join(stateDir, 'api-token');
  writeFileSync(tokenFile, cp.credentials.apiToken + '\n', { mode: 0o600 });
  writeFileSync(join(stateDir, 'mesh.json'), JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), controlPlane: { ...cp.addresses, tokenFile } }));
}
