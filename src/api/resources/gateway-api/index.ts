/**
 * The Kubernetes Gateway API kinds Sinew reads, defined from the transcribed CRDs: each kind's
 * versions are the versions its CRD serves, its structure the CRD's schema (strict, as
 * kubectl's strict field validation), its defaults the CRD's. The CEL rules of the schema are
 * checked by src/config/semantic/gateway-api.ts.
 */
import type { z } from 'zod';
import type { KindDefinition } from '../meta.js';
import { gatewayApiCrds, gatewayApiSchemas } from './crd-schemas.js';
import { applyDefaults, zodOf, type CrdDefinition, type OpenApiSchema } from './openapi.js';

export * from './types.js';
export { applyDefaults, forEachRuleSite, type CelRule, type CrdDefinition, type OpenApiSchema, type RuleSite } from './openapi.js';
export { gatewayApiCrds } from './crd-schemas.js';

/** Gateway API kinds defined by the upstream project that Sinew does not implement (skipped with a warning). */
export const UNIMPLEMENTED_GATEWAY_API_KINDS: ReadonlySet<string> = new Set(['ListenerSet', 'UDPRoute', 'XBackendTrafficPolicy', 'XMesh', 'XBackend']);

/** The spec schema of a kind at a version (the storage version's when the version is not served). */
export function gatewayApiSchema(kind: string, version: string): OpenApiSchema | undefined {
  const crd = gatewayApiCrds.find((c) => c.kind === kind);
  if (!crd) return undefined;
  const v = crd.versions.find((x) => x.name === version) ?? crd.versions.find((x) => x.storage) ?? crd.versions[0];
  return gatewayApiSchemas[v.schema];
}

const zodBySchema = new Map<number, z.ZodType>();
function zodForSchema(index: number): z.ZodType {
  let schema = zodBySchema.get(index);
  if (!schema) zodBySchema.set(index, (schema = zodOf(gatewayApiSchemas[index])));
  return schema;
}

/**
 * The spec schemas are built from the CRDs when a kind is first validated: built at start,
 * they were ~4 MB of the heap of every process that validates config, most of which never
 * sees a Gateway API resource (bench/controlplane-memory.ts).
 */
function definition(crd: CrdDefinition): KindDefinition {
  const storage = crd.versions.find((v) => v.storage) ?? crd.versions[0];
  let built: Record<string, z.ZodType> | undefined;
  const specByVersion = (): Record<string, z.ZodType> => {
    if (!built) {
      built = {};
      for (const v of crd.versions) built[v.name] = zodForSchema(v.schema);
    }
    return built;
  };
  return {
    kind: crd.kind,
    group: crd.group,
    versions: crd.versions.map((v) => v.name),
    namespaced: crd.namespaced,
    get spec() {
      return specByVersion()[storage.name];
    },
    get specByVersion() {
      return specByVersion();
    },
    // The API server keeps `status` (written by controllers) beside `spec`; `get -o yaml`
    // output carries it, so applying that output again must work.
    extraTopLevel: ['status'],
    applyDefaults: (spec, version) => applyDefaults(gatewayApiSchema(crd.kind, version)!, spec),
    // Istio's networking.istio.io Gateway had the name first.
    ...(crd.kind === 'Gateway' ? { key: `Gateway.${crd.group}` } : {}),
  };
}

/** The KindDefinitions of the Gateway API kinds, in the CRDs' order. */
export const gatewayApiKindDefinitions: readonly KindDefinition[] = gatewayApiCrds.map(definition);
