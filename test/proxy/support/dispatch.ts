/**
 * A request through any upstream dispatcher (an endpoint pool, the pending gate), with the
 * controller-style handler API the router uses: the tests' stand-in for undici's
 * `dispatcher.request()`, which only undici's own Dispatcher classes have.
 */
import type { Dispatcher } from 'undici';
import type { UpstreamDispatcher } from '../../../src/proxy/upstream/types.js';

export interface DispatchedResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function requestVia(dispatcher: UpstreamDispatcher, options: { path?: string; method?: string; headers?: Record<string, string>; body?: Buffer | null } = {}): Promise<DispatchedResponse> {
  return new Promise((resolve, reject) => {
    let statusCode = 0;
    let headers: DispatchedResponse['headers'] = {};
    const chunks: Buffer[] = [];
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(_c, status, h) {
        statusCode = status;
        headers = h as DispatchedResponse['headers'];
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        resolve({ statusCode, headers, body: Buffer.concat(chunks).toString() });
      },
      onResponseError(_c, err) {
        reject(err);
      },
    };
    dispatcher.dispatch({ path: options.path ?? '/', method: (options.method ?? 'GET') as Dispatcher.HttpMethod, headers: { host: 'upstream', ...options.headers }, body: options.body ?? null }, handler);
  });
}
