/**
 * Secrets: the API server's rules (keys are `[-._a-zA-Z0-9]+`, `data` is base64, a
 * `kubernetes.io/tls` Secret has `tls.crt` and `tls.key`), and, for the Secrets Istio reads as
 * TLS credentials (pilot/pkg/credentials/kube/secrets.go: `tls.crt`/`tls.key`/`ca.crt`, or
 * `cert`/`key`/`cacert`), that the certificates are PEM, the key is the certificate's, and the
 * CA bundle holds certificates: Istio would otherwise push a credential Envoy rejects, and the
 * server would fail on its first handshake instead of at apply. Those are warnings: the API
 * server stores such a Secret, and a Gateway that names it reports the credential invalid in
 * its status (InvalidCertificateRef), as Istio's does; no proxy is given it.
 */
import { GENERIC_SECRET_KEYS, TLS_SECRET_KEYS, isRedactedValue, type SecretSpec } from '../../api/resources/secret.js';
import { credentialProblem, parseCertificates } from '../../semantics/credentials.js';
import type { SemanticContext } from './context.js';

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

export function validateSecret(raw: unknown, ctx: SemanticContext): void {
  const spec = (raw ?? {}) as SecretSpec;
  const values = new Map<string, string>();
  for (const [field, encoded] of [['data', true], ['stringData', false]] as const) {
    for (const [k, v] of Object.entries(spec[field] ?? {})) {
      if (!SECRET_KEY.test(k)) ctx.errorAtKey([field, k], 'SNW0610', `invalid key "${k}": use letters, digits, "-", "_" and "."`);
      if (typeof v !== 'string') continue;
      if (isRedactedValue(v)) {
        ctx.error([field, k], 'SNW0612', 'the value is redacted (copied from "sinew get" output); apply the Secret from its source or make it with "sinew create secret"');
        continue;
      }
      if (encoded && !BASE64.test(v)) {
        ctx.error([field, k], 'SNW0610', 'the value is not base64 (use stringData for plain text)');
        continue;
      }
      values.set(k, encoded ? Buffer.from(v, 'base64').toString('utf8') : v);
    }
  }
  const fieldOf = (k: string): ['data' | 'stringData', string] => [spec.stringData?.[k] !== undefined ? 'stringData' : 'data', k];

  const isTls = spec.type === 'kubernetes.io/tls';
  if (isTls) {
    for (const k of [TLS_SECRET_KEYS.cert, TLS_SECRET_KEYS.key]) {
      if (!values.has(k) && spec.data?.[k] === undefined && spec.stringData?.[k] === undefined) ctx.error(['data'], 'SNW0611', `a kubernetes.io/tls Secret needs "${k}"`);
    }
  }
  // Istio's two layouts: tls.crt/tls.key/ca.crt and cert/key/cacert.
  for (const keys of [TLS_SECRET_KEYS, GENERIC_SECRET_KEYS]) {
    const cert = values.get(keys.cert);
    const key = values.get(keys.key);
    if (cert !== undefined && key !== undefined) {
      const problem = credentialProblem(cert, key);
      if (problem) ctx.warn(fieldOf(keys.cert), 'SNW0611', problem);
    } else if (!isTls && (cert !== undefined) !== (key !== undefined)) {
      const missing = cert === undefined ? keys.cert : keys.key;
      ctx.warn(fieldOf(cert === undefined ? keys.key : keys.cert), 'SNW0611', `"${keys.cert}" and "${keys.key}" go together: add "${missing}"`);
    }
    const ca = values.get(keys.ca);
    if (ca !== undefined) {
      try {
        parseCertificates(ca);
      } catch (err) {
        ctx.warn(fieldOf(keys.ca), 'SNW0611', `the CA bundle is not PEM certificates: ${(err as Error).message}`);
      }
    }
  }
}
