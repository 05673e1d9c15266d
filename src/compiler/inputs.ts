/**
 * What the compiler needs to build one proxy's configuration. Everything is data: the
 * caller (the control plane) takes the snapshots and supplies the version, so the compiler
 * stays a pure function (DESIGN.md; STYLE.md 4).
 */
import type { Resource } from '../api/resources/meta.js';
import type { Address, ProxyNode, TelemetrySettings } from '../api/proxy-config.js';
import type { RegistrySnapshot } from '../api/registry-snapshot.js';
import type { MeshTelemetryConfig } from '../api/mesh-config.js';

/** The validated configuration at one revision (any kinds; the compiler reads the networking ones). */
export interface ConfigSnapshot {
  resources: readonly Resource[];
}

export type OutboundTrafficPolicyMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** Istio MeshConfig fields the compiler uses. */
export interface MeshSettings {
  /** Namespace whose DestinationRules and Sidecar apply mesh-wide (Istio: `istio-system`). */
  rootNamespace: string;
  /** Istio's default is ALLOW_ANY. */
  outboundTrafficPolicy: OutboundTrafficPolicyMode;
  /** 0..100; Istio's default sampling is 1 %. */
  defaultTracingSampling?: number;
  /** DNS suffix of Kubernetes service names (Istio: `cluster.local`). */
  domainSuffix: string;
  /** Extra telemetry settings passed through to every proxy. */
  telemetry?: Omit<TelemetrySettings, 'tracingSamplingPercentage'>;
  /**
   * Where every proxy sends its spans (Istio's meshConfig extensionProviders for tracing);
   * the embedded control plane names its own OTLP receiver here.
   */
  tracingCollectors?: NonNullable<TelemetrySettings['tracingCollectors']>;
  /**
   * MeshConfig's telemetry fields (enableTracing, the legacy access log, extensionProviders,
   * defaultProviders), from the mesh config file (src/config/mesh-config.ts).
   */
  meshTelemetry?: MeshTelemetryConfig;
  /**
   * Sinew's, not Istio's: the mesh key (base64), which every proxy is given to sign and check
   * the metadata-exchange headers with (ProxyConfig.peerMetadataKey) until mutual TLS. The
   * control plane generates it once and keeps it in its state directory.
   */
  meshKey?: string;
  /**
   * The mesh CA hands every proxy a workload certificate (the control plane runs one): sidecars
   * and gateways then call sidecar-backed endpoints with Istio mutual TLS unless a
   * DestinationRule says otherwise (Istio's meshConfig.enableAutoMtls, on by default there),
   * and inbound ports accept it beside plaintext (PERMISSIVE). STRICT needs no flag: it admits
   * mutual TLS only, and without certificates nothing.
   */
  mtls?: boolean;
  /**
   * MeshConfig's `defaultConfig.gatewayTopology.numTrustedProxies`: at gateways, the client is
   * the X-Forwarded-For entry this many from the right (Envoy's xff_num_trusted_hops), which
   * `remote.ip` and `remoteIpBlocks` match; absent or 0: the connection's peer.
   */
  gatewayNumTrustedProxies?: number;
  /** MeshConfig's `pathNormalization.normalization` for inbound and gateway listeners; absent: BASE. */
  pathNormalization?: 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
  /**
   * MeshConfig's `dnsRefreshRate` (ms): how often the proxies resolve a DNS ServiceEntry's names
   * again when the answer carries no TTL; absent: Istio's 60 s.
   */
  dnsRefreshRateMs?: number;
}

export const DEFAULT_MESH: MeshSettings = Object.freeze({
  rootNamespace: 'istio-system',
  outboundTrafficPolicy: 'ALLOW_ANY',
  domainSuffix: 'cluster.local',
});

/**
 * One inbound port of a sidecar. In embedded mode the sidecar publishes `listen` in place of
 * the app's containerPort and forwards to the app's private `app` address.
 */
export interface InboundPort {
  /** The logical containerPort (what Services' targetPort names), e.g. 9080. */
  containerPort: number;
  listen: Address;
  app: Address;
  /** Layer the sidecar proxies this port at; default `http`. */
  protocol?: 'http' | 'http2' | 'tcp';
}

export interface ProxyPorts {
  /** The sidecar's outbound capture address (its HTTP_PROXY), e.g. 15001; a bare port means 127.0.0.1. */
  outbound?: Address | number;
  /** Inbound ports of a sidecar. */
  inbound?: readonly InboundPort[];
  /**
   * Gateways: Gateway server port -> the address actually listened on (embedded mode maps
   * port 80 to, say, 127.0.0.1:8080; a bare port means 127.0.0.1). Unmapped ports listen on
   * 0.0.0.0:<server port>.
   */
  gateway?: Readonly<Record<number, Address | number>>;
}

export interface CompileInput {
  version: string;
  config: ConfigSnapshot;
  registry: RegistrySnapshot;
  node: ProxyNode;
  mesh?: Partial<MeshSettings>;
  ports?: ProxyPorts;
}

/** A port or an address, as an address (bare ports are on the loopback interface). */
export function toAddress(a: Address | number): Address {
  return typeof a === 'number' ? { host: '127.0.0.1', port: a } : { host: a.host, port: a.port };
}
