import type { CodeTable } from '../diagnostics.js';

/** SNW1xxx: cross-resource analysis (sinew analyze). */
export const analysisCodes: CodeTable = {
};
