/**
 * Coded errors of the proxy (STYLE.md 6). A config the proxy cannot use is refused when it is
 * applied, never on the first request (STYLE.md 3, Envoy's config.cc pattern): `apply` throws a
 * ProxyConfigError listing every problem found, and the proxy keeps serving its last good config.
 */
import { SinewError } from '../core/errors.js';

export const ProxyErrorCode = {
  /** The ProxyConfig is inconsistent or uses something the proxy does not support. */
  InvalidConfig: 'SNW_ERR_PROXY_INVALID_CONFIG',
  /** A listener could not bind its address. */
  ListenFailed: 'SNW_ERR_PROXY_LISTEN_FAILED',
  /** The proxy was used after close(). */
  Closed: 'SNW_ERR_PROXY_CLOSED',
  /** The config file given to `sinew proxy` could not be read. */
  ConfigFile: 'SNW_ERR_PROXY_CONFIG_FILE',
  /** Transparent capture cannot run here (no original-destination addon). */
  Capture: 'SNW_ERR_PROXY_CAPTURE',
} as const;

export class ProxyConfigError extends SinewError {
  /** Every problem found, each prefixed with the path of the offending field. */
  readonly problems: readonly string[];

  constructor(version: string, problems: readonly string[]) {
    super(
      ProxyErrorCode.InvalidConfig,
      `config version ${JSON.stringify(version)} rejected (the previous config stays in force): ${problems.join('; ')}`,
    );
    this.name = 'ProxyConfigError';
    this.problems = problems;
  }
}

export class ProxyError extends SinewError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProxyError';
  }
}
