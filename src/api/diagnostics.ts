/**
 * Diagnostics: what validation and analysis report. Every finding has a permanent code
 * (STYLE.md 11, like Istio's IST0101): codes are never reused once retired, and each is
 * documented in docs/diagnostics.md, generated from the tables in `./codes/`.
 *
 * Ranges:
 *   SNW00xx  reading input (files, YAML, documents, apiVersion/kind)
 *   SNW01xx  structure (unknown fields, types, required fields, enum values)
 *   SNW02xx  networking semantics (VirtualService, DestinationRule, Gateway, Sidecar)
 *   SNW03xx  service registry kinds (ServiceEntry, WorkloadEntry, WorkloadGroup, Service, Workload)
 *   SNW04xx  security and telemetry semantics (PeerAuthentication, AuthorizationPolicy,
 *            RequestAuthentication, Telemetry; SNW045x the mesh config file)
 *   SNW05xx  accepted but not enforced yet (./codes/not-enforced.ts, with SNW1011 and SNW1012)
 *   SNW06xx  the Kubernetes Gateway API kinds (their CRDs' rules) and credentials (Secrets)
 *   SNW1xxx  cross-resource analysis (`sinew analyze`)
 */
import { loaderCodes } from './codes/loader.js';
import { structureCodes } from './codes/structure.js';
import { networkingCodes } from './codes/networking.js';
import { registryCodes } from './codes/registry.js';
import { securityCodes } from './codes/security.js';
import { analysisCodes } from './codes/analysis.js';
import { notEnforcedCodes } from './codes/not-enforced.js';
import { meshConfigCodes } from './codes/mesh-config.js';
import { gatewayApiCodes } from './codes/gateway-api.js';

import type { CodeTable, DiagnosticLevel } from './codes/types.js';

export type { CodeInfo, CodeTable, DiagnosticLevel } from './codes/types.js';

/** Every diagnostic code Sinew emits, by code. */
export const diagnosticCodes: CodeTable = Object.freeze({
  ...loaderCodes,
  ...structureCodes,
  ...networkingCodes,
  ...registryCodes,
  ...securityCodes,
  ...meshConfigCodes,
  ...notEnforcedCodes,
  ...gatewayApiCodes,
  ...analysisCodes,
});

export interface SourcePosition {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

export interface ResourceRef {
  kind: string;
  namespace?: string;
  name: string;
}

export interface Diagnostic {
  level: DiagnosticLevel;
  code: string;
  message: string;
  /** The resource at fault, when the finding belongs to one. */
  resource?: ResourceRef;
  /** Where in the input: the node of `path` when it exists, else its nearest parent. */
  source?: SourcePosition;
  /** Field path inside the resource, e.g. `spec.http[0].route[0].destination.host`. */
  path?: string;
}

/**
 * Formats one diagnostic as a line:
 * `error [SNW0104] (VirtualService default/reviews) reviews.yaml:14:11 spec.http[0]...: message`
 */
export function formatDiagnostic(d: Diagnostic): string {
  const parts: string[] = [`${d.level} [${d.code}]`];
  if (d.resource) {
    const ns = d.resource.namespace ? `${d.resource.namespace}/` : '';
    parts.push(`(${d.resource.kind} ${ns}${d.resource.name})`);
  }
  if (d.source) parts.push(`${d.source.file}:${d.source.line}:${d.source.column}`);
  parts.push(d.path ? `${d.path}: ${d.message}` : d.message);
  return parts.join(' ');
}
