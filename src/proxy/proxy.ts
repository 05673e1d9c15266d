/**
 * The Sinew proxy: listeners -> connection manager -> filters -> router -> cluster manager.
 * It runs only from a ProxyConfig (DESIGN.md); `apply` validates and compiles a config once,
 * then swaps it in atomically (Envoy's config.cc pattern, STYLE.md 3 and 10): a config it
 * cannot use throws a ProxyConfigError and the previous one stays in force. Listeners follow
 * the config: new ones open, removed ones drain and close, unchanged ones keep their socket.
 *
 * Telemetry: one ProxyTelemetry per proxy, for the node the config names, follows each
 * accepted config's `telemetry` block (metrics and access logs subscribe to the events the
 * proxy publishes; the tracer is called on the request path). The metrics port (Istio's
 * 15090) and the merged port (15020, with the app's own metrics) serve Prometheus text.
 */
import type { AddressInfo } from 'node:net';
import { WORKLOAD_CERTIFICATE_SECRET, type Listener, type ProxyConfig, type ProxyNode, type Secret } from '../api/proxy-config.js';
import { systemClock, type Clock } from '../core/clock.js';
import { deepFreeze } from '../core/freeze.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { systemRandom, type Random } from '../core/random.js';
import { ProxyTelemetry, type ProxyTelemetryOptions } from '../telemetry/proxy-telemetry.js';
import { AdminServer } from './admin.js';
import type { SecretProvider } from './secrets/secret-provider.js';
import { FileSecrets, withoutUnservableChains } from './secrets/file-secrets.js';
import { ProxyConfigError, ProxyError, ProxyErrorCode } from './errors.js';
import { channels, ProxyStats } from './events.js';
import { HttpListener } from './http/listener.js';
import { filterChainProblems } from './transport/filter-chains.js';
import type { Problems } from '../semantics/string-match.js';
import { MetricsServer } from './metrics-server.js';
import { compileRouteTable, type CompiledRouteTable } from './http/route-table.js';
import type { HttpFilterFactory } from './http/filter-api.js';
import { compileFilterChain, compilePerRouteConfig, type CompiledFilterChain, type FilterRegistry } from './http/filter-chain.js';
import { filterRegistry } from './http/filters/registry.js';
import { directCheck } from './http/filters/ext-authz/index.js';
import { fetchJwksDirectly } from './http/filters/jwt-authn/index.js';
import { compileNetworkFilters, networkFilterFactories, type SecurityFilterDependencies } from './http/filters/security-chain.js';
import type { NetworkFilter, NetworkFilterFactory } from './http/filters/contract.js';
import type { ListenerContext, ProxyRuntime, Snapshot } from './runtime.js';
import { TcpListener } from './tcp/listener.js';
import { MIN_MESH_KEY_BYTES, NO_PEER_IDENTITY, peerIdentityFor } from './peer-identity.js';
import { defaultMaxDownstreamConnections, DownstreamConnections, fileDescriptorLimit } from './overload.js';
import { createClusterManager } from './upstream/cluster-manager.js';
import { serverLookup } from './upstream/dns.js';
import { CaptureServers, type CaptureOptions } from './capture.js';
import type { ClusterManager } from './upstream/types.js';

