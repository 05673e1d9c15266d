/**
 * The connection manager's path normalisation. Istio's rule lives once, in
 * src/security/path-normalization.ts (authorization depends on it as much as routing does);
 * this module keeps the connection manager's import where it was.
 */
export { canonicalPath, normalizeRequestPath } from '../../security/path-normalization.js';
