/**
 * `sinew controlplane`: runs the control-plane daemon in the foreground until SIGINT/SIGTERM.
 * With `--state-dir` its API token is kept in `<dir>/api-token` (mode 0600); without, it is
 * made at start and printed once.
 */
import { setFlagsFromString } from 'node:v8';
import { startControlPlane, type ControlPlane } from '../controlplane/daemon.js';
import { createLogger } from '../core/logger.js';
import { formatDiagnostic } from '../api/diagnostics.js';
import { loadMeshConfigFile } from '../config/mesh-config.js';
import { parseDurationMs } from '../config/semantic/rules.js';
import type { Io } from './output.js';

export interface ControlPlaneCommandOptions {
  stateDir?: string;
  host: string;
  apiPort: number;
  pushPort: number;
  monitoringPort: number;
  /** Absent = no console. */
  consolePort?: number;
  tracingSampling?: number;
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Istio's MeshConfig in a file (src/config/mesh-config.ts reads its forms). */
  meshConfig?: string;
  /** Config and workloads from a cluster (src/kube) instead of `sinew up`. */
  kubernetes?: boolean;
  kubeconfig?: string;
  context?: string;
  webhookPort?: number;
  webhookCertDir?: string;
  /** Istio plug-in certificates for the mesh CA (`sinew ca init --plugin-dir`). */
  caPluginDir?: string;
  /** Workload certificate lifetime, a duration (`24h`, `60s`). */
  workloadCertTtl?: string;
}

/**
 * V8 flags of the control-plane process. Without allocation-site pretenuring: V8 moves
 * objects from an allocation site straight into the old generation once most of them have
 * survived a young collection, and reading a large config made it do so for the parser's and
 * the validator's short-lived objects too. They then piled up as old-generation garbage until
 * a full collection: applying a 15 MB config peaked at about 490 MB of RSS with pretenuring
 * and about 190 MB without (bench/controlplane-memory.ts). The flag is read at each garbage
 * collection, so setting it at start takes effect.
 */
export const CONTROL_PLANE_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

export async function runControlPlaneCommand(options: ControlPlaneCommandOptions, io: Io): Promise<number> {
  for (const flag of CONTROL_PLANE_V8_FLAGS) setFlagsFromString(flag);
  const logger = createLogger({ scope: 'control-plane' });
  let fromFile = {};
  if (options.meshConfig) {
    const loaded = await loadMeshConfigFile(options.meshConfig);
    for (const d of loaded.diagnostics) io.err(formatDiagnostic(d) + '\n');
    if (!loaded.settings) {
      io.err(`✘ the mesh config ${options.meshConfig} has errors (above); the control plane did not start\n`);
      return 1;
    }
    const { telemetry, ...rest } = loaded.settings;
    fromFile = { ...rest, meshTelemetry: telemetry };
  }
  let workloadTtlMs: number | undefined;
  if (options.workloadCertTtl !== undefined) {
    workloadTtlMs = parseDurationMs(options.workloadCertTtl);
    if (workloadTtlMs === undefined || workloadTtlMs < 1000) {
      io.err(`✘ the workload certificate lifetime "${options.workloadCertTtl}" (--workload-cert-ttl or SINEW_WORKLOAD_CERT_TTL) is not a duration of at least 1s; write it like 24h or 60s\n`);
      return 2;
    }
  }
  const common = {
    host: options.host,
    apiPort: options.apiPort,
    pushPort: options.pushPort,
    monitoringPort: options.monitoringPort,
    consolePort: options.consolePort,
    logger,
    ca: { pluginDir: options.caPluginDir, workloadTtlMs },
    mesh: {
      ...fromFile,
      ...(options.tracingSampling !== undefined ? { defaultTracingSampling: options.tracingSampling } : {}),
      ...(options.outboundTrafficPolicy ? { outboundTrafficPolicy: options.outboundTrafficPolicy } : {}),
    },
  };
  let cp: ControlPlane;
  let close: () => Promise<void>;
  if (options.kubernetes) {
    if (options.stateDir) {
      io.err('--state-dir and --kubernetes do not go together: with --kubernetes the config lives in the cluster\n');
      return 2;
    }
    const { startKubeControlPlane } = await import('./kube-controlplane.js');
    const { hostname } = await import('node:os');
    const kube = await startKubeControlPlane({
      ...common,
      kubeconfig: options.kubeconfig,
      context: options.context,
      webhook: options.webhookPort === undefined ? undefined : { port: options.webhookPort, certDir: options.webhookCertDir },
      // Replicas share the work; one, chosen by a Lease in the control plane's namespace, writes status.
      leaderElection: { namespace: process.env.POD_NAMESPACE ?? 'sinew-system', name: 'sinew-controlplane', identity: process.env.POD_NAME ?? `${hostname()}-${process.pid}` },
    });
    cp = kube.controlPlane;
    close = kube.close;
    io.out(`kubernetes: ${kube.client.server}, watching ${kube.source.watching.length} kinds; ${kube.source.store.list().length} resources, ${kube.source.rejected.size} refused\n`);
    if (kube.webhookAddress) io.out(`webhooks: https://${kube.webhookAddress}\n`);
  } else {
    cp = await startControlPlane({ ...common, stateDir: options.stateDir });
    close = () => cp.close();
  }
  io.out(`control plane: api ${cp.addresses.api}, push ${cp.addresses.push}, metrics ${cp.addresses.monitoring}${cp.addresses.console ? `, console http://${cp.addresses.console}/` : ''}\n`);
  // Without a state directory the token lives in memory only: whoever started the control
  // plane is told it once, as Jupyter prints its token (SINEW_TOKEN=... sinew --server ...).
  io.out(cp.tokenFile ? `api token: ${cp.tokenFile}\n` : `api token (in memory only; pass it with --token or SINEW_TOKEN): ${cp.credentials.apiToken}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await close();
  return 0;
}