export interface ProxyOptions {
  config?: ProxyConfig;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** The upstream layer (default: src/proxy/upstream's); the proxy closes it on close() only when it created it. */
  clusterManager?: ClusterManager;
  /** Admin port (0 = any free port); no admin server when absent. */
  adminPort?: number;
  adminHost?: string;
  /** Who this proxy is, for telemetry labels and spans (default: the node of the first config applied). */
  node?: ProxyNode;
  /**
   * Telemetry knobs (tests inject the random source, an access-log sink, export batching);
   * `false` turns telemetry off altogether: no metrics, spans, trace or peer headers.
   */
  telemetry?: ProxyTelemetryOptions | false;
  /** Prometheus port for the proxy's metrics, `/stats/prometheus` (Istio's 15090; 0 = any free port). */
  metricsPort?: number;
  /** Prometheus port merging the proxy's and the app's metrics (Istio's 15020; 0 = any free port). */
  mergedMetricsPort?: number;
  /** The application's own metrics URL, merged into `mergedMetricsPort`'s answer. */
  appMetricsUrl?: string;
  /** Address of the metrics ports (default: adminHost, else 127.0.0.1). */
  metricsHost?: string;
  /**
   * Transparent capture (iptables, in a pod): accept on these ports and hand each connection
   * to the listener its original destination names (capture.ts). The inbound listeners and
   * the outbound one then bind nothing themselves.
   */
  capture?: CaptureOptions;
  /**
   * HTTP filter factories beside the built-in ones (http/filters/registry.ts), for listeners
   * that name them in `http.filters`.
   */
  httpFilters?: readonly HttpFilterFactory[];
  /**
   * The proxy's certificates and trust (secrets/): the workload certificate and key, and the
   * mesh roots, that the config's `default` (provider mesh-ca) and `ROOTCA` secrets name.
   * Shown on the admin port's /certs (without the key).
   */
  secrets?: SecretProvider & { describe(): unknown };
  /**
   * DNS servers (`host:port`) that resolve the names of `dns` clusters (ServiceEntry DNS and
   * DNS_ROUND_ROBIN), in place of the system's resolver (upstream/dns.ts).
   */
  dnsResolvers?: readonly string[];
}

export interface Proxy {
  /** Validates, compiles and swaps in a config; throws ProxyConfigError (last good config kept). */
  apply(config: ProxyConfig): void;
  /** Opens the listeners of the config in force (and the admin port). */
  start(): Promise<void>;
  /** Resolves when the listeners opened by the last apply are bound; rejects with the bind error. */
  settled(): Promise<void>;
  /** Drains every listener for up to drainMs, then closes everything. */
  close(opts?: { drainMs?: number }): Promise<void>;
  /** Bound address per listener name. */
  listenerAddresses(): Record<string, AddressInfo>;
  adminAddress(): AddressInfo | undefined;
  metricsAddress(): AddressInfo | undefined;
  mergedMetricsAddress(): AddressInfo | undefined;
  /** The proxy's telemetry; undefined when off or before the first config. */
  readonly telemetry: ProxyTelemetry | undefined;
  /** Open downstream connections over all listeners. */
  connections(): number;
  readonly stats: ProxyStats;
  readonly version: string | undefined;
}

type AnyListener = HttpListener | TcpListener;

interface ActiveListener {
  config: Listener;
  ctx: ListenerContext;
  impl: AnyListener;
  opened: Promise<void>;
}

/** How long close() waits for spans and access-log lines to be flushed. */
const TELEMETRY_FLUSH_MS = 2_000;

/** Builds a proxy. A ProxyConfig given here is applied at once (and throws like apply). */
export function createProxy(options: ProxyOptions = {}): Proxy {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? systemRandom;
  const logger = options.logger ?? silentLogger;
  const ownsClusterManager = options.clusterManager === undefined;
  const stats = new ProxyStats();
  const telemetryOptions = options.telemetry === false ? undefined : { clock, random, ...options.telemetry };
  let telemetry: ProxyTelemetry | undefined;
  const runtime: ProxyRuntime = {
    current: undefined,
    clusterManager: options.clusterManager ?? createClusterManager({
        clock,
        random,
        logger,
        onEvent: (e) => telemetry?.metrics.recordUpstreamEvent(e),
        ...(options.dnsResolvers?.length ? { dnsLookup: serverLookup(options.dnsResolvers) } : {}),
      }),
    clock,
    random,
    logger: logger.child('proxy'),
    stats,
    telemetry: undefined,
    nodeId: options.node?.id,
    peers: NO_PEER_IDENTITY,
    peerHeaderLines: '',
    downstream: new DownstreamConnections(Infinity),
  };
  const securityLogger = runtime.logger.child('security');
  const security: SecurityFilterDependencies = {
    // JWKS and ext_authz go straight to the addresses the config gives (the authorizer's
    // cluster endpoints), not yet through the cluster manager's pools and transport sockets.
    jwt: { fetchJwks: fetchJwksDirectly, now: () => clock.now(), stats, logger: securityLogger },
    extAuthz: { check: directCheck((cluster) => healthyEndpoint(runtime.current, cluster)), stats, logger: securityLogger },
    rbac: { stats, logger: securityLogger },
  };
  const registry = filterRegistry(options.httpFilters, security);
  const networkRegistry = networkFilterFactories(security.rbac);
  const defaultConnectionLimit = defaultMaxDownstreamConnections(fileDescriptorLimit());
  /** Telemetry starts with the node: given up front, or named by the first config. */
  const ensureTelemetry = (node: ProxyNode | undefined): ProxyTelemetry | undefined => {
    if (telemetry || !telemetryOptions || !node) return telemetry;
    telemetry = new ProxyTelemetry(node, telemetryOptions);
    runtime.telemetry = telemetry;
    runtime.nodeId = node.id;
    return telemetry;
  };
  ensureTelemetry(options.node);
  const listeners = new Map<string, ActiveListener>();
  const draining = new Set<Promise<void>>();
  let started = false;
  let closed = false;
  let admin: AdminServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let mergedMetricsServer: MetricsServer | undefined;
  let pending: Promise<void> = Promise.resolve();
  let last: Promise<void> = Promise.resolve();

  /** The last config applied as it was pushed (before the SecretProvider's material was merged in). */
  let pushed: ProxyConfig | undefined;
  const provider = options.secrets;
  const fileSecrets = new FileSecrets({ logger: runtime.logger.child('secrets') });
  const reportedUnservable = new Set<string>();
  /** The pushed config with its secrets' material: the SecretProvider's, and what the files it names hold. */
  const withMaterial = (config: ProxyConfig): ProxyConfig => {
    const { config: resolved, unavailable } = fileSecrets.resolve(withProvidedSecrets(config, provider));
    return withoutUnservableChains(resolved, unavailable, runtime.logger, reportedUnservable);
  };

  /**
   * A certificate was renewed or the roots or revocations changed: the config in force is
   * built again with the new material (Envoy's SDS update). Listeners keep their sockets and
   * give new connections the new certificate; clusters whose material changed get new pools,
   * the old ones draining, so no open connection is cut.
   */
  const refreshSecrets = () => {
    if (closed || pushed === undefined || runtime.current === undefined) return;
    try {
      const snapshot = compile(withMaterial(pushed), runtime.current, registry);
      runtime.clusterManager.update(snapshot.config.clusters, snapshot.config.endpoints, snapshot.config.secrets);
      runtime.current = snapshot;
      stats.inc('secrets_updated');
      if (started) {
        const next = reconcile(snapshot.config);
        pending = pending.then(() => next).catch((err: Error) => { runtime.logger.error(err.message); });
      }
    } catch (err) {
      // The material was checked when it was made; a failure here keeps the previous one serving.
      stats.inc('secrets_update_failed');
      runtime.logger.warn('new certificates could not be applied; the previous ones keep serving', { error: (err as Error).message });
    }
  };
  const unsubscribeSecrets = provider?.onChange(() => refreshSecrets());
  // A certificate file rewritten: the same path as a renewal (Istio's agent watches the files).
  fileSecrets.onChange(() => refreshSecrets());

  const captured = (l: Listener) => options.capture !== undefined && (l.direction === 'inbound' || l.direction === 'outbound');
  let capture: CaptureServers | undefined;

  const open = (l: Listener): ActiveListener => {
    const ctx: ListenerContext = { listener: l, http: l.http ?? {}, port: l.address.port, draining: false };
    const impl: AnyListener = l.protocol === 'http' ? new HttpListener(runtime, ctx) : new TcpListener(runtime, ctx);
    const active: ActiveListener = { config: l, ctx, impl, opened: Promise.resolve() };
    // Captured listeners take connections from the capture ports only (Envoy's bind_to_port: false).
    if (captured(l)) {
      stats.inc('listener_added');
      return active;
    }
    active.opened = impl.listen().then(
      (addr) => {
        // Port 0 binds anywhere; route matching uses the port actually bound.
        active.ctx.port = addr.port;
        stats.inc('listener_added');
      },
      (err: Error) => {
        stats.inc('listener_bind_failed');
        runtime.logger.error('listener bind failed', { listener: l.name, error: err.message });
        listeners.delete(l.name);
        throw new ProxyError(ProxyErrorCode.ListenFailed, `listener ${l.name} could not bind ${l.address.host}:${l.address.port}: ${err.message}`, { cause: err });
      },
    );
    return active;
  };

  const retire = (active: ActiveListener, drainMs: number) => {
    stats.inc('listener_removed');
    const p = active.opened.catch(() => {}).then(() => active.impl.close(drainMs));
    draining.add(p);
    void p.finally(() => draining.delete(p));
    return p;
  };

  /** Makes the open listeners match the config in force. */
  const reconcile = (config: ProxyConfig): Promise<void> => {
    const wanted = new Map(config.listeners.map((l) => [l.name, l]));
    const waits: Promise<void>[] = [];
    for (const [name, active] of listeners) {
      const next = wanted.get(name);
      if (!next || !sameSocket(active.config, next)) {
        listeners.delete(name);
        void retire(active, 5_000);
      }
    }
    for (const l of config.listeners) {
      const active = listeners.get(l.name);
      if (active) {
        const boundPort = active.ctx.port;
        const ctx: ListenerContext = { listener: l, http: l.http ?? {}, port: boundPort, draining: false };
        active.config = l;
        active.ctx = ctx;
        active.impl.update(ctx as never);
        continue;
      }
      const fresh = open(l);
      listeners.set(l.name, fresh);
      waits.push(fresh.opened);
    }
    return Promise.all(waits).then(() => undefined);
  };

  const proxy: Proxy = {
    stats,
    get version() {
      return runtime.current?.version;
    },

    apply(config: ProxyConfig): void {
      if (closed) throw new ProxyError(ProxyErrorCode.Closed, 'the proxy is closed; create a new one');
      let snapshot: Snapshot;
      try {
        snapshot = compile(withMaterial(config), runtime.current, registry, networkRegistry);
        runtime.clusterManager.update(snapshot.config.clusters, snapshot.config.endpoints, snapshot.config.secrets);
      } catch (err) {
        stats.inc('config_rejected');
        const message = (err as Error).message;
        runtime.logger.warn('config rejected', { version: config?.version, error: message });
        if (channels.config.hasSubscribers) channels.config.publish({ node: runtime.nodeId, version: String(config?.version), accepted: false, error: message });
        if (err instanceof ProxyConfigError) throw err;
        throw new ProxyConfigError(String(config?.version), [message]);
      }
      runtime.current = snapshot;
      pushed = config;
      runtime.downstream.limit = snapshot.config.overload?.maxDownstreamConnections ?? defaultConnectionLimit;
      stats.inc('config_applied');
      const tel = ensureTelemetry(options.node ?? snapshot.config.node);
      try {
        tel?.apply(snapshot.config.telemetry);
      } catch (err) {
        // Telemetry settings never cost traffic: the config stays applied, the problem is logged.
        runtime.logger.warn('telemetry settings could not be applied', { version: snapshot.version, error: (err as Error).message });
      }
      runtime.peers = peerIdentityFor(snapshot.config, tel?.localPeerHeaders, runtime.peers);
      runtime.peerHeaderLines = (tel?.localPeerHeaderLines ?? '') + runtime.peers.proofLines;
      if (channels.config.hasSubscribers) channels.config.publish({ node: runtime.nodeId, version: snapshot.version, accepted: true });
      if (started) {
        const next = reconcile(snapshot.config);
        last = next;
        pending = pending.then(() => next).catch((err: Error) => { runtime.logger.error(err.message); });
      }
    },

    async start(): Promise<void> {
      if (closed) throw new ProxyError(ProxyErrorCode.Closed, 'the proxy is closed; create a new one');
      if (started) return;
      started = true;
      const proxyMetrics = new MetricsServer({ metrics: () => telemetry?.metrics, merged: false });
      if (options.adminPort !== undefined) {
        admin = new AdminServer({
          current: () => runtime.current,
          stats,
          clusterManager: runtime.clusterManager,
          gauges: () => ({ downstream_cx_active: proxy.connections(), downstream_cx_limit: runtime.downstream.limit, listeners_active: listeners.size }),
          prometheus: telemetryOptions ? () => proxyMetrics.render() : undefined,
          certificates: () => {
            const files = fileSecrets.describe();
            const own = options.secrets ? options.secrets.describe() : { secrets: [] };
            return files.length ? { ...(own as object), files } : own;
          },
          waitingFor: () => (awaitingWorkloadCertificate(runtime.current?.config) ? 'the workload certificate from the mesh CA' : undefined),
        });
        await admin.listen(options.adminPort, options.adminHost);
      }
      const metricsHost = options.metricsHost ?? options.adminHost;
      if (options.metricsPort !== undefined) {
        metricsServer = proxyMetrics;
        await metricsServer.listen(options.metricsPort, metricsHost);
      }
      if (options.mergedMetricsPort !== undefined) {
        mergedMetricsServer = new MetricsServer({ metrics: () => telemetry?.metrics, merged: true, appMetricsUrl: options.appMetricsUrl });
        await mergedMetricsServer.listen(options.mergedMetricsPort, metricsHost);
      }
      if (options.capture) {
        const find = (pick: (l: Listener) => boolean) => [...listeners.values()].find((a) => pick(a.config))?.impl;
        capture = new CaptureServers(options.capture, {
          inbound: (port) => find((l) => l.direction === 'inbound' && l.address.port === port),
          outboundHttp: () => find((l) => l.direction === 'outbound' && l.protocol === 'http'),
          logger: runtime.logger,
          count: (stat) => stats.inc(stat),
        });
        await capture.listen();
      }
      if (runtime.current) await reconcile(runtime.current.config);
    },

    settled(): Promise<void> {
      // Rejects with the coded bind error when the last apply's listeners could not open.
      return pending.then(() => last);
    },

    async close(opts: { drainMs?: number } = {}): Promise<void> {
      if (closed) return;
      closed = true;
      unsubscribeSecrets?.();
      fileSecrets.close();
      const drainMs = opts.drainMs ?? 5_000;
      await capture?.close();
      const all = [...listeners.values()].map((a) => retire(a, drainMs));
      listeners.clear();
      await Promise.all([...all, ...draining]);
      await Promise.all([admin?.close(), metricsServer?.close(), mergedMetricsServer?.close()]);
      if (ownsClusterManager) await runtime.clusterManager.close();
      // Last, so that the spans and access-log lines of drained requests are flushed; a
      // collector that is down or slow may hold up shutdown by TELEMETRY_FLUSH_MS at most.
      // (A wall-clock bound: an injected test clock that never advances must not hold it.)
      if (telemetry) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([telemetry.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, TELEMETRY_FLUSH_MS)))]);
        clearTimeout(timer);
      }
    },

    listenerAddresses(): Record<string, AddressInfo> {
      const out: Record<string, AddressInfo> = {};
      for (const [name, a] of listeners) {
        const addr = a.impl.address();
        if (addr) out[name] = addr;
      }
      return out;
    },

    adminAddress(): AddressInfo | undefined {
      return admin?.address();
    },

    metricsAddress(): AddressInfo | undefined {
      return metricsServer?.address();
    },

    mergedMetricsAddress(): AddressInfo | undefined {
      return mergedMetricsServer?.address();
    },

    get telemetry() {
      return telemetry;
    },

    connections(): number {
      let n = 0;
      for (const a of listeners.values()) n += a.impl.connections();
      return n;
    },
  };
  if (options.config) proxy.apply(options.config);
  return proxy;
}

