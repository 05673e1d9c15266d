import { z } from 'zod';

/** Kubernetes v1 Service spec: the fields Sinew uses (selector, ports); others allowed. */
export const serviceSpecSchema = z.looseObject({});
export type ServiceSpec = z.infer<typeof serviceSpecSchema>;

/** Kubernetes v1 Namespace spec. */
export const namespaceSpecSchema = z.looseObject({});
export type NamespaceSpec = z.infer<typeof namespaceSpecSchema>;
