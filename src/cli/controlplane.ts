/** `sinew controlplane`: runs the control-plane daemon in the foreground until SIGINT/SIGTERM. */
import { startControlPlane } from '../controlplane/daemon.js';
import { createLogger } from '../core/logger.js';
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
}

export async function runControlPlaneCommand(options: ControlPlaneCommandOptions, io: Io): Promise<number> {
  const logger = createLogger({ scope: 'control-plane' });
  const cp = await startControlPlane({
    stateDir: options.stateDir,
    host: options.host,
    apiPort: options.apiPort,
    pushPort: options.pushPort,
    monitoringPort: options.monitoringPort,
    consolePort: options.consolePort,
    logger,
    mesh: {
      ...(options.tracingSampling !== undefined ? { defaultTracingSampling: options.tracingSampling } : {}),
      ...(options.outboundTrafficPolicy ? { outboundTrafficPolicy: options.outboundTrafficPolicy } : {}),
    },
  });
  io.out(`control plane: api ${cp.addresses.api}, push ${cp.addresses.push}, metrics ${cp.addresses.monitoring}${cp.addresses.console ? `, console http://${cp.addresses.console}/` : ''}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await cp.close();
  return 0;
}
