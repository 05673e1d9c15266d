import type { CodeTable } from '../diagnostics.js';

/** SNW04xx: security and telemetry (PeerAuthentication, AuthorizationPolicy, RequestAuthentication, Telemetry). */
export const securityCodes: CodeTable = {
};
