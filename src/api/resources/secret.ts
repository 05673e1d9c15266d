/**
 * Kubernetes Secrets (core v1), as Istio reads gateway credentials from them
 * (pilot/pkg/credentials/kube/secrets.go): `kubernetes.io/tls` Secrets with `tls.crt`,
 * `tls.key` and optionally `ca.crt`, and generic (Opaque) Secrets with `cert`, `key` and
 * `cacert`, or only `cacert` (the `<name>-cacert` Secret of a MUTUAL server). Values in `data`
 * are base64, in `stringData` plain text, as the API server takes them.
 *
 * A Secret's content is not under `spec`: `type`, `data`, `stringData` and `immutable` sit at
 * the top level. Sinew keeps them as the resource's spec and writes them back where they were
 * (`manifestOf`), with the values redacted wherever the resource is shown (`redactSecret`).
 */
import { z } from 'zod';

export const SECRET_TOP_LEVEL_FIELDS = ['type', 'data', 'stringData', 'immutable'] as const;

/** Istio's key names (credentials/kube/secrets.go). */
export const TLS_SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;
export const GENERIC_SECRET_KEYS = { cert: 'cert', key: 'key', ca: 'cacert' } as const;
/** Istio's suffix of the Secret that holds a MUTUAL server's CA when the server's own Secret does not. */
export const CA_SECRET_SUFFIX = '-cacert';

export const secretSpecSchema = z.strictObject({
  type: z.string().optional(),
  data: z.record(z.string(), z.string()).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
  immutable: z.boolean().optional(),
});
export type SecretSpec = z.infer<typeof secretSpecSchema>;

/** What a redacted value reads: the number of bytes it had, never the bytes. */
export const REDACTED_PREFIX = '<redacted';

/** A redacted stand-in for one value: `<redacted: 1234 bytes>`. */
export function redactedValue(bytes: number): string {
  return `${REDACTED_PREFIX}: ${bytes} bytes>`;
}

/** Whether a value is a stand-in written by `redactedValue` (applying it back would lose the secret). */
export function isRedactedValue(value: string): boolean {
  return value.startsWith(REDACTED_PREFIX);
}

/** The decoded bytes of every key of a Secret: `data` (base64) with `stringData` over it, as the API server merges them. */
export function secretValues(spec: SecretSpec): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(spec.data ?? {})) out.set(k, Buffer.from(v, 'base64'));
  for (const [k, v] of Object.entries(spec.stringData ?? {})) out.set(k, Buffer.from(v, 'utf8'));
  return out;
}

/** The spec with every value replaced by its redacted stand-in (keys and type are kept). */
export function redactSecret(spec: SecretSpec): SecretSpec {
  const data: Record<string, string> = {};
  for (const [k, v] of secretValues(spec)) data[k] = redactedValue(v.length);
  return { ...(spec.type !== undefined ? { type: spec.type } : {}), ...(Object.keys(data).length ? { data } : {}), ...(spec.immutable !== undefined ? { immutable: spec.immutable } : {}) };
}
