/**
 * Request mirroring (Envoy's shadow policy, Istio's `mirror`/`mirrors`): fire-and-forget copies
 * whose Host gets `-shadow` appended to the host name; the response is dropped and failures
 * are ignored. Only bodies that can be sent again (absent or buffered) are mirrored.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { MirrorPolicy } from '../../../api/proxy-config.js';
import type { UpstreamLease, UpstreamOutcome } from '../../upstream/types.js';
import type { HeaderBag } from '../headers.js';
import type { RouterStream } from './types.js';

export interface ShadowRequest {
  readonly path: string;
  readonly authority: string;
  readonly body: Buffer | null;
  readonly hash: number | undefined;
  /** The route timeout, which bounds a shadow too (60 s without one). */
  readonly timeoutMs: number;
}

/** Sends the copies each mirror policy draws. */
export function shadowRequest(s: RouterStream, mirrors: readonly MirrorPolicy[], r: ShadowRequest): void {
  const rt = s.runtime;
  for (const m of mirrors) {
    if (m.percentage <= 0 || (m.percentage < 100 && rt.random.next() * 100 >= m.percentage)) continue;
    const cluster = rt.clusterManager.get(m.cluster);
    if (!cluster) { rt.stats.inc('mirror_no_cluster'); continue; }
    const picked = cluster.acquire({ hash: r.hash });
    if (!picked.ok) { rt.stats.inc('mirror_no_endpoint'); continue; }
    rt.stats.inc('mirror_requests');
    const headers: HeaderBag = { ...s.headers, host: shadowHost(r.authority) };
    delete headers['x-envoy-attempt-count'];
    const limit = r.timeoutMs || 60_000;
    picked.lease.dispatcher.dispatch(
      { path: r.path, method: s.method as Dispatcher.HttpMethod, headers: headers as IncomingHttpHeaders, proxyHeaderLines: s.proxyHeaderLines, body: r.body, headersTimeout: limit, bodyTimeout: limit },
      new ShadowHandler(picked.lease),
    );
  }
}

/** Drops the shadow's response; tells the cluster how it went (outlier detection, counts). */
class ShadowHandler implements Dispatcher.DispatchHandler {
  private status?: number;
  private done = false;

  constructor(private readonly lease: UpstreamLease) {}

  onRequestStart(): void {}

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    this.finish({ status: this.status });
  }

  onResponseError(): void {
    this.finish(this.status !== undefined ? { status: this.status, failure: 'reset' } : { failure: 'connect-failure' });
  }

  private finish(outcome: UpstreamOutcome): void {
    if (this.done) return;
    this.done = true;
    this.lease.release(outcome);
  }
}

/** `reviews:9080` -> `reviews-shadow:9080` (Envoy appends the suffix to the host, before the port). */
export function shadowHost(authority: string): string {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && !authority.endsWith(']') && /^\d+$/.test(authority.slice(colon + 1))) {
    return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  }
  return `${authority}-shadow`;
}