/**
 * Same address and protocol: the listener keeps its socket and only takes the new settings.
 * TLS settings are among them: a new certificate (or TLS turned on or off) applies to new
 * connections while the open ones carry on, as Envoy's SDS updates do.
 */
function sameSocket(a: Listener, b: Listener): boolean {
  return a.protocol === b.protocol && a.address.host === b.address.host && a.address.port === b.address.port;
}

// === secrets ===

/**
 * The config with the SecretProvider's material in the secrets it names (Envoy's SDS): the
 * workload certificate chain and key in `default` (pushed with `provider: mesh-ca` and no
 * key, which never leaves this process). `ROOTCA` is used as pushed (the provider reads its
 * roots and revocations from the same secret). Without a provider, or before it has a
 * certificate, the pushed secrets stay as they are.
 */
export function withProvidedSecrets(config: ProxyConfig, provider: SecretProvider | undefined): ProxyConfig {
  if (!provider || !Array.isArray(config?.secrets)) return config;
  let changed = false;
  const secrets = config.secrets.map((s): Secret => {
    if (s.name === WORKLOAD_CERTIFICATE_SECRET && s.provider === 'mesh-ca') {
      const cert = provider.tlsCertificate(s.name);
      if (!cert) return s;
      changed = true;
      return { ...s, certificateChainPem: cert.certificateChainPem, privateKeyPem: cert.privateKeyPem };
    }
    return s;
  });
  return changed ? { ...config, secrets } : config;
}

