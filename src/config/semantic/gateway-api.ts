/**
 * The Kubernetes Gateway API kinds' rules: the CEL rules (`x-kubernetes-validations`) of their
 * CRDs, evaluated as the API server evaluates them (k8s.io/apiextensions-apiserver
 * pkg/apiserver/schema/cel), on the spec with the CRD's defaults applied, and the uniqueness of
 * `map` and `set` lists. The rules come from the transcribed schemas
 * (src/api/resources/gateway-api/crd-schemas.ts), so every rule of the CRD is checked, with the
 * CRD's message.
 *
 * Evaluation follows the API server's bindings: `self` is the value the rule sits on; object
 * properties named like CEL keywords are escaped (`namespace` is `__namespace__`); integers are
 * CEL ints; the Kubernetes library functions the rules use (`isIP`) are provided. Transition
 * rules (`oldSelf`) only apply to updates of a stored object and are not checked here.
 */
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import type { CelEnv } from '@bufbuild/cel';
import { forEachRuleSite, gatewayApiSchema, type CelRule, type OpenApiSchema } from '../../api/resources/gateway-api/index.js';
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';

/** CEL's reserved words, which the API server escapes as `__word__` in property names (cel/escaping.go). */
const CEL_RESERVED = new Set(['true', 'false', 'null', 'in', 'as', 'break', 'const', 'continue', 'else', 'for', 'function', 'if', 'import', 'let', 'loop', 'package', 'namespace', 'return', 'var', 'void', 'while']);

/** A property name as CEL expressions see it (apiserver's cel.Escape). */
function escapeProperty(name: string): string {
  if (CEL_RESERVED.has(name)) return `__${name}__`;
  return name.replace(/__/g, '__underscores__').replace(/\./g, '__dot__').replace(/-/g, '__dash__').replace(/\//g, '__slash__');
}

/** The value as the API server hands it to CEL: integers as ints, escaped property names. */
function celValue(schema: OpenApiSchema | undefined, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === 'number') return schema?.type === 'integer' || Number.isInteger(value) && schema?.type !== 'number' ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map((v) => celValue(schema?.items, v));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    if (schema?.properties) {
      for (const [k, v] of Object.entries(value)) out[escapeProperty(k)] = celValue(schema.properties[k], v);
    } else {
      const inner = schema?.additionalProperties && typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
      for (const [k, v] of Object.entries(value)) out[k] = celValue(inner, v);
    }
    return out;
  }
  return value;
}

/**
 * The CEL library, loaded when the first rule is compiled: it is ~4 MB of the heap of every
 * process that validates config (the control plane's idle heap among them,
 * bench/controlplane-memory.ts), and only Gateway API resources need it. Loaded with
 * require (its CommonJS build) because validation is synchronous; only this module uses it.
 */
let celLibrary: { cel: typeof import('@bufbuild/cel'); ext: typeof import('@bufbuild/cel/ext') } | undefined;
function celOnce(): NonNullable<typeof celLibrary> {
  if (!celLibrary) {
    const require = createRequire(import.meta.url);
    celLibrary = { cel: require('@bufbuild/cel') as typeof import('@bufbuild/cel'), ext: require('@bufbuild/cel/ext') as typeof import('@bufbuild/cel/ext') };
  }
  return celLibrary;
}

let environment: CelEnv | undefined;
type Program = (bindings: { self: unknown }) => unknown;
const compiled = new Map<string, Program | Error>();

function program(rule: string): Program | Error {
  let p = compiled.get(rule);
  if (p) return p;
  const { cel: { CelScalar, celEnv, celFunc, parse, plan }, ext: { strings } } = celOnce();
  environment ??= celEnv({
    funcs: [
      // The Kubernetes strings library's split/substring (k8s.io/apiserver/pkg/cel/library) are
      // the CEL strings extension's.
      ...strings,
      // Kubernetes' IP library (library/ip.go): isIP accepts IPv4 and IPv6 addresses without a zone.
      celFunc('isIP', [CelScalar.STRING], CelScalar.BOOL, (s: string) => isIP(s) !== 0 && !s.includes('%')),
    ],
  });
  try {
    p = plan(environment, parse(rule)) as unknown as Program;
  } catch (err) {
    p = err as Error;
  }
  compiled.set(rule, p);
  return p;
}

