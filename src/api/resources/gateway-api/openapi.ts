/**
 * Kubernetes structural schemas (a CRD's `openAPIV3Schema`) as Sinew uses them for the Gateway
 * API kinds, whose schemas are transcribed from the upstream CRDs (./crd-schemas.ts):
 *
 *   zodOf            the structural checks, as a zod schema: types, required fields, enums,
 *                    patterns (RE2, as the API server matches them), lengths and bounds;
 *                    unknown fields are errors (kubectl's strict field validation)
 *   applyDefaults    the API server's structural defaulting (apiextensions-apiserver
 *                    pkg/apiserver/schema/defaulting): a missing property with a `default` gets
 *                    it, then defaulting goes on inside the value
 *   forEachRuleSite  every value that has CEL rules (`x-kubernetes-validations`), with its path,
 *                    and the list-type constraints (`x-kubernetes-list-type: map|set`)
 *
 * Pure: the CEL rules themselves are evaluated by src/config/semantic/gateway-api.ts.
 */
import { z } from 'zod';
import { RE2JS } from 're2js';

/** The subset of OpenAPI v3 a Kubernetes structural schema uses. */
export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Readonly<Record<string, OpenApiSchema>>;
  additionalProperties?: OpenApiSchema | boolean;
  required?: readonly string[];
  items?: OpenApiSchema;
  enum?: readonly unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  minimum?: number;
  maximum?: number;
  default?: unknown;
  oneOf?: readonly OpenApiSchema[];
  anyOf?: readonly OpenApiSchema[];
  not?: OpenApiSchema;
  'x-kubernetes-validations'?: readonly CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: readonly string[];
  'x-kubernetes-map-type'?: string;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** One `x-kubernetes-validations` entry. */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** A path from the value the rule is on to the field at fault, e.g. `.spec.foo`. */
  fieldPath?: string;
  reason?: string;
}

/** A CRD as transcribed: the kind, its group and names, and each served version's spec schema. */
export interface CrdDefinition {
  kind: string;
  group: string;
  plural: string;
  shortNames: readonly string[];
  namespaced: boolean;
  /** `standard` or `experimental` (the CRD bundle's channel annotation). */
  channel: string;
  /** Served versions; `schema` indexes the schema list the CRDs come with. */
  versions: readonly { name: string; storage: boolean; schema: number }[];
}

type Path = (string | number)[];

// === structure ===

const patternCache = new Map<string, RE2JS>();
function re2(pattern: string): RE2JS {
  let compiled = patternCache.get(pattern);
  if (!compiled) patternCache.set(pattern, (compiled = RE2JS.compile(pattern)));
  return compiled;
}

/** Whether `value` is an IPv4 or IPv6 address (the formats `ipv4` and `ipv6`). */
function hasFormat(value: string, format: string): boolean {
  if (format === 'ipv4') return /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(value);
  if (format === 'ipv6') return value.includes(':') && /^[0-9a-fA-F:.]+$/.test(value) && (value.match(/::/g) ?? []).length <= 1;
  return true; // other formats (int32, ...) are types, checked by the number bounds
}

/**
 * Whether `value` satisfies a value-only schema as used inside `oneOf`/`anyOf`/`not`
 * branches (enum, format, nested properties): the Gateway's address types use them.
 */
function satisfies(schema: OpenApiSchema, value: unknown): boolean {
  if (schema.enum && !schema.enum.includes(value as never)) return false;
  if (schema.not && satisfies(schema.not, value)) return false;
  if (schema.format && typeof value === 'string' && !hasFormat(value, schema.format)) return false;
  if (schema.anyOf && !schema.anyOf.some((s) => satisfies(s, value))) return false;
  if (schema.properties && value && typeof value === 'object') {
    for (const [k, s] of Object.entries(schema.properties)) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined && !satisfies(s, v)) return false;
    }
  }
  return true;
}

/**
 * The zod schema that checks a value against a structural schema. Each property that is not
 * `required` is optional; `default`s are not applied here (see applyDefaults).
 */
