/**
 * Helpers shared by the registry- and security- validation tests: where Istio's reference
 * material is, and how to compare a diagnostic with an expectation written in Istio's words.
 */
import path from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import type { Diagnostic } from '../../src/api/diagnostics.js';
import { fixtures } from '../support/reference-corpus.js';
import { notEnforcedCodes } from '../../src/api/codes/not-enforced.js';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
/** The repository's copy of Istio's validation material, laid out as the reference corpus's istio/ folder. */
export const istioDir = fixtures.istio;

/** The kinds these tests own (another suite covers VirtualService, DestinationRule, Gateway, Sidecar). */
export const registryKinds = new Set(['ServiceEntry', 'WorkloadEntry', 'WorkloadGroup', 'Service', 'Namespace', 'Workload']);
export const securityKinds = new Set(['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry']);

/** `metadata.annotations["istio.io/dry-run"]` and `metadata.annotations[istio.io/dry-run]` are the same field. */
export function normalisePath(p: string | undefined): string {
  return (p ?? '').replace(/\["([^"]*)"\]/g, '[$1]');
}

const STOP = new Set(['a', 'an', 'the', 'is', 'be', 'of', 'or', 'if', 'in', 'to', 'for', 'and', 'it', 'as', 'at', 'no', 'not', 'are', 'by', 'on', 'with']);

/** The significant words of Istio's message, each of which the Sinew message must contain. */
export function keyWords(text: string): string[] {
  return text
    .split(/\s+/)
    .map((w) => w.replace(/^[`"'(,:;]+|[`"'),:;.]+$/g, '').toLowerCase())
    .filter((w) => w.length > 0 && !STOP.has(w));
}

export function containsKeyWords(message: string, expected: string): boolean {
  const lower = message.toLowerCase();
  return keyWords(expected).every((w) => lower.includes(w));
}

/**
 * The findings Istio's own validation would give: without Sinew's warnings about what it
 * accepts but does not enforce yet (src/api/codes/not-enforced.ts), which Istio has no reason
 * to give. Tests that compare with Istio's rules compare these.
 */
export function istioFindings(diags: readonly Diagnostic[]): Diagnostic[] {
  return diags.filter((d) => !(d.code in notEnforcedCodes));
}

export function describeDiagnostics(diags: readonly Diagnostic[]): string {
  return diags.map((d) => `  ${d.level} [${d.code}] ${d.resource?.kind ?? ''} ${d.path ?? ''}: ${d.message}`).join('\n') || '  (none)';
}

/** Every .yaml/.yml file below `dir`, sorted. */
export function yamlFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...yamlFilesUnder(full));
    else if (/\.ya?ml$/.test(name)) out.push(full);
  }
  return out;
}
