/**
 * Proxies in pods prove who they are with their projected service-account token, as Istio's
 * do: the injector mounts a token for the audience `istio-ca` at
 * `/var/run/secrets/tokens/istio-token` (defaults.ts), the proxy presents it in the push HELLO
 * (`sinew proxy --token-file`), and the control plane asks the API server who it belongs to
 * with a TokenReview (`authentication.k8s.io/v1`, the audience in `spec.audiences`), as
 * istiod's KubeJWTAuthenticator does (security/pkg/server/ca/authenticate/kubeauth).
 *
 * A HELLO is accepted only when the token's user is `system:serviceaccount:<namespace>:<name>`
 * with the namespace and service account the node names (Istio checks the same of an xDS
 * connection: pilot/pkg/xds/authentication.go), and, for a token bound to a pod (the API
 * server then reports `authentication.kubernetes.io/pod-name` in the user's extra), when that
 * pod is the one the node id names (`sidecar~<pod>.<namespace>`). The API server itself checks
 * the signature, the expiry, the audience, and that the service account (and the bound pod)
 * still exist with the UIDs the token names.
 *
 * Reviews are cached briefly (a fleet of proxies reconnecting after a control-plane restart
 * would otherwise send the API server one review each time), never past the token's own
 * expiry, and a review that failed to reach the API server is not cached. Reviews of one
 * token in flight at once are made once.
 */
import { createHash } from 'node:crypto';
import type { ProxyNode } from '../api/proxy-config.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { KubeClient } from './api.js';
import { PROXY_TOKEN_AUDIENCE, PROXY_TOKEN_PATH } from './defaults.js';

/** What the API server said of a token. */
export type TokenReviewResult = { authenticated: true; username: string; extra: Record<string, string[]> } | { authenticated: false; error: string };

export interface TokenReviewerOptions {
  client: KubeClient;
  /** The audiences the token must carry (default Istio's `istio-ca`). */
  audiences?: readonly string[];
  clock?: Clock;
  logger?: Logger;
  /** How long an answer is reused (default 60 s; a refusal 10 s). */
  cacheTtlMs?: number;
  refusalTtlMs?: number;
  /** Most answers kept (default 10 000); the oldest go first. */
  maxCached?: number;
  /** How long a review may take before the HELLO is refused (default 10 s). */
  timeoutMs?: number;
}

interface Cached {
  result: TokenReviewResult;
  until: number;
}

/** Pod-binding info in a reviewed user's extra (k8s.io/apiserver/pkg/authentication/serviceaccount). */
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

export class TokenReviewer {
  readonly #client: KubeClient;
  readonly #audiences: readonly string[];
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #refusalTtlMs: number;
  readonly #maxCached: number;
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, Cached>();
  readonly #inFlight = new Map<string, Promise<TokenReviewResult>>();
  /** TokenReviews sent to the API server. */
  reviews = 0;

  constructor(options: TokenReviewerOptions) {
    this.#client = options.client;
    this.#audiences = options.audiences ?? [PROXY_TOKEN_AUDIENCE];
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#ttlMs = options.cacheTtlMs ?? 60_000;
    this.#refusalTtlMs = options.refusalTtlMs ?? 10_000;
    this.#maxCached = options.maxCached ?? 10_000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Who the API server says `token` belongs to (cached; see the file comment). */
  async review(token: string): Promise<TokenReviewResult> {
    // Keyed by a digest: the cache holds no live credential.
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.#clock.now();
    const cached = this.#cache.get(key);
    if (cached && cached.until > now) return cached.result;
    if (cached) this.#cache.delete(key);
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const review = this.#send(token).then(
      (result) => {
        const ttl = result.authenticated ? Math.min(this.#ttlMs, expiresInMs(token, this.#clock.now())) : this.#refusalTtlMs;
        if (ttl > 0) this.#remember(key, { result, until: this.#clock.now() + ttl });
        return result;
      },
      (err: Error): TokenReviewResult => {
        // The API server could not be asked: refused now, asked again on the next HELLO.
        this.#logger.warn('a TokenReview failed; the proxy is refused until the API server answers', { error: err.message });
        return { authenticated: false, error: `the control plane could not review the token with the API server: ${err.message}` };
      },
    );
    this.#inFlight.set(key, review);
    try {
      return await review;
    } finally {
      this.#inFlight.delete(key);
    }
  }

  /**
   * The service account a token belongs to (`system:serviceaccount:<ns>:<sa>`), or undefined
   * when the API server does not vouch for it or it is not a service account's. For the trace
   * collector, which takes spans from any proxy of the mesh.
   */
  async serviceAccountOf(token: string): Promise<string | undefined> {
    const result = await this.review(token);
    return result.authenticated && SERVICE_ACCOUNT_USER.test(result.username) ? result.username : undefined;
  }

  /**
   * Checks a HELLO: undefined when `token` is a service-account token of the namespace and
   * service account the node names (and of its pod, when the token is bound to one), else why
   * not. For the push server's `authenticate`.
   */
  async authenticate(node: ProxyNode, token: string | undefined): Promise<string | undefined> {
    if (token === undefined || token === '') {
      return `no credential: a proxy in a pod presents its service-account token for the audience ${this.#audiences.join(', ')} (sinew proxy --token-file ${PROXY_TOKEN_PATH})`;
    }
    const result = await this.review(token);
    if (!result.authenticated) return `the API server did not accept the token: ${result.error}`;
    const account = SERVICE_ACCOUNT_USER.exec(result.username);
    if (!account) return `the token belongs to ${result.username}, not to a service account`;
    const [, namespace, serviceAccount] = account as unknown as [string, string, string];
    const named = `system:serviceaccount:${node.namespace}:${node.serviceAccount ?? '(none)'}`;
    if (namespace !== node.namespace || serviceAccount !== node.serviceAccount) {
      return `the token belongs to ${result.username}, but the proxy names ${named}`;
    }
    const pod = result.extra[POD_NAME_EXTRA]?.[0];
    if (pod !== undefined) {
      const idPod = node.id.slice(node.id.indexOf('~') + 1);
      if (idPod !== `${pod}.${namespace}`) return `the token is bound to pod ${namespace}/${pod}, but the proxy is ${node.id}`;
    }
    return undefined;
  }

  async #send(token: string): Promise<TokenReviewResult> {
    this.reviews++;
    const answer = await this.#client.request<{ status?: { authenticated?: boolean; error?: string; user?: { username?: string; extra?: Record<string, string[]> } } }>(
      'POST',
      '/apis/authentication.k8s.io/v1/tokenreviews',
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: this.#audiences } }, timeoutMs: this.#timeoutMs },
    );
    const status = answer?.status ?? {};
    if (!status.authenticated) return { authenticated: false, error: status.error || 'not authenticated' };
    return { authenticated: true, username: status.user?.username ?? '', extra: status.user?.extra ?? {} };
  }

  #remember(key: string, entry: Cached): void {
    if (this.#cache.size >= this.#maxCached) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(key, entry);
  }
}

/**
 * How long until a JWT's `exp` (RFC 7519 §4.1.4), read without checking the signature: only to
 * keep a cached answer from outliving the token (the API server checked the signature). A token
 * without a readable `exp` is cached for the usual time.
 */
function expiresInMs(token: string, now: number): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 - now : Infinity;
  } catch {
    return Infinity;
  }
}
