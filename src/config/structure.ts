/**
 * Structural validation: runs a kind's zod schema and turns every issue into a coded
 * diagnostic at the right field, with a "did you mean" for misspelt field names and enum
 * values. Strict like kubectl's strict field validation: an unknown field is an error.
 */
import type { z } from 'zod';
import type { FieldPath } from '../core/path.js';
import { didYouMean } from '../core/suggest.js';

export interface StructuralIssue {
  code: string;
  path: FieldPath;
  message: string;
  /** Point at the key (unknown field) rather than the value. */
  atKey?: boolean;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (schema: unknown): Def | undefined => (schema as { _zod?: { def?: Def } })?._zod?.def;

/** Unwraps optional/nullable/default/pipe/lazy/readonly wrappers. */
function unwrap(schema: unknown): unknown {
  for (let i = 0; i < 20; i++) {
    const def = defOf(schema);
    if (!def) return schema;
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'readonly':
      case 'catch':
      case 'nonoptional':
        schema = def.innerType;
        break;
      case 'pipe':
        schema = def.in;
        break;
      case 'lazy':
        schema = (def.getter as () => unknown)();
        break;
      default:
        return schema;
    }
  }
  return schema;
}

/** The schema that describes the value at `path` below `root`, if it can be followed. */
export function schemaAt(root: unknown, path: FieldPath): unknown {
  let schema = unwrap(root);
  for (const part of path) {
    const def = defOf(schema);
    if (!def) return undefined;
    if (def.type === 'object') schema = (def.shape as Record<string, unknown>)[String(part)];
    else if (def.type === 'array') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    else if (def.type === 'union') {
      // Follow the first option that knows this key.
      const options = def.options as unknown[];
      schema = options.map((o) => schemaAt(o, [part])).find((s) => s !== undefined);
    } else return undefined;
    if (schema === undefined) return undefined;
    schema = unwrap(schema);
  }
  return schema;
}

/** Field names an object schema at `path` accepts. */
export function knownKeysAt(root: unknown, path: FieldPath): string[] {
  const schema = schemaAt(root, path);
  const def = defOf(schema);
  if (def?.type === 'object') return Object.keys(def.shape as object);
  if (def?.type === 'union') return (def.options as unknown[]).flatMap((o) => knownKeysAt(o, []));
  return [];
}

function valueAt(value: unknown, path: FieldPath): unknown {
  let v = value;
  for (const part of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[part];
  }
  return v;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'map';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

const expectedNames: Record<string, string> = { object: 'map', array: 'list', record: 'map', int: 'integer' };

/**
 * Checks `value` against `schema` and returns every issue, paths prefixed with `base`
 * (e.g. `['spec']`). Returns an empty list when the value conforms.
 */
export function checkStructure(schema: z.ZodType, value: unknown, base: FieldPath): StructuralIssue[] {
  const parsed = schema.safeParse(value);
  if (parsed.success) return [];
  const issues: StructuralIssue[] = [];
  const visit = (issue: z.core.$ZodIssue, prefix: FieldPath) => {
    const rel = [...prefix, ...(issue.path as (string | number)[])];
    const path = [...base, ...rel];
    const actual = valueAt(value, rel);
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeysAt(schema, rel);
        for (const key of issue.keys) {
          issues.push({
            code: 'SNW0104',
            path: [...path, key],
            message: `unknown field "${key}"${didYouMean(key, known)}`,
            atKey: true,
          });
        }
        return;
      }
      case 'invalid_type': {
        if (actual === undefined) {
          issues.push({ code: 'SNW0102', path, message: 'required field is missing', atKey: true });
        } else {
          const expected = expectedNames[issue.expected] ?? issue.expected;
          issues.push({ code: 'SNW0101', path, message: `expected ${expected}, got ${typeName(actual)}` });
        }
        return;
      }
      case 'invalid_value': {
        const allowed = issue.values.map((v) => String(v));
        const got = typeof actual === 'string' ? actual : JSON.stringify(actual);
        issues.push({
          code: 'SNW0103',
          path,
          message: `unsupported value "${got}"${didYouMean(String(actual), allowed) || `; allowed: ${allowed.join(', ')}`}`,
        });
        return;
      }
      case 'too_big':
      case 'too_small':
        issues.push({ code: 'SNW0105', path, message: issue.message });
        return;
      case 'invalid_format':
        issues.push({ code: 'SNW0106', path, message: issue.message });
        return;
      case 'invalid_union': {
        // Report the branch that got furthest: the one with the fewest issues.
        const branches = (issue as unknown as { errors: z.core.$ZodIssue[][] }).errors ?? [];
        const best = branches.slice().sort((a, b) => a.length - b.length)[0];
        if (best && best.length > 0) for (const inner of best) visit(inner, rel);
        else issues.push({ code: 'SNW0101', path, message: issue.message });
        return;
      }
      default: {
        const custom = issue as { params?: { code?: string } };
        const code = custom.params?.code ?? 'SNW0106';
        // A schema's own unknown-field check points at the key, like zod's unrecognized_keys above.
        issues.push({ code, path, message: issue.message, atKey: code === 'SNW0104' || undefined });
      }
    }
  };
  for (const issue of parsed.error.issues) visit(issue, []);
  return issues;
}
