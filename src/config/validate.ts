/**
 * The validation pipeline: raw documents in, frozen resources and every diagnostic out.
 *
 *   1. shape of the document (a mapping with apiVersion, kind, metadata);
 *   2. apiVersion and kind known (with "did you mean" for near misses);
 *   3. metadata (name required, Kubernetes name rules);
 *   4. structure of the spec against the kind's schema (strict);
 *   5. Istio's semantic rules for the kind;
 *   6. what the resource asks for that Sinew does not enforce yet: warnings (./not-enforced.ts);
 *   7. duplicates within one file.
 *
 * Nothing stops at the first error: each resource gets every finding, and the other
 * resources are still checked.
 */
import type { Diagnostic, ResourceRef } from '../api/diagnostics.js';
import { findKind, kindDefinitions, kindKeyOf, apiVersionOf, objectMetaSchema, GATEWAY_API_GROUP, UNIMPLEMENTED_GATEWAY_API_KINDS, type KindDefinition, type Resource } from '../api/resources/index.js';
import { formatPath, type FieldPath } from '../core/path.js';
import { closest, didYouMean } from '../core/suggest.js';
import { deepFreeze } from '../core/freeze.js';
import { DocumentReader, loadInputs, defaultLoadLimits, type LoadLimits, type RawDocument } from './load.js';
import { checkStructure } from './structure.js';
import { semanticValidators } from './semantic/index.js';
import { notEnforcedWarnings } from './not-enforced.js';
import type { SemanticContext } from './semantic/context.js';

export interface ValidateOptions {
  /** Namespace for resources that name none (kubectl's `-n`); default `default`. */
  defaultNamespace?: string;
  limits?: LoadLimits;
}

export interface ValidationResult {
  /** Resources without errors (warnings allowed), frozen. */
  resources: Resource[];
  diagnostics: Diagnostic[];
  /** Documents skipped on purpose (kinds Sinew does not use). */
  skipped: number;
}

/** Istio kinds Sinew reads but does not implement. */
const UNSUPPORTED_ISTIO_KINDS = new Set(['EnvoyFilter', 'WasmPlugin', 'ProxyConfig']);

/** `kind/namespace/name`, the kind as its key (the store's keyOf, which this module may not import: the store imports it). */
const keyOf = (r: Resource) => `${kindKeyOf(r)}/${r.metadata.namespace}/${r.metadata.name}`;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export async function validateInputs(inputs: readonly string[], options: ValidateOptions = {}): Promise<ValidationResult> {
  const loaded = await loadInputs(inputs, options.limits ?? defaultLoadLimits);
  const result = validateDocuments(loaded.documents, options);
  result.diagnostics.unshift(...loaded.diagnostics);
  return result;
}

/**
 * Validates text already in memory (stored state, tests): as TextValidator, one piece. Each
 * document is validated as soon as it is read and its plain value let go, so a large input
 * costs its resources, not its resources and all its documents' values at once.
 */
export function validateText(file: string, text: string, options: ValidateOptions = {}): ValidationResult {
  const validator = new TextValidator(file, options);
  validator.write(text);
  return validator.end();
}

export function validateDocuments(documents: Iterable<RawDocument>, options: ValidateOptions = {}): ValidationResult {
  const collected = new ValidationCollector(options);
  for (const doc of documents) collected.add(doc);
  return collected.result;
}

/**
 * Validates text as it arrives, a piece at a time (the control plane's apply reads a request
 * body so): each document is validated as soon as it is complete, and the text itself is not
 * kept (load.ts DocumentReader). The same result as validateText on the whole text.
 */
export class TextValidator {
  private readonly reader: DocumentReader;
  private readonly collected: ValidationCollector;

  constructor(file: string, options: ValidateOptions = {}) {
    this.reader = new DocumentReader(file, options.limits ?? defaultLoadLimits);
    this.collected = new ValidationCollector(options);
  }

  write(piece: string): void {
    for (const doc of this.reader.write(piece)) this.collected.add(doc);
  }

  end(): ValidationResult {
    for (const doc of this.reader.end()) this.collected.add(doc);
    // A failure part-way refuses the input as a whole: what was read before it counts for nothing.
    if (this.reader.fatal) return { resources: [], diagnostics: [this.reader.fatal], skipped: 0 };
    const result = this.collected.result;
    result.diagnostics.unshift(...this.reader.diagnostics);
    return result;
  }
}

