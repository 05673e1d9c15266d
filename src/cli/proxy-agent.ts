/**
 * `sinew proxy --xds host:port --node node.json`: a proxy that takes its config from the
 * control plane (what `sinew up` starts beside every workload), until SIGINT/SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import type { ProxyNode } from '../api/proxy-config.js';
import { createLogger } from '../core/logger.js';
import { startProxyAgent } from '../proxy/agent.js';
import type { Io } from './output.js';

export interface ProxyAgentCommandOptions {
  xds: string;
  /** Path of a JSON file holding the ProxyNode. */
  node: string;
  adminPort?: number;
  adminHost?: string;
  metricsPort?: number;
  mergedMetricsPort?: number;
  appMetricsUrl?: string;
  drainMs?: number;
}

export async function runProxyAgentCommand(opts: ProxyAgentCommandOptions, io: Io): Promise<number> {
  let node: ProxyNode;
  try {
    node = JSON.parse(await readFile(opts.node, 'utf8')) as ProxyNode;
  } catch (err) {
    io.err(`✘ cannot read the proxy node from ${opts.node}: ${(err as Error).message}\n`);
    return 1;
  }
  const logger = createLogger({ scope: node.id });
  const agent = await startProxyAgent({
    xds: opts.xds,
    node,
    adminPort: opts.adminPort,
    adminHost: opts.adminHost,
    metricsPort: opts.metricsPort,
    mergedMetricsPort: opts.mergedMetricsPort,
    appMetricsUrl: opts.appMetricsUrl,
    logger,
  });
  logger.info('proxy started', { admin: agent.proxy.adminAddress()?.port, metrics: agent.proxy.metricsAddress()?.port, controlPlane: opts.xds });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await agent.close({ drainMs: opts.drainMs ?? 5_000 });
  return 0;
}
