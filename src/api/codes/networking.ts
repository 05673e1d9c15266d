import type { CodeTable } from '../diagnostics.js';

/** SNW02xx: networking semantics (VirtualService, DestinationRule, Gateway, Sidecar). */
export const networkingCodes: CodeTable = {
};