/** `.spec.foo['bar'].baz` -> ['spec', 'foo', 'bar', 'baz'] (a rule's fieldPath, relative to its value). */
function parseFieldPath(fieldPath: string): FieldPath {
  const out: (string | number)[] = [];
  for (const m of fieldPath.matchAll(/\.([A-Za-z0-9_-]+)|\[['"]([^'"]+)['"]\]|\[(\d+)\]/g)) out.push(m[1] ?? m[2] ?? Number(m[3]));
  return out;
}

/** Whether the rule holds: true, false, or the evaluation error (which the API server reports as a failure). */
function evaluate(rule: CelRule, schema: OpenApiSchema, value: unknown): true | false | Error {
  const p = program(rule.rule);
  if (p instanceof Error) return p;
  try {
    const result = p({ self: celValue(schema, value) });
    if (celOnce().cel.isCelError(result)) return new Error(result.message);
    return result === true;
  } catch (err) {
    return err as Error;
  }
}

/** A key of a list entry for `x-kubernetes-list-type: map` (the map keys) or `set` (the whole value). */
function listKey(schema: OpenApiSchema, item: unknown): string {
  if (schema['x-kubernetes-list-type'] === 'map') {
    const keys = schema['x-kubernetes-list-map-keys'] ?? [];
    const obj = (item ?? {}) as Record<string, unknown>;
    return JSON.stringify(keys.map((k) => [k, obj[k] ?? schema.items?.properties?.[k]?.default ?? null]));
  }
  return JSON.stringify(item);
}

/**
 * Checks a Gateway API spec (defaults applied) against its CRD's rules at the resource's
 * version, reporting each failure at its field with the CRD's message.
 */
export function validateGatewayApiSpec(kind: string, spec: unknown, ctx: SemanticContext): void {
  const version = ctx.apiVersion.split('/')[1] ?? '';
  const schema = gatewayApiSchema(kind, version);
  if (!schema) return;
  forEachRuleSite(schema, spec, ({ path, schema: site, value }) => {
    const at: FieldPath = ['spec', ...path];
    const listType = site['x-kubernetes-list-type'];
    if ((listType === 'map' || listType === 'set') && Array.isArray(value)) {
      const seen = new Map<string, number>();
      value.forEach((item, i) => {
        const key = listKey(site, item);
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else {
          const keys = site['x-kubernetes-list-map-keys'];
          const what = keys?.length ? keys.map((k) => `${k} ${JSON.stringify((item as Record<string, unknown>)?.[k])}`).join(', ') : JSON.stringify(item);
          ctx.error([...at, i], 'SNW0602', `duplicate entry (${what}): it repeats entry ${first}`);
        }
      });
    }
    for (const rule of site['x-kubernetes-validations'] ?? []) {
      if (/\boldSelf\b/.test(rule.rule)) continue;
      const result = evaluate(rule, site, value);
      if (result === true) continue;
      // A rule that cannot be evaluated on a malformed value repeats the structural error.
      if (result !== false && ctx.structureFailed) continue;
      const message = rule.message ?? `failed rule: ${rule.rule}`;
      const where = rule.fieldPath ? [...at, ...parseFieldPath(rule.fieldPath)] : at;
      ctx.error(where, 'SNW0601', result === false ? message : `${message} (the rule could not be evaluated: ${result.message.split('\n')[0]})`);
    }
  });
}

/** The semantic validators of the Gateway API kinds, by kind. */
export const gatewayApiValidators: Readonly<Record<string, (spec: unknown, ctx: SemanticContext) => void>> = Object.fromEntries(
  ['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute', 'ReferenceGrant', 'BackendTLSPolicy'].map((kind) => [kind, (spec: unknown, ctx: SemanticContext) => validateGatewayApiSpec(kind, spec, ctx)]),
);
