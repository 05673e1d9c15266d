/** `sinew controlplane`: runs the control-plane daemon in the foreground until SIGINT/SIGTERM. */
import { startControlPlane } from '../controlplane/daemon.js';
import { createLogger } from '../core/logger.js';
import { formatDiagnostic } from '../api/diagnostics.js';
import { loadMeshConfigFile } from '../config/mesh-config.js';
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
}

export async function runControlPlaneCommand(options: ControlPlaneCommandOptions, io: Io): Promise<number> {
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
  const cp = await startControlPlane({
    stateDir: options.stateDir,
    host: options.host,
    apiPort: options.apiPort,
    pushPort: options.pushPort,
    monitoringPort: options.monitoringPort,
    consolePort: options.consolePort,
    logger,
    mesh: {
      ...fromFile,
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
