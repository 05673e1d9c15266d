/** Starts a proxy on port 0 with the test cluster manager, and tears everything down. */
import type { ProxyConfig } from '../../../src/api/proxy-config.js';
import type { Clock } from '../../../src/core/clock.js';
import type { Random } from '../../../src/core/random.js';
import { createProxy, type Proxy } from '../../../src/proxy/proxy.js';
import { createClusterManager } from '../../../src/proxy/upstream/cluster-manager.js';
import { TestClusterManager } from './cluster-manager.js';

export interface Harness {
  proxy: Proxy;
  cm: TestClusterManager;
  /** Port of a listener (the first one when unnamed). */
  port(name?: string): number;
  close(): Promise<void>;
}

/**
 * `SINEW_PROXY_TEST_UPSTREAM=real` runs the same cases through src/proxy/upstream's cluster
 * manager instead of the minimal one (assertions on `cm.outcomes` then see nothing).
 */
const real = process.env.SINEW_PROXY_TEST_UPSTREAM === 'real';

export async function startProxy(config: ProxyConfig, opts: { clock?: Clock; random?: Random; adminPort?: number } = {}): Promise<Harness> {
  const cm = new TestClusterManager();
  const upstream = real ? createClusterManager({ clock: opts.clock, random: opts.random }) : cm;
  const proxy = createProxy({ config, clusterManager: upstream, clock: opts.clock, random: opts.random, adminPort: opts.adminPort });
  await proxy.start();
  return {
    proxy,
    cm,
    port(name?: string) {
      const addrs = proxy.listenerAddresses();
      const addr = name ? addrs[name] : Object.values(addrs)[0];
      if (!addr) throw new Error(`no listener ${name ?? ''}`);
      return addr.port;
    },
    async close() {
      await proxy.close({ drainMs: 200 });
      await cm.close();
      if (upstream !== cm) await upstream.close();
    },
  };
}
