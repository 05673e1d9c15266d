/**
 * The runner's calls to the control plane's HTTP API (controlplane/daemon.ts, api.ts). Every
 * call goes through `request`, which adds the API token the control plane keeps in its state
 * directory (controlplane/credentials.ts): the runner is the mesh's operator.
 */
import type { ProxyNode } from '../api/proxy-config.js';
import type { MeshStatus, WorkloadRegistration } from '../api/mesh-status.js';
import type { Resource } from '../api/resources/meta.js';
import { manifestOf } from '../api/resources/index.js';
import { readApiTokenFile } from '../controlplane/credentials.js';
import { SinewError } from '../core/errors.js';

/** What `GET /api/v1/proxies` says about one proxy. */
export interface ProxyView {
  id: string;
  workload: string;
  namespace: string;
  versionSent?: string;
  versionAcked?: string;
  sync: string;
  lastNack?: string;
}

/** A resource as the config API lists it. */
export interface StoredResource {
  kind: string;
  metadata: { name: string; namespace?: string };
}

export class ControlPlaneClient {
  /** `http://host:port` of the API. */
  readonly base: string;

  private token: string | undefined;

  /**
   * @param credential the control plane's API token, or the file it is in (`<its state
   *   dir>/api-token`, which it writes at its first start and keeps across restarts; read at
   *   the first call that needs it). Without one, calls go without a credential.
   */
  constructor(
    apiAddress: string,
    private readonly credential?: { tokenFile: string } | { token: string },
  ) {
    this.base = `http://${apiAddress}`;
    if (credential && 'token' in credential) this.token = credential.token;
  }

  /** Every call of the runner to the control plane, with its credential (RFC 6750 bearer). */
  async request(path: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<Response> {
    const { timeoutMs = 10_000, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (this.credential !== undefined && path !== '/healthz') {
      this.token ??= await readApiTokenFile((this.credential as { tokenFile: string }).tokenFile);
      headers.set('authorization', `Bearer ${this.token}`);
    }
    return fetch(`${this.base}${path}`, { ...rest, headers, signal: rest.signal ?? AbortSignal.timeout(timeoutMs) });
  }

  /**
   * The push credential the control plane mints for one proxy node: bound to that node, so
   * the proxy that presents it gets that node's config and no other.
   */
  async proxyCredential(node: ProxyNode): Promise<string> {
    const res = await this.request('/api/v1/proxy-credentials', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node }) });
    const text = await res.text();
    if (res.status !== 200) throw new SinewError('SNW_ERR_PROXY_CREDENTIAL', `the control plane gave no credential for ${node.id} (${res.status}): ${text}`);
    return (JSON.parse(text) as { credential: string }).credential;
  }

  /** Whether the API answers its health check (false while it starts or is away). */
  async healthy(): Promise<boolean> {
    try {
      const res = await this.request('/healthz', { timeoutMs: 1000 });
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async status(): Promise<MeshStatus> {
    return (await this.json('/api/v1/status')) as MeshStatus;
  }

  async proxies(): Promise<ProxyView[]> {
    return (await this.json('/api/v1/proxies')) as ProxyView[];
  }

  /** Every resource in force. */
  async resources(): Promise<StoredResource[]> {
    return ((await this.json('/api/v1/resources')) as { items: StoredResource[] }).items;
  }

  /** Applies resources as one change (all or nothing). */
  async apply(resources: readonly Resource[]): Promise<void> {
    // As written (a Secret's type and data at the top level, not under spec); values not redacted.
    const body = resources.map((r) => JSON.stringify(manifestOf(r))).join('\n---\n');
    const res = await this.request('/api/v1/apply', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body, timeoutMs: 60_000 });
    if (res.status !== 200) throw new SinewError('SNW_ERR_APPLY', `the control plane refused the manifests: ${await res.text()}`);
    await res.arrayBuffer();
  }

  /** Creates or replaces a workload's (or gateway's) registration with every replica it lists. */
  async register(registration: WorkloadRegistration): Promise<void> {
    const res = await this.request(`/api/v1/registrations/${registration.kind}/${registration.namespace}/${registration.name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(registration) });
    const text = await res.text();
    if (res.status !== 200) throw new SinewError('SNW_ERR_REGISTER', `registration of ${registration.name} refused (${res.status}): ${text}`);
  }

  private async json(path: string): Promise<unknown> {
    const res = await this.request(path);
    const text = await res.text();
    if (res.status !== 200) throw new SinewError('SNW_ERR_CONTROL_PLANE', `the control plane answered ${res.status} to ${path}: ${text}`);
    return JSON.parse(text) as unknown;
  }
}