/** Validates documents one at a time, gathering the resources and every diagnostic. */
class ValidationCollector {
  readonly result: ValidationResult = { resources: [], diagnostics: [], skipped: 0 };
  // Duplicates count within one file only: a directory of alternatives (Istio's bookinfo
  // networking samples define `reviews` in a dozen files) is not an error to validate; when
  // applied, later documents replace earlier ones, as with kubectl apply -f.
  private readonly seen = new Map<string, RawDocument['start']>();

  constructor(private readonly options: ValidateOptions) {}

  add(doc: RawDocument): void {
    const out = this.result;
    const checked = validateDocument(doc, this.options);
    out.diagnostics.push(...dropEchoes(checked.diagnostics));
    if (checked.skipped) out.skipped++;
    if (!checked.resource) return;
    const r = checked.resource;
    const key = `${doc.file}\u0000${keyOf(r)}`;
    const earlier = this.seen.get(key);
    if (earlier) {
      out.diagnostics.push({
        level: 'error',
        code: 'SNW0013',
        message: `${r.kind} ${r.metadata.namespace}/${r.metadata.name} is defined again in the same file (first at line ${earlier.line}); the later one would silently win`,
        resource: { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name },
        source: doc.start,
      });
      return;
    }
    this.seen.set(key, doc.start);
    if (!checked.diagnostics.some((d) => d.level === 'error')) out.resources.push(r);
  }
}

/**
 * The resources as applying them in order leaves them, as `kubectl apply -f a -f b` does: a
 * later document's `Kind namespace/name` replaces an earlier one's, and the list keeps the
 * order in which the survivors were applied. Validation refuses a repeat inside one file
 * (SNW0013), so what is replaced here comes from an earlier file: Istio's sample folders hold
 * alternative versions of one VirtualService, and `apply -f v1.yaml -f v2.yaml` means v2.
 */
export function lastApplied(resources: readonly Resource[]): Resource[] {
  const last = new Map<string, Resource>();
  for (const r of resources) {
    const key = keyOf(r);
    last.delete(key); // re-inserted below, so the map keeps the order of application
    last.set(key, r);
  }
  return [...last.values()];
}

/**
 * One mistake, one error: when a field is misspelt (`hosts` for `host`), the missing-field and
 * rule errors about the field it should have been only repeat that mistake, so they go.
 */
function dropEchoes(diagnostics: Diagnostic[]): Diagnostic[] {
  const suggested = new Set<string>();
  for (const d of diagnostics) {
    if (d.code !== 'SNW0104' || !d.path) continue;
    const m = /did you mean "([^"]+)"/.exec(d.message);
    if (m) suggested.add(`${d.path.slice(0, d.path.lastIndexOf('.'))}.${m[1]}`);
  }
  if (suggested.size === 0) return diagnostics;
  return diagnostics.filter((d) => d.code === 'SNW0104' || !d.path || !suggested.has(d.path));
}

interface DocumentCheck {
  resource?: Resource;
  diagnostics: Diagnostic[];
  skipped?: boolean;
}

