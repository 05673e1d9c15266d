/**
 * Small builders for hand-written ProxyConfigs: what the compiler would produce for a few
 * Istio resources, written out so each test says exactly what the proxy is given.
 */
import type {
  Cluster,
  Endpoint,
  HttpConnectionManager,
  Listener,
  ProxyConfig,
  Route,
  RouteAction,
  RouteConfiguration,
  RouteMatch,
  VirtualHost,
  WeightedCluster,
} from '../../../src/api/proxy-config.js';

export function cluster(name: string, extra: Partial<Cluster> = {}): Cluster {
  return { name, kind: 'eds', protocol: 'http1', connectTimeoutMs: 1000, lb: { policy: 'ROUND_ROBIN' }, ...extra };
}

export function endpoint(port: number, labels: Record<string, string> = {}, extra: Partial<Endpoint> = {}): Endpoint {
  return { address: { host: '127.0.0.1', port }, labels, health: 'HEALTHY', ...extra };
}

export function to(clusterName: string, weight = 100, extra: Partial<WeightedCluster> = {}): WeightedCluster {
  return { cluster: clusterName, weight, ...extra };
}

export function routeTo(destinations: WeightedCluster[] | string, extra: Partial<Omit<RouteAction, 'kind'>> = {}): RouteAction {
  return { kind: 'route', destinations: typeof destinations === 'string' ? [to(destinations)] : destinations, ...extra };
}

export function route(name: string, match: RouteMatch, action: Route['action'], extra: Partial<Route> = {}): Route {
  return { name, match, action, ...extra };
}

export function vhost(name: string, domains: string[], routes: Route[], extra: Partial<VirtualHost> = {}): VirtualHost {
  return { name, domains, routes, ...extra };
}

export function table(name: string, virtualHosts: VirtualHost[]): RouteConfiguration {
  return { name, virtualHosts };
}

export function httpListener(name: string, http: HttpConnectionManager, extra: Partial<Listener> = {}): Listener {
  return { name, address: { host: '127.0.0.1', port: 0 }, direction: 'outbound', protocol: 'http', http: { http2: true, ...http }, ...extra };
}

/**
 * A mesh key for tests (deterministic: the tests' proxies share it, as the control plane
 * gives every proxy of a mesh the same one).
 */
export const TEST_MESH_KEY = Buffer.alloc(32, 0x5a).toString('base64');

/** `config` with the mesh key its proxy signs and checks the metadata exchange with (ProxyConfig.peerMetadataKey). */
export function withMeshKey(config: ProxyConfig, key = TEST_MESH_KEY): ProxyConfig {
  return { ...config, secrets: [...(config.secrets ?? []), { name: 'sinew-mesh-key', genericSecret: key }], peerMetadataKey: 'sinew-mesh-key' };
}

export interface ConfigParts {
  version?: string;
  listeners: Listener[];
  routeConfigs?: RouteConfiguration[];
  clusters?: Cluster[];
  endpoints?: { clusterName: string; endpoints: Endpoint[] }[];
}

export function proxyConfig(parts: ConfigParts): ProxyConfig {
  return {
    version: parts.version ?? 'v1',
    node: { id: 'sidecar~test.default', mode: 'sidecar', workload: 'test', namespace: 'default', labels: {} },
    listeners: parts.listeners,
    routeConfigs: parts.routeConfigs ?? [],
    clusters: parts.clusters ?? [],
    endpoints: parts.endpoints ?? [],
  };
}

/**
 * The common shape of the acceptance cases: one outbound listener (h1 + h2c) with one route
 * table `80` holding a virtual host `echo` (domains echo, echo:80) with the given routes, and
 * the clusters/endpoints given.
 */
export function meshConfig(routes: Route[], clusters: Cluster[], endpoints: { clusterName: string; endpoints: Endpoint[] }[], http: Partial<HttpConnectionManager> = {}): ProxyConfig {
  return proxyConfig({
    listeners: [httpListener('outbound', { routeConfigName: '80', acceptAbsoluteUri: true, ...http })],
    routeConfigs: [table('80', [vhost('echo', ['echo', 'echo:80'], routes)])],
    clusters,
    endpoints,
  });
}
