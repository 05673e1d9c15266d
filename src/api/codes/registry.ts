import type { CodeTable } from '../diagnostics.js';

/** SNW03xx: registry kinds (ServiceEntry, WorkloadEntry, WorkloadGroup, Service, Namespace, Workload). */
export const registryCodes: CodeTable = {
};
