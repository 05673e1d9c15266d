/**
 * `sinew proxy --config file.json [--admin-port N]`: runs the data plane from a ProxyConfig
 * JSON file until SIGINT/SIGTERM, then drains. SIGHUP re-reads the file and applies it (a
 * config that fails keeps the running one, like a NACKed push).
 */
import { readFile } from 'node:fs/promises';
import type { ProxyConfig } from '../api/proxy-config.js';
import { createLogger, type Logger } from '../core/logger.js';
import { ProxyError, ProxyErrorCode } from '../proxy/errors.js';
import { createProxy, type Proxy } from '../proxy/proxy.js';
import { processIo, type Io } from './output.js';

export interface ProxyCommandOptions {
  /** Path of the ProxyConfig JSON file. */
  config: string;
  adminPort?: number;
  adminHost?: string;
  /** How long in-flight requests may take to finish on shutdown. */
  drainMs?: number;
  /** Resolves to stop the proxy (tests); default: the first SIGINT or SIGTERM. */
  until?: Promise<unknown>;
  /** Called once the proxy serves (tests read the bound addresses from it). */
  onReady?: (proxy: Proxy) => void;
  logger?: Logger;
}

async function loadConfig(path: string): Promise<ProxyConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ProxyError(ProxyErrorCode.ConfigFile, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as ProxyConfig;
  } catch (err) {
    throw new ProxyError(ProxyErrorCode.ConfigFile, `${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Exit codes: 0 after a clean shutdown, 1 when the config cannot be loaded or used. */
export async function runProxyCommand(opts: ProxyCommandOptions, io: Io = processIo): Promise<number> {
  const logger = opts.logger ?? createLogger({ scope: 'sinew-proxy' });
  let proxy: Proxy;
  try {
    const config = await loadConfig(opts.config);
    proxy = createProxy({ config, adminPort: opts.adminPort, adminHost: opts.adminHost, logger });
    await proxy.start();
  } catch (err) {
    const code = (err as { code?: string }).code;
    io.err(`✘ ${code ? `[${code}] ` : ''}${(err as Error).message}\n`);
    return 1;
  }
  const addrs = Object.entries(proxy.listenerAddresses()).map(([name, a]) => `${name}=${a.address}:${a.port}`);
  io.out(`sinew proxy serving config ${proxy.version}: ${addrs.join(' ')}${proxy.adminAddress() ? ` admin=${proxy.adminAddress()!.port}` : ''}\n`);
  opts.onReady?.(proxy);

  const reload = () => {
    loadConfig(opts.config)
      .then((config) => {
        proxy.apply(config);
        logger.info('config reloaded', { version: config.version });
      })
      .catch((err: Error) => logger.warn('reload failed; the running config stays', { error: err.message }));
  };
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => { stop = resolve; });
  const onSignal = () => stop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', reload);
  try {
    await Promise.race([stopped, opts.until ?? new Promise(() => {})]);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGHUP', reload);
  }
  io.out('sinew proxy draining\n');
  await proxy.close({ drainMs: opts.drainMs ?? 5_000 });
  return 0;
}
