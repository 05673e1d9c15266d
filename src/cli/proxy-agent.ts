/**
 * `sinew proxy --xds host:port --node node.json --token-file proxy.token`: a proxy that takes
 * its config from the control plane (what `sinew up` starts beside every workload), until
 * SIGINT/SIGTERM. The token file holds the push credential the runner got for this node; it
 * must be readable by its owner only, like an SSH key.
 */
import { readFile, stat } from 'node:fs/promises';
import type { ProxyNode } from '../api/proxy-config.js';
import { createLogger } from '../core/logger.js';
import { startProxyAgent } from '../proxy/agent.js';
import type { Io } from './output.js';

export interface ProxyAgentCommandOptions {
  xds: string;
  /** Path of a JSON file holding the ProxyNode. */
  node: string;
  /** Path of the file holding the proxy's push credential (mode 0600). */
  tokenFile?: string;
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
  let credential: string | undefined;
  if (opts.tokenFile !== undefined) {
    try {
      const mode = (await stat(opts.tokenFile)).mode & 0o777;
      if (mode & 0o077) {
        io.err(`✘ ${opts.tokenFile} holds a credential but others may read it (mode ${mode.toString(8)}); make it owner-only: chmod 600 ${opts.tokenFile}\n`);
        return 1;
      }
      credential = (await readFile(opts.tokenFile, 'utf8')).trim();
    } catch (err) {
      io.err(`✘ cannot read the proxy's credential from ${opts.tokenFile}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const logger = createLogger({ scope: node.id });
  if (credential === undefined) logger.warn('no --token-file: a control plane that checks credentials will refuse this proxy');
  const agent = await startProxyAgent({
    xds: opts.xds,
    node,
    credential,
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
