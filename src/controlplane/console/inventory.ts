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
 * Kiali's default health thresholds for request errors (its `health_config` rate
 * tolerances): any error rate of 0.1% or more is degraded, 20% or more is a failure.
 */
export const ERROR_DEGRADED_PERCENT = 0.1;
export const ERROR_FAILURE_PERCENT = 20;

/** Health from an error rate (percent of requests) and, for workloads, readiness. */
export function healthOf(traffic: { requests: number; errorPercent: number } | undefined, readiness?: { ready: number; total: number }): Health {
  let health: Health = 'na';
  if (traffic && traffic.requests > 0) {
    health = traffic.errorPercent >= ERROR_FAILURE_PERCENT ? 'failure' : traffic.errorPercent >= ERROR_DEGRADED_PERCENT ? 'degraded' : 'healthy';
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
