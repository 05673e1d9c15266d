/**
 * A proxy that takes its config from the control plane (Istio's pilot-agent + Envoy, in one
 * process): it connects to the push port, names itself, applies every pushed ProxyConfig
 * atomically and ACKs, or NACKs and keeps serving the last good one. While the control plane
 * is away it keeps serving and reconnects with backoff.
 *
 * It proves who it is with the push credential its runner got for it from the control plane:
 * in the push HELLO, and as a bearer token to the control plane's trace collector (only that
 * one; see TelemetrySettings.tracingCollectors).
 */
import type { ProxyNode } from '../api/proxy-config.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import { PushClient } from '../xds/client.js';
import { createProxy, type Proxy } from './proxy.js';
import type { CaptureOptions } from './capture.js';
import { MeshSecrets, type MeshSecretsOptions } from './secrets/mesh-secrets.js';

export interface ProxyAgentOptions {
  /** Control plane push address, `host:port`. */
  xds: string;
  node: ProxyNode;
  /**
   * The push credential for `node` (controlplane/credentials.ts), or in a pod its
   * service-account token; a function is asked at every connect (see PushClientOptions).
   */
  credential?: string | (() => string | undefined);
  adminPort?: number;
  adminHost?: string;
  /** Address of the metrics ports (default: adminHost): in a pod, reachable by Prometheus while admin stays on loopback. */
  metricsHost?: string;
  /** Prometheus port of the proxy's metrics, `/stats/prometheus` (Istio's 15090). */
  metricsPort?: number;
  /** Prometheus port merging the proxy's and the app's metrics (Istio's 15020). */
  mergedMetricsPort?: number;
  /** The application's metrics URL, merged into `mergedMetricsPort`'s answer. */
  appMetricsUrl?: string;
  /** Transparent capture (iptables in a pod): see ProxyOptions.capture. */
  capture?: CaptureOptions;
  /** DNS servers for `dns` clusters (ProxyOptions.dnsResolvers). */
  dnsResolvers?: readonly string[];
  logger?: Logger;
  /** Renewal timing and retries of the workload certificate (tests shorten them). */
  certificates?: Pick<MeshSecretsOptions, 'policy' | 'initialRetryMs' | 'maxRetryMs' | 'clock' | 'random'>;
}

export interface ProxyAgent {
  proxy: Proxy;
  client: PushClient;
  /** The proxy's certificate and trust (the SecretProvider transport sockets read). */
  secrets: MeshSecrets;
  close(opts?: { drainMs?: number }): Promise<void>;
}

export async function startProxyAgent(options: ProxyAgentOptions): Promise<ProxyAgent> {
  const logger = options.logger ?? silentLogger;
  // The push client exists only below; the CSR waits for it (and for its connection) there.
  let client: PushClient | undefined;
  const secrets = new MeshSecrets({
    ...options.certificates,
    logger: logger.child('sds'),
    requestCertificate: (csrPem) => (client ? client.requestCertificate(csrPem) : Promise.reject(new Error('not connected to the control plane yet'))),
  });
  const proxy = createProxy({
    secrets,
    adminPort: options.adminPort ?? 0,
    adminHost: options.adminHost,
    metricsHost: options.metricsHost,
    // Telemetry labels name this node from the start, before the first config arrives.
    node: options.node,
    metricsPort: options.metricsPort,
    mergedMetricsPort: options.mergedMetricsPort,
    appMetricsUrl: options.appMetricsUrl,
    capture: options.capture,
    dnsResolvers: options.dnsResolvers,
    logger,
    ...(options.credential !== undefined ? { telemetry: { tracer: { credential: options.credential } } } : {}),
  });
  await proxy.start();
  const i = options.xds.lastIndexOf(':');
  client = new PushClient({
    host: options.xds.slice(0, i),
    port: Number(options.xds.slice(i + 1)),
    node: options.node,
    credential: options.credential,
    logger: logger.child('push'),
    apply: async (config) => {
      // A ROOTCA that cannot be read rejects the whole config, before anything changes.
      const prepared = secrets.prepare(config);
      proxy.apply(config);
      secrets.commit(prepared);
      // ACK only once the listeners the config names are open (or closed).
      await proxy.settled();
    },
  });
  client.on('nack', (version, reason) => logger.warn('config rejected; still serving the last good one', { version, reason }));
  client.on('disconnected', () => logger.info('control plane connection lost; serving the last config and reconnecting'));
  client.start();
  const started = client;
  return {
    proxy,
    client: started,
    secrets,
    async close(opts) {
      secrets.close();
      await started.close();
      await proxy.close(opts);
    },
  };
}
