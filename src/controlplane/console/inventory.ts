/**
 * What the console knows about the mesh besides its metrics: the services (registry), the
 * workloads and gateways with their replicas (the runner's registrations and the push
 * server's sync state) and the config in force. The graph, overview and detail pages read
 * one Inventory, taken once per request.
 */
import type { RegistryService } from '../../api/registry-snapshot.js';
import type { Resource } from '../../api/resources/meta.js';
import type { Health } from '../../api/console.js';

export interface InventoryReplica {
  id: string;
  ready: boolean;
  sync: string;
  configVersion?: string;
}

export interface InventoryWorkload {
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  kind: 'workload' | 'gateway';
  replicas: readonly InventoryReplica[];
}

export interface Inventory {
  services: readonly RegistryService[];
  workloads: readonly InventoryWorkload[];
  resources: readonly Resource[];
  configRevision: number;
}

/**
 * Kiali's default health thresholds (its `health_config` rate tolerances, kiali.io "Traffic
 * Health"): application errors (5xx, gRPC 1-16, no response) of 0.1% or more are degraded and
 * over 10% a failure; client errors (4xx) of 10% or more are degraded and over 20% a failure.
 */
export const ERROR_DEGRADED_PERCENT = 0.1;
export const ERROR_FAILURE_PERCENT = 10;
export const CLIENT_ERROR_DEGRADED_PERCENT = 10;
export const CLIENT_ERROR_FAILURE_PERCENT = 20;

export interface TrafficHealth {
  requests: number;
  /** Application errors, percent of requests. */
  errorPercent: number;
  /** Client errors (4xx), percent of requests. */
  clientErrorPercent?: number;
}

/** Health from error rates and, for workloads, readiness. */
export function healthOf(traffic: TrafficHealth | undefined, readiness?: { ready: number; total: number }): Health {
  let health: Health = 'na';
  if (traffic && traffic.requests > 0) {
    const byErrors: Health = traffic.errorPercent > ERROR_FAILURE_PERCENT ? 'failure' : traffic.errorPercent >= ERROR_DEGRADED_PERCENT ? 'degraded' : 'healthy';
    const client = traffic.clientErrorPercent ?? 0;
    const byClientErrors: Health = client > CLIENT_ERROR_FAILURE_PERCENT ? 'failure' : client >= CLIENT_ERROR_DEGRADED_PERCENT ? 'degraded' : 'healthy';
    health = worst(byErrors, byClientErrors);
  }
  if (readiness && readiness.total > 0) {
    // Kiali: no ready replica is a failure, fewer than desired is degraded.
    const byReadiness: Health = readiness.ready === 0 ? 'failure' : readiness.ready < readiness.total ? 'degraded' : 'healthy';
    health = worst(health, byReadiness);
  }
  return health;
}

const RANK: Record<Health, number> = { na: 0, healthy: 1, degraded: 2, failure: 3 };

export function worst(a: Health, b: Health): Health {
  return RANK[a] >= RANK[b] ? a : b;
}

/** The app (canonical service) of a workload's labels, with Istio's fallbacks. */
export function appOf(labels: Readonly<Record<string, string>>, workload: string): string {
  return labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels['app'] ?? workload;
}

export function versionOf(labels: Readonly<Record<string, string>>): string {
  return labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels['version'] ?? 'latest';
}
