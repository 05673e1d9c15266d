/**
 * Istio's Telemetry rules: istio/istio pkg/config/validation/validation.go ValidateTelemetry
 * (validateTelemetryMetrics, validateTelemetryTracing, validateTelemetryAccessLogging,
 * validateTelemetryProviders), plus the CRD's rules (reportingInterval, one custom tag type).
 */
import type { FieldPath } from '../../core/path.js';
import type { SemanticContext } from './context.js';
import { asArray, asObject, checkDuration, checkPolicySelection, DRY_RUN_ANNOTATION, dryRunAnnotationUnsupported, isObject } from './rules.js';

/** Istio's ValidateTelemetry. */
export function validateTelemetry(spec: unknown, ctx: SemanticContext): void {
  const t = asObject(spec);
  const dryRun = dryRunAnnotationUnsupported(ctx.metadata.annotations, ctx.resource.namespace, ctx.resource.name);
  if (dryRun) ctx.error(['metadata', 'annotations', DRY_RUN_ANNOTATION], 'SNW0404', dryRun);
  checkPolicySelection(t, ctx, { oneOf: 'SNW0402', selector: 'SNW0400', noLabels: 'SNW0401', targetRef: 'SNW0403' });

  asArray(t.metrics).forEach((raw, i) => {
    if (!isObject(raw)) return;
    const base = ['spec', 'metrics', i];
    checkProviders(raw.providers, [...base, 'providers'], ctx);
    if (raw.reportingInterval !== undefined) {
      const err = checkDuration(raw.reportingInterval);
      if (err) ctx.error([...base, 'reportingInterval'], 'SNW0436', err);
    }
    asArray(raw.overrides).forEach((o, j) => {
      if (!isObject(o)) return;
      const path = [...base, 'overrides', j];
      for (const [tag, to] of Object.entries(asObject(o.tagOverrides))) {
        const tagPath = [...path, 'tagOverrides', tag];
        if (tag === '') ctx.warn(tagPath, 'SNW0443', 'tagOverrides.name may not be empty');
        if (!isObject(to)) continue;
        // UPSERT is the proto enum's zero value, so an override without operation upserts.
        const op = to.operation ?? 'UPSERT';
        if (op === 'UPSERT' && (typeof to.value !== 'string' || to.value === '')) {
          ctx.error(tagPath, 'SNW0443', 'tagOverrides.value must be set when operation is UPSERT');
        } else if (op === 'REMOVE' && to.value !== undefined && to.value !== '') {
          ctx.error([...tagPath, 'value'], 'SNW0443', 'tagOverrides.value may only be set when operation is UPSERT');
        }
      }
      if (isObject(o.match)) {
        if (o.match.customMetric === '') ctx.error([...path, 'match', 'customMetric'], 'SNW0444', 'customMetric may not be empty');
        if (o.match.metric !== undefined && o.match.customMetric !== undefined) {
          ctx.error([...path, 'match'], 'SNW0444', 'set only one of metric and customMetric');
        }
      }
    });
  });

  const tracing = asArray(t.tracing);
  if (tracing.length > 1) ctx.warn(['spec', 'tracing'], 'SNW0445', 'multiple tracing is not currently supported');
  tracing.forEach((raw, i) => {
    if (!isObject(raw)) return;
    const base = ['spec', 'tracing', i];
    if (asArray(raw.providers).length > 1) ctx.warn([...base, 'providers'], 'SNW0445', 'multiple providers is not currently supported');
    checkProviders(raw.providers, [...base, 'providers'], ctx);
    const pct = raw.randomSamplingPercentage;
    if (typeof pct === 'number' && (pct < 0 || pct > 100)) {
      ctx.error([...base, 'randomSamplingPercentage'], 'SNW0441', 'randomSamplingPercentage must be in range [0.0, 100.0]');
    }
    for (const [name, tag] of Object.entries(asObject(raw.customTags))) {
      const path = [...base, 'customTags', name];
      if (name === '') ctx.error(path, 'SNW0442', 'tag name may not be empty');
      if (!isObject(tag)) {
        ctx.error(path, 'SNW0442', `tag '${name}' may not have a nil value`);
        continue;
      }
      const kinds = ['literal', 'environment', 'header', 'formatter'].filter((k) => tag[k] !== undefined);
      if (kinds.length !== 1) {
        ctx.error(path, 'SNW0442', `tag '${name}' must set exactly one of literal, environment, header or formatter`);
        continue;
      }
      const kind = kinds[0];
      const body = asObject(tag[kind]);
      const field = kind === 'literal' || kind === 'formatter' ? 'value' : 'name';
      if (typeof body[field] !== 'string' || body[field] === '') {
        ctx.error([...path, kind, field], 'SNW0442', `${kind} tag ${field} may not be empty`);
      }
    }
  });

  asArray(t.accessLogging).forEach((raw, i) => {
    if (isObject(raw)) checkProviders(raw.providers, ['spec', 'accessLogging', i, 'providers'], ctx);
  });
}

/** Istio's validateTelemetryProviders. */
function checkProviders(providers: unknown, base: FieldPath, ctx: SemanticContext): void {
  asArray(providers).forEach((p, i) => {
    if (isObject(p) && (typeof p.name !== 'string' || p.name === '')) {
      ctx.error([...base, i, 'name'], 'SNW0440', 'providers.name may not be empty');
    }
  });
}