/** The config names the workload certificate from the mesh CA and the proxy has none yet (it is not ready). */
function awaitingWorkloadCertificate(config: ProxyConfig | undefined): boolean {
  const cert = config?.secrets?.find((s) => s.name === WORKLOAD_CERTIFICATE_SECRET);
  return cert?.provider === 'mesh-ca' && !cert.privateKeyPem;
}

// === validation and compilation ===

class ProblemList implements Problems {
  readonly items: string[] = [];
  add(path: string, message: string): void {
    this.items.push(`${path}: ${message}`);
  }
}

/**
 * Checks a config as a whole and compiles its route tables. Everything is reported at once.
 * Route tables whose content did not change are reused from the previous snapshot.
 */
export function compile(input: ProxyConfig, previous?: Snapshot, registry: FilterRegistry = filterRegistry(), networkRegistry: ReadonlyMap<string, NetworkFilterFactory> = networkFilterFactories()): Snapshot {
  const problems = new ProblemList();
  if (!input || typeof input !== 'object') throw new ProxyConfigError('?', ['the config is not an object']);
  // A private deep copy: the caller may reuse or mutate its object after apply returns.
  const config = deepFreeze(structuredClone(input));
  if (typeof config.version !== 'string' || config.version.length === 0) problems.add('version', 'must be a non-empty string');
  for (const key of ['listeners', 'routeConfigs', 'clusters', 'endpoints'] as const) {
    if (!Array.isArray(config[key])) problems.add(key, 'must be an array');
  }
  if (config.secrets !== undefined && !Array.isArray(config.secrets)) problems.add('secrets', 'must be an array');
  const maxDownstream = config.overload?.maxDownstreamConnections;
  if (maxDownstream !== undefined && !(Number.isInteger(maxDownstream) && maxDownstream > 0)) problems.add('overload.maxDownstreamConnections', 'must be a positive integer');
  if (problems.items.length) throw new ProxyConfigError(String(config.version), problems.items);

  const clusterNames = new Set<string>();
  config.clusters.forEach((c, i) => {
    if (clusterNames.has(c.name)) problems.add(`clusters[${i}].name`, `duplicate cluster ${JSON.stringify(c.name)}`);
    clusterNames.add(c.name);
  });
  config.endpoints.forEach((e, i) => {
    if (!clusterNames.has(e.clusterName)) problems.add(`endpoints[${i}].clusterName`, `no cluster named ${JSON.stringify(e.clusterName)}`);
  });

  const routeTables = new Map<string, CompiledRouteTable>();
  const previousRaw = new Map((previous?.config.routeConfigs ?? []).map((rc) => [rc.name, rc]));
  config.routeConfigs.forEach((rc, i) => {
    if (routeTables.has(rc.name)) problems.add(`routeConfigs[${i}].name`, `duplicate route table ${JSON.stringify(rc.name)}`);
    const before = previousRaw.get(rc.name);
    const reuse = before && previous?.routeTables.get(rc.name);
    if (reuse && JSON.stringify(before) === JSON.stringify(rc)) {
      routeTables.set(rc.name, reuse);
      return;
    }
    routeTables.set(rc.name, compileRouteTable(rc, `routeConfigs[${i}]`, problems, (name) => clusterNames.has(name), (name, c, path, into) => compilePerRouteConfig(registry, name, c, path, into)));
  });

  const secretNames = new Set<string>();
  (config.secrets ?? []).forEach((s, i) => {
    if (secretNames.has(s.name)) problems.add(`secrets[${i}].name`, `duplicate secret ${JSON.stringify(s.name)}`);
    secretNames.add(s.name);
  });
  if (config.peerMetadataKey !== undefined) {
    // A key the proxy cannot use is refused, never taken for no key (every peer would turn unknown).
    const secret = (config.secrets ?? []).find((s) => s.name === config.peerMetadataKey);
    const bytes = typeof secret?.genericSecret === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(secret.genericSecret) ? Buffer.from(secret.genericSecret, 'base64').length : 0;
    if (!secret) problems.add('peerMetadataKey', `no secret named ${JSON.stringify(config.peerMetadataKey)}`);
    else if (bytes < MIN_MESH_KEY_BYTES) problems.add('peerMetadataKey', `secret ${JSON.stringify(secret.name)} needs a base64 genericSecret of at least ${MIN_MESH_KEY_BYTES} bytes`);
  }

  const listenerNames = new Set<string>();
  const addresses = new Set<string>();
  const filterChains = new Map<string, CompiledFilterChain>();
  const networkFilters = new Map<string, readonly NetworkFilter[]>();
  config.listeners.forEach((l, i) => {
    const p = `listeners[${i}]`;
    if (listenerNames.has(l.name)) problems.add(`${p}.name`, `duplicate listener ${JSON.stringify(l.name)}`);
    listenerNames.add(l.name);
    const port = l.address?.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) problems.add(`${p}.address.port`, `${port} is not a port`);
    if (l.maxConnections !== undefined && !(Number.isInteger(l.maxConnections) && l.maxConnections > 0)) problems.add(`${p}.maxConnections`, 'must be a positive integer');
    const key = `${l.address?.host}:${port}`;
    if (port !== 0 && addresses.has(key)) problems.add(`${p}.address`, `${key} is used by two listeners`);
    addresses.add(key);
    for (const [field, message] of filterChainProblems(l, config.secrets)) problems.add(`${p}${field}`, message);
    if (l.networkFilters !== undefined) {
      // Refused rather than ignored: a policy that is not run must not look as if it were.
      if (!Array.isArray(l.networkFilters)) problems.add(`${p}.networkFilters`, 'must be an array');
      else if (l.protocol !== 'tcp') problems.add(`${p}.networkFilters`, 'network filters run on tcp listeners; an http listener lists its filters (authorization too) in http.filters');
      else if (l.networkFilters.length > 0) networkFilters.set(l.name, compileNetworkFilters(l.networkFilters, networkRegistry, `${p}.networkFilters`, problems));
    }
    if (l.protocol === 'http') {
      const h = l.http;
      if (!h) problems.add(`${p}.http`, 'an http listener needs http settings');
      else {
        if (!h.routeConfigByPort && h.routeConfigName === undefined) problems.add(`${p}.http`, 'needs routeConfigName or routeConfigByPort');
        if (h.routeConfigName !== undefined && !routeTables.has(h.routeConfigName)) problems.add(`${p}.http.routeConfigName`, `no route table named ${JSON.stringify(h.routeConfigName)}`);
        (l.filterChains ?? []).forEach((c, j) => {
          if (c.routeConfigName !== undefined && !routeTables.has(c.routeConfigName)) problems.add(`${p}.filterChains[${j}].routeConfigName`, `no route table named ${JSON.stringify(c.routeConfigName)}`);
        });
        if (h.fallbackRouteConfigName !== undefined && !routeTables.has(h.fallbackRouteConfigName)) problems.add(`${p}.http.fallbackRouteConfigName`, `no route table named ${JSON.stringify(h.fallbackRouteConfigName)}`);
        if (h.maxRequestHeadersKb !== undefined && !(h.maxRequestHeadersKb >= 1 && h.maxRequestHeadersKb <= 8192)) problems.add(`${p}.http.maxRequestHeadersKb`, 'must be in 1..8192');
        if (h.maxBufferedBodyBytes !== undefined && !(h.maxBufferedBodyBytes >= 0)) problems.add(`${p}.http.maxBufferedBodyBytes`, 'must be >= 0');
        if (h.filters !== undefined && !Array.isArray(h.filters)) problems.add(`${p}.http.filters`, 'must be an array');
        else filterChains.set(l.name, compileFilterChain(h.filters, registry, `${p}.http.filters`, l.direction, problems));
      }
    } else if (l.protocol === 'tcp') {
      // Each chain may carry its own TCP routes (FilterChain.tcp); the listener's serve the others.
      const chainTcp = (l.filterChains ?? []).flatMap((c, i) => (c.tcp ? [{ at: `${p}.filterChains[${i}].tcp`, tcp: c.tcp }] : []));
      const everyChainRouted = l.filterChains !== undefined && l.filterChains.length > 0 && l.filterChains.every((c) => c.tcp !== undefined);
      if (!l.tcp && !everyChainRouted) problems.add(`${p}.tcp`, 'a tcp listener needs tcp settings (or every filter chain its own)');
      for (const { at, tcp } of [...(l.tcp ? [{ at: `${p}.tcp`, tcp: l.tcp }] : []), ...chainTcp]) tcp.routes.forEach((r, j) => {
        const total = r.destinations.reduce((n, d) => n + (d.weight > 0 ? d.weight : 0), 0);
        if (total <= 0) problems.add(`${at}.routes[${j}].destinations`, 'the weights add up to 0');
        r.destinations.forEach((d, k) => { if (!(d.weight >= 0)) problems.add(`${at}.routes[${j}].destinations[${k}].weight`, 'must be >= 0'); });
      });
    } else {
      problems.add(`${p}.protocol`, `unknown protocol ${JSON.stringify(l.protocol)}`);
    }
  });
  if (problems.items.length) throw new ProxyConfigError(config.version, problems.items);
  return { version: config.version, config, routeTables, filterChains, networkFilters };
}

/** A healthy (else any) endpoint of a cluster in the config in force, for the ext_authz check. */
function healthyEndpoint(snapshot: Snapshot | undefined, cluster: string): { host: string; port: number } | undefined {
  const endpoints = snapshot?.config.endpoints.find((e) => e.clusterName === cluster)?.endpoints ?? [];
  return (endpoints.find((e) => e.health === 'HEALTHY' || e.health === 'UNKNOWN') ?? endpoints[0])?.address;
}
