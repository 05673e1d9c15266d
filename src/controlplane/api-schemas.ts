/**
 * The schemas of what the control plane's HTTP API reads that is not a config resource
 * (resources are checked by config's own schemas and rules): registrations, credential
 * requests and query strings. Strict, as the config schemas are: an unknown field is an
 * error, not something silently dropped. Each is checked against the contract type it
 * describes (`satisfies`), so the two cannot drift apart.
 */
import { z } from 'zod';
import type { ProxyAddresses, ReplicaRegistration, WorkloadRegistration } from '../api/mesh-status.js';
import type { ProxyNode } from '../api/proxy-config.js';

/** Kubernetes names (DNS-1123): a namespace is a label, a workload name a subdomain. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const namespaceSchema = z.string().max(63).regex(DNS1123_LABEL, 'must be a DNS-1123 label (lower-case letters, digits and "-")');
export const nameSchema = z.string().max(253).regex(DNS1123_SUBDOMAIN, 'must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".")');

const port = z.number().int().min(1).max(65535);
/** `host:port`, the host a name, an IPv4 address or a bracketed IPv6 address. */
const address = z.string().max(300).regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/, 'must be host:port');
const labels = z.record(z.string().min(1).max(317), z.string().max(63));

const proxyAddressesSchema = z.strictObject({
  inbound: address.optional(),
  outbound: address.optional(),
  admin: address,
  metrics: address.optional(),
  servers: z.record(z.string().regex(/^\d{1,5}$/, 'must be a port number'), address).optional(),
}) satisfies z.ZodType<ProxyAddresses>;

const replicaSchema = z.strictObject({
  id: z.string().min(1).max(253).regex(/^[\w.-]+$/, 'must be letters, digits, ".", "_" and "-"'),
  app: address.optional(),
  ports: z.record(z.string().regex(/^\d{1,5}$/, 'must be a container port number'), z.strictObject({ inbound: port, app: port })),
  host: z.string().min(1).max(255),
  ready: z.boolean(),
  /** Why it is not ready, as the runner saw it (a probe's answer, a log line): shown by `sinew status`. */
  reason: z.string().max(4096).optional(),
  restarts: z.number().int().min(0),
  proxy: proxyAddressesSchema,
}) satisfies z.ZodType<ReplicaRegistration>;

/** A `PUT /api/v1/registrations/<kind>/<namespace>/<name>` body (kind, namespace and name may be left out: the path says them). */
export const registrationBodySchema = z.strictObject({
  kind: z.enum(['workload', 'gateway']).optional(),
  name: nameSchema.optional(),
  namespace: namespaceSchema.optional(),
  labels,
  serviceAccount: z.string().min(1).max(253).optional(),
  replicas: z.array(replicaSchema).max(10_000),
});

/** A whole registration, as stored (and as read back from the state directory). */
export const registrationSchema = z.strictObject({
  kind: z.enum(['workload', 'gateway']),
  name: nameSchema,
  namespace: namespaceSchema,
  labels,
  serviceAccount: z.string().min(1).max(253).optional(),
  replicas: z.array(replicaSchema).max(10_000),
}) satisfies z.ZodType<WorkloadRegistration>;

/** The proxy node a push credential is minted for (the fields the push protocol's HELLO carries). */
export const proxyNodeSchema = z.strictObject({
  id: z.string().min(1).max(512),
  mode: z.enum(['sidecar', 'router']),
  workload: z.string().min(1).max(253),
  namespace: namespaceSchema,
  labels,
  serviceAccount: z.string().min(1).max(253).optional(),
  canonicalService: z.string().min(1).max(253).optional(),
  canonicalRevision: z.string().min(1).max(253).optional(),
}) satisfies z.ZodType<ProxyNode>;

/** `POST /api/v1/proxy-credentials`. */
export const proxyCredentialRequestSchema = z.strictObject({ node: proxyNodeSchema });

/** `GET /api/v1/resources?kind=&namespace=`. */
export const resourceListQuerySchema = z.strictObject({
  // A kind, or a kind in its API group where two groups share a name (`Gateway.gateway.networking.k8s.io`).
  kind: z
    .string()
    .max(253)
    .regex(/^[A-Za-z]+(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a kind, e.g. VirtualService, or a kind in its group, e.g. Gateway.gateway.networking.k8s.io')
    .optional(),
  namespace: namespaceSchema.optional(),
});

/** `POST /api/v1/apply?namespace=` and `POST /api/v1/delete?namespace=`. */
export const namespaceQuerySchema = z.strictObject({ namespace: namespaceSchema.optional() });

const micros = z.string().regex(/^\d{1,20}$/, 'must be a whole number of microseconds');

/** `GET /api/v1/traces?...` (Jaeger's query parameters). */
export const traceQuerySchema = z.strictObject({
  service: z.string().min(1).max(253).optional(),
  operation: z.string().min(1).max(1024).optional(),
  tag: z.union([z.string(), z.array(z.string())]).optional(),
  tags: z.union([z.string(), z.array(z.string())]).optional(),
  minDuration: z.string().regex(/^\d+(\.\d+)?(us|µs|ms|s|m)?$/, 'must be a duration such as 250us, 5ms, 1.5s or 2m').optional(),
  start: micros.optional(),
  end: micros.optional(),
  limit: z.string().regex(/^\d{1,4}$/, 'must be a number from 1 to 9999').refine((v) => Number(v) >= 1, 'must be at least 1').optional(),
});

/** One problem with an input: where (a dotted path) and what. */
export interface InputProblem {
  path: string;
  message: string;
}

/** A zod error as the list of problems the API answers with. */
export function problemsOf(error: z.ZodError): InputProblem[] {
  return error.issues.map((issue) => ({
    path: issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('') || '(the whole input)',
    message: issue.message,
  }));
}

/**
 * URL search parameters as an object for a schema: one value stays a string, a repeated
 * parameter becomes an array of strings.
 */
export function queryObject(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    out[key] = all.length === 1 ? all[0]! : all;
  }
  return out;
}