function validateDocument(doc: RawDocument, options: ValidateOptions): DocumentCheck {
  const diagnostics: Diagnostic[] = [];
  const value = doc.value;
  let ref: ResourceRef | undefined;
  const report = (level: Diagnostic['level'], path: FieldPath, code: string, message: string, atKey = false) => {
    diagnostics.push({
      level,
      code,
      message,
      resource: ref,
      source: atKey ? doc.keyPositionOf(path) : doc.positionOf(path),
      path: path.length ? formatPath(path) : undefined,
    });
  };

  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    report('error', [], 'SNW0008', `document is ${Array.isArray(value) ? 'a list' : typeof value === 'string' ? 'a string' : 'not a mapping'}; expected a resource with apiVersion, kind and metadata`);
    return { diagnostics };
  }
  const obj = value as Record<string, unknown>;
  // A Kubernetes List (kubectl get -o yaml) holds resources in items.
  const kind = obj.kind;
  const apiVersion = obj.apiVersion;
  const meta = obj.metadata as Record<string, unknown> | undefined;
  const name = meta && typeof meta.name === 'string' ? meta.name : undefined;

  if (typeof kind !== 'string' || kind === '') {
    report('error', ['kind'], 'SNW0102', 'required field is missing', true);
    return { diagnostics };
  }
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    report('error', ['apiVersion'], 'SNW0102', 'required field is missing', true);
    return { diagnostics };
  }

  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
  // The kind in its group first: two groups may share a kind's name (Istio's and the Gateway
  // API's Gateway). A kind of ours under a misspelt group falls back to the name alone, so that
  // the apiVersion check below can suggest the right group.
  const def = findKind(kind, group) ?? (isGatewayApiGroup(group) ? undefined : findKind(kind));
  if (!def) {
    // Not one of ours: a near miss of one of our kinds is an error with a suggestion; other
    // Kubernetes kinds and Istio or Gateway API kinds Sinew does not implement are skipped
    // with a warning.
    const unimplemented = UNSUPPORTED_ISTIO_KINDS.has(kind) || (isGatewayApiGroup(group) && UNIMPLEMENTED_GATEWAY_API_KINDS.has(kind));
    const near = unimplemented ? undefined : closest(kind, kindDefinitions.map((d) => d.kind));
    ref = name ? { kind, name, namespace: typeof meta?.namespace === 'string' ? meta.namespace : undefined } : undefined;
    if (near) {
      report('error', ['kind'], 'SNW0010', `unknown kind "${kind}"; did you mean "${near}"?`);
      return { diagnostics };
    }
    if (unimplemented || !isOurGroup(group)) {
      const why = unimplemented ? `Sinew does not implement this ${isGatewayApiGroup(group) ? 'Gateway API' : 'Istio'} kind` : 'not a mesh resource';
      report('warning', ['kind'], 'SNW0014', `${kind} (${apiVersion}) skipped: ${why}`);
      return { diagnostics, skipped: true };
    }
    report('error', ['kind'], 'SNW0010', `unknown kind "${kind}" in ${apiVersion}`);
    return { diagnostics };
  }

  // The same kind name in another API group (Knative's `Service`) is not ours: skip it. A near
  // miss of one of our groups (`networking.stio.io`) is a typo and falls through to the
  // apiVersion check below, which suggests the right one.
  if (group !== def.group && group !== '' && !isOurGroup(group) && !closest(group, ourGroups)) {
    ref = name ? { kind, name, namespace: typeof meta?.namespace === 'string' ? meta.namespace : undefined } : undefined;
    report('warning', ['apiVersion'], 'SNW0014', `${kind} (${apiVersion}) skipped: not a mesh resource`);
    return { diagnostics, skipped: true };
  }

  const namespaceGiven = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
  const namespace = def.namespaced ? namespaceGiven ?? options.defaultNamespace ?? 'default' : '';
  ref = { kind, namespace: def.namespaced ? namespace : undefined, name: name ?? '<unnamed>' };

  if (def.group !== group || !def.versions.includes(version)) {
    const accepted = def.versions.map((v) => apiVersionOf(def, v));
    const hint = didYouMean(apiVersion, accepted) || `; ${kind} is read as ${accepted.join(', ')}`;
    report('error', ['apiVersion'], 'SNW0009', `unknown apiVersion "${apiVersion}" for ${kind}${hint}`);
  }

  // Top-level fields. A kind whose content sits at the top level (a Secret's data) has no spec.
  const contentFields = def.topLevelSpec ?? ['spec', 'status'];
  const allowedTop = new Set(['apiVersion', 'kind', 'metadata', ...contentFields, ...(def.extraTopLevel ?? [])]);
  for (const key of Object.keys(obj)) {
    if (!allowedTop.has(key)) report('error', [key], 'SNW0104', `unknown field "${key}"${didYouMean(key, allowedTop)}`, true);
  }

  // Metadata.
  if (!meta || typeof meta !== 'object') {
    report('error', ['metadata'], 'SNW0102', 'required field is missing', true);
  } else {
    for (const issue of checkStructure(objectMetaSchema, meta, ['metadata'])) report('error', issue.path, issue.code, issue.message, issue.atKey);
    if (typeof meta.name === 'string') {
      if (meta.name === '') report('error', ['metadata', 'name'], 'SNW0011', 'metadata.name must not be empty');
      else if (!(def.group === '' ? DNS1123_LABEL : DNS1123_SUBDOMAIN).test(meta.name) || meta.name.length > 253) {
        report('error', ['metadata', 'name'], 'SNW0012', `invalid name "${meta.name}": use lower-case letters, digits, '-' (and '.'), starting and ending with a letter or digit`);
      }
    } else if (meta.name === undefined) {
      report('error', ['metadata', 'name'], 'SNW0011', 'metadata.name is required', true);
    }
    // A cluster-scoped resource as the store writes it back has an empty namespace: that is none.
    if (namespaceGiven !== undefined && !(namespaceGiven === '' && !def.namespaced) && !DNS1123_LABEL.test(namespaceGiven)) {
      report('error', ['metadata', 'namespace'], 'SNW0012', `invalid namespace "${namespaceGiven}": use a lower-case RFC 1123 label`);
    }
  }

  // Spec: structure, the API server's defaults, then the kind's rules (Istio's, the CRD's).
  const topLevel = def.topLevelSpec;
  const given = topLevel ? Object.fromEntries(topLevel.filter((f) => obj[f] !== undefined).map((f) => [f, obj[f]])) : obj.spec;
  let spec: unknown = given === undefined || given === null ? {} : given;
  const specVersion = def.versions.includes(version) ? version : def.versions[0];
  const structural = checkStructure(def.specByVersion?.[specVersion] ?? def.spec, spec, topLevel ? [] : ['spec']);
  for (const issue of structural) report('error', issue.path, issue.code, issue.message, issue.atKey);
  if (def.applyDefaults) spec = def.applyDefaults(spec, specVersion);
  runSemantic(def, spec, ref, apiVersion, meta ?? {}, structural.length > 0, report);

  const hasError = diagnostics.some((d) => d.level === 'error');
  if (hasError) return { diagnostics };
  // apiVersion, metadata and spec are copied through JSON: what the store keeps is JSON data
  // anyway (it is written, served and read back as JSON), V8 builds JSON.parse's objects
  // compactly with short strings shared (the resources of a 15 MB config took 28 MB so, about
  // 60 MB as structured clones), and the copy holds no substring of the input, which can then
  // go. Every string taken from the parsed document is a slice of the whole input text in V8,
  // so one such string kept (apiVersion was) keeps all of the input alive.
  const copy = JSON.parse(JSON.stringify({ apiVersion, metadata: { ...(meta as Record<string, unknown>), name: name as string, namespace }, spec })) as Pick<Resource, 'apiVersion' | 'metadata' | 'spec'>;
  const resource: Resource = deepFreeze({
    apiVersion: copy.apiVersion,
    group: def.group,
    kind: def.kind,
    metadata: copy.metadata,
    spec: copy.spec,
    source: doc.start,
  }) as Resource;
  diagnostics.push(...notEnforcedWarnings(resource, (path) => doc.positionOf(path)));
  return { resource, diagnostics };
}

