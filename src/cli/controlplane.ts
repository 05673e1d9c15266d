/** `sinew controlplane`: runs the control-plane daemon in the foreground until SIGINT/SIGTERM. */
import { startControlPlane, type ControlPlane } from '../controlplane/daemon.js';
import { createLogger } from '../core/logger.js';
import type { Io } from './output.js';

export interface ControlPlaneCommandOptions {
  stateDir?: string;
  host: string;
  apiPort: number;
  pushPort: number;
  monitoringPort: number;
  tracingSampling?: number;
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Config and workloads from a cluster (src/kube) instead of `sinew up`. */
  kubernetes?: boolean;
  kubeconfig?: string;
  context?: string;
  webhookPort?: number;
  webhookCertDir?: string;
}

export async function runControlPlaneCommand(options: ControlPlaneCommandOptions, io: Io): Promise<number> {
  const logger = createLogger({ scope: 'control-plane' });
  const common = {
    host: options.host,
    apiPort: options.apiPort,
    pushPort: options.pushPort,
    monitoringPort: options.monitoringPort,
    logger,
    mesh: {
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
  io.out(`control plane: api ${cp.addresses.api}, push ${cp.addresses.push}, metrics ${cp.addresses.monitoring}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await close();
  return 0;
}
