/**
 * Talking to the Kubernetes API server: the credentials come from a kubeconfig file or, inside
 * a pod, the service account (client-node's KubeConfig does both, with every auth method
 * kubectl knows); requests are plain JSON over node's https with those credentials. The
 * informers (informer.ts) use client-node's own list-watch machinery on the same KubeConfig.
 */
import https from 'node:https';
import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { SinewError } from '../core/errors.js';

export interface KubeConfigOptions {
  /** A kubeconfig file; default: in-cluster when running in a pod, else $KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  context?: string;
}

/** Loads credentials the way kubectl does (and, in a pod, from its service account). */
export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else if (process.env.KUBERNETES_SERVICE_HOST && !process.env.KUBECONFIG) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (err) {
    throw new SinewError('SNW_ERR_KUBECONFIG', `cannot read the kubeconfig${options.kubeconfig ? ` ${options.kubeconfig}` : ''}: ${(err as Error).message}`, { cause: err });
  }
  if (options.context) kc.setCurrentContext(options.context);
  if (!kc.getCurrentCluster()) {
    throw new SinewError('SNW_ERR_KUBECONFIG', 'no Kubernetes cluster is configured: pass --kubeconfig <file>, set KUBECONFIG, or run inside a pod');
  }
  return kc;
}

/** A failed API call, with the server's HTTP status and its Status message. */
export class KubeApiError extends SinewError {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly body?: unknown,
  ) {
    super('SNW_ERR_KUBE_API', message);
    this.name = 'KubeApiError';
  }
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Default application/json; patches name theirs (merge-patch+json, json-patch+json, apply-patch+yaml). */
  contentType?: string;
  timeoutMs?: number;
}

/** A minimal JSON client for the API server (the paths are Kubernetes' REST paths). */
export class KubeClient {
  readonly server: string;

  constructor(readonly config: KubeConfig) {
    this.server = config.getCurrentCluster()!.server;
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const requestOptions: https.RequestOptions = {
      method,
      headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': options.contentType ?? 'application/json' } : {}) },
    };
    await this.config.applyToHTTPSOptions(requestOptions);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise<T>((resolve, reject) => {
      const req = transport.request(url, requestOptions, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: keep the text
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(parsed as T);
          const s = parsed as { message?: string; reason?: string } | undefined;
          reject(new KubeApiError(status, s?.reason ?? String(status), `${method} ${path}: ${status} ${s?.message ?? text.slice(0, 300)}`, parsed));
        });
      });
      req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path}: no answer in ${options.timeoutMs ?? 30_000} ms`)));
      req.on('error', (err) => reject(err instanceof SinewError ? err : new SinewError('SNW_ERR_KUBE_UNREACHABLE', `${method} ${this.server}${path}: ${err.message}`, { cause: err })));
      req.end(body);
    });
  }

  get<T = unknown>(path: string, query?: Record<string, string | undefined>): Promise<T> {
    return this.request<T>('GET', path, { query });
  }
}
