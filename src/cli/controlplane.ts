/**
 * `sinew controlplane`: runs the control-plane daemon in the foreground until SIGINT/SIGTERM.
 * With `--state-dir` its API token is kept in `<dir>/api-token` (mode 0600); without, it is
 * made at start and printed once.
 */
import { startControlPlane } from '../controlplane/daemon.js';
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
}

export async function runControlPlaneCommand(options: ControlPlaneCommandOptions, io: Io): Promise<number> {
  const logger = createLogger({ scope: 'control-plane' });
  const cp = await startControlPlane({
    stateDir: options.stateDir,
    host: options.host,
    apiPort: options.apiPort,
    pushPort: options.pushPort,
    monitoringPort: options.monitoringPort,
    logger,
    mesh: {
      ...(options.tracingSampling !== undefined ? { defaultTracingSampling: options.tracingSampling } : {}),
      ...(options.outboundTrafficPolicy ? { outboundTrafficPolicy: options.outboundTrafficPolicy } : {}),
    },
  });
  io.out(`control plane: api ${cp.addresses.api}, push ${cp.addresses.push}, metrics ${cp.addresses.monitoring}\n`);
  // Without a state directory the token lives in memory only: whoever started the control
  // plane is told it once, as Jupyter prints its token (SINEW_TOKEN=... sinew --server ...).
  io.out(cp.tokenFile ? `api token: ${cp.tokenFile}\n` : `api token (in memory only; pass it with --token or SINEW_TOKEN): ${cp.credentials.apiToken}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await cp.close();
  return 0;
}
