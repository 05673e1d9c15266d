/**
 * The CA's coded errors (STYLE.md 6). Each message says what went wrong and what to do; an
 * error about a set of files lists every problem found, not only the first.
 */
import { SinewError } from '../core/errors.js';

export type CaErrorCode =
  /** The CA directory holds no CA yet (`sinew ca init`). */
  | 'SNW_ERR_CA_NOT_INITIALIZED'
  /** `sinew ca init` on a directory that already holds a CA. */
  | 'SNW_ERR_CA_EXISTS'
  /** Plug-in certificates (Istio's `cacerts`) that Istio would refuse too. */
  | 'SNW_ERR_CA_PLUGIN_CERTS'
  /** The CA's own files are missing, unreadable or not owner-only. */
  | 'SNW_ERR_CA_STATE'
  /** Another process holds the CA directory's lock for too long. */
  | 'SNW_ERR_CA_LOCKED'
  /** A CSR that cannot be read, is not signed by its key, or has a key the CA does not accept. */
  | 'SNW_ERR_CA_BAD_CSR'
  /** An identity or trust domain that cannot be a SPIFFE ID. */
  | 'SNW_ERR_CA_BAD_IDENTITY'
  /** A requested lifetime the CA does not grant. */
  | 'SNW_ERR_CA_BAD_TTL'
  /** Issuance refused: the identity, or the certificate the caller held, is revoked. */
  | 'SNW_ERR_CA_REVOKED'
  /** The signing certificate is no longer valid, so nothing it signs would verify. */
  | 'SNW_ERR_CA_EXPIRED'
  /** `sinew ca revoke` of something the CA never issued, or a malformed target. */
  | 'SNW_ERR_CA_REVOKE_TARGET'
  /** A root rotation step that does not fit the CA's state. */
  | 'SNW_ERR_CA_ROTATION';

export class CaError extends SinewError {
  override readonly code: CaErrorCode;
  /** Every problem found, when there were several (also in the message, one per line). */
  readonly problems: readonly string[];

  constructor(code: CaErrorCode, message: string, problems: readonly string[] = [], options?: { cause?: unknown }) {
    super(code, problems.length ? `${message}\n${problems.map((p) => `  - ${p}`).join('\n')}` : message, options);
    this.name = 'CaError';
    this.code = code;
    this.problems = problems;
  }
}