function runSemantic(
  def: KindDefinition,
  spec: unknown,
  ref: ResourceRef,
  apiVersion: string,
  meta: Record<string, unknown>,
  structureFailed: boolean,
  report: (level: Diagnostic['level'], path: FieldPath, code: string, message: string, atKey?: boolean) => void,
): void {
  const validator = semanticValidators[def.key ?? def.kind];
  if (!validator) return;
  const ctx: SemanticContext = {
    resource: { ...ref, namespace: ref.namespace ?? '' },
    metadata: meta as SemanticContext['metadata'],
    apiVersion,
    structureFailed,
    error: (path, code, message) => report('error', path, code, message),
    warn: (path, code, message) => report('warning', path, code, message),
    errorAtKey: (path, code, message) => report('error', path, code, message, true),
  };
  try {
    validator(spec, ctx);
  } catch (err) {
    // With a broken structure a rule may trip over an unexpected shape; the structural
    // errors already explain it. Without one, this is our bug: say so rather than crash.
    if (!structureFailed) {
      report('error', ['spec'], 'SNW0101', `internal error while checking ${def.kind} (please report): ${(err as Error).message}`);
    }
  }
}

const ourGroups = [...new Set(kindDefinitions.map((d) => d.group).filter(Boolean))];

/** Groups whose kinds Sinew knows of: Istio's, Sinew's and the Gateway API's. */
function isOurGroup(group: string): boolean {
  return group.endsWith('istio.io') || group === 'sinew.dev' || isGatewayApiGroup(group);
}

/** The Gateway API's groups (its experimental kinds are in `gateway.networking.x-k8s.io`). */
function isGatewayApiGroup(group: string): boolean {
  return group === GATEWAY_API_GROUP || group === 'gateway.networking.x-k8s.io';
}
