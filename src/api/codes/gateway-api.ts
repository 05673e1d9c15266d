import type { CodeTable } from './types.js';

/**
 * SNW06xx: the Kubernetes Gateway API kinds and credentials (Secrets). The Gateway API's
 * resource rules are the CRDs' own (`x-kubernetes-validations`, evaluated as the API server
 * evaluates them); a finding carries the CRD's message.
 */
export const gatewayApiCodes: CodeTable = {
  SNW0601: { level: 'error', name: 'GatewayApiRule', description: 'A validation rule of the Gateway API CRD (x-kubernetes-validations) does not hold; the message is the CRD\'s own and says what to change.' },
  SNW0602: { level: 'error', name: 'DuplicateListEntry', description: 'Two entries of a list that the CRD keys by a field (x-kubernetes-list-type: map) or keeps as a set share a key; keep one.' },
  SNW0610: { level: 'error', name: 'InvalidSecretData', description: 'A Secret value in `data` is not base64, or a key is not a valid Secret key (letters, digits, `-`, `_`, `.`).' },
  SNW0611: { level: 'error', name: 'InvalidTlsSecret', description: 'A TLS credential is incomplete or unusable. A `kubernetes.io/tls` Secret without `tls.crt` or `tls.key` is refused (as the API server refuses it); certificates that are not PEM, a key that is not the certificate\'s, or a CA bundle without certificates are warnings: the Secret is stored, and a gateway that names it reports the credential invalid and is not given it.' },
  SNW0612: { level: 'error', name: 'RedactedSecretValue', description: 'A Secret value reads `<redacted: N bytes>`: it was copied from `sinew get` output, which never shows secret values. Apply the Secret from its source (or `sinew create secret`).' },
};