export function zodOf(schema: OpenApiSchema): z.ZodType {
  let out: z.ZodType;
  if (schema['x-kubernetes-int-or-string']) {
    out = z.union([z.number().int(), z.string()]);
  } else if (schema.type === 'object' || (!schema.type && schema.properties)) {
    if (schema.properties) {
      const required = new Set(schema.required ?? []);
      const shape: Record<string, z.ZodType> = {};
      for (const [name, prop] of Object.entries(schema.properties)) {
        const inner = zodOf(prop);
        shape[name] = required.has(name) ? inner : inner.optional();
      }
      out = z.strictObject(shape);
    } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      let record: z.ZodType = z.record(z.string(), zodOf(schema.additionalProperties));
      const max = schema.maxProperties;
      if (max !== undefined) record = record.refine((v) => Object.keys(v as object).length <= max, { message: `at most ${max} entries are allowed` });
      out = record;
    } else {
      out = z.record(z.string(), z.unknown());
    }
    if (schema.oneOf) {
      const branches = schema.oneOf;
      out = out.refine((v) => branches.filter((b) => satisfies(b, v)).length === 1, {
        message: 'the value does not fit its type (an IPAddress needs an IPv4 or IPv6 address)',
      });
    }
  } else if (schema.type === 'array') {
    let arr = z.array(schema.items ? zodOf(schema.items) : z.unknown());
    if (schema.minItems !== undefined) arr = arr.min(schema.minItems, { message: `needs at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}` });
    if (schema.maxItems !== undefined) arr = arr.max(schema.maxItems, { message: `at most ${schema.maxItems} items are allowed` });
    out = arr;
  } else if (schema.type === 'string') {
    if (schema.enum) {
      out = z.enum(schema.enum as [string, ...string[]]);
    } else {
      let str = z.string();
      if (schema.minLength !== undefined) str = str.min(schema.minLength, { message: schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters long` });
      if (schema.maxLength !== undefined) str = str.max(schema.maxLength, { message: `must be at most ${schema.maxLength} characters long` });
      out = str;
      const pattern = schema.pattern;
      if (pattern !== undefined) {
        out = str.refine((v) => re2(pattern).matcher(v).find(), { message: `must match the pattern ${pattern}`, params: { code: 'SNW0106' } });
      }
    }
  } else if (schema.type === 'integer' || schema.type === 'number') {
    let num = schema.type === 'integer' ? z.number().int() : z.number();
    if (schema.minimum !== undefined) num = num.min(schema.minimum, { message: `must be at least ${schema.minimum}` });
    if (schema.maximum !== undefined) num = num.max(schema.maximum, { message: `must be at most ${schema.maximum}` });
    out = num;
  } else if (schema.type === 'boolean') {
    out = z.boolean();
  } else {
    out = z.unknown();
  }
  return out;
}

// === defaults ===

/**
 * A copy of `value` with the schema's defaults applied, as the API server applies them before
 * it validates: a property absent from an object that has a `default` gets a copy of it (and
 * is defaulted in turn), arrays and maps are defaulted item by item. `null` stays null.
 */
export function applyDefaults(schema: OpenApiSchema, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (Array.isArray(value)) {
    const items = schema.items;
    return items ? value.map((v) => applyDefaults(items, v)) : value;
  }
  if (typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = { ...obj };
  if (schema.properties) {
    for (const [name, prop] of Object.entries(schema.properties)) {
      if (out[name] === undefined && prop.default !== undefined) out[name] = structuredClone(prop.default);
      if (out[name] !== undefined) out[name] = applyDefaults(prop, out[name]);
    }
  } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    for (const [k, v] of Object.entries(out)) out[k] = applyDefaults(schema.additionalProperties, v);
  }
  return out;
}

// === rule sites ===

/** A value that carries CEL rules or a list-type constraint, found by `forEachRuleSite`. */
export interface RuleSite {
  /** From the value the walk started at. */
  path: Path;
  schema: OpenApiSchema;
  value: unknown;
}

/**
 * Calls `visit` for every value of `value` (walked along `schema`) whose schema has CEL rules
 * or is a `map`/`set` list, innermost first, as the API server reports them. Values of the
 * wrong type (already structural errors) are not walked into.
 */
export function forEachRuleSite(schema: OpenApiSchema, value: unknown, visit: (site: RuleSite) => void, path: Path = []): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    if (schema.type !== 'array') return;
    if (schema.items) value.forEach((v, i) => forEachRuleSite(schema.items!, v, visit, [...path, i]));
  } else if (typeof value === 'object') {
    if (schema.type !== 'object' && !schema.properties) return;
    const obj = value as Record<string, unknown>;
    if (schema.properties) {
      for (const [name, prop] of Object.entries(schema.properties)) if (obj[name] !== undefined) forEachRuleSite(prop, obj[name], visit, [...path, name]);
    } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      for (const [k, v] of Object.entries(obj)) forEachRuleSite(schema.additionalProperties, v, visit, [...path, k]);
    }
  }
  const listType = schema['x-kubernetes-list-type'];
  if (schema['x-kubernetes-validations']?.length || listType === 'map' || listType === 'set') visit({ path, schema, value });
}
