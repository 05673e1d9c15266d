/**
 * The registry snapshot: the services and endpoints of the mesh at one moment, as built by
 * `src/registry` and read by `src/compiler`. It lives in `api` because it is the contract
 * between those two parts, which may not import each other (DESIGN.md import directions).
 * Plain, JSON-serialisable, frozen data.
 */

/** Istio's protocol names (pilot/pkg/model protocol.Instance). `UNSUPPORTED` = not declared (Istio sniffs). */
export type ServiceProtocol =
  | 'HTTP'
  | 'HTTP2'
  | 'GRPC'
  | 'GRPC-WEB'
  | 'HTTPS'
  | 'TLS'
  | 'TCP'
  | 'MONGO'
  | 'REDIS'
  | 'MYSQL'
  | 'UDP'
  | 'UNSUPPORTED';

export interface RegistryServicePort {
  name?: string;
  port: number;
  /** Kubernetes targetPort (number or containerPort name), ServiceEntry targetPort. */
  targetPort?: number | string;
  protocol: ServiceProtocol;
}

/** How a service's endpoints are found (ServiceEntry resolution; Kubernetes Services are `STATIC`-like `EDS`). */
export type ServiceResolution = 'EDS' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';

export interface RegistryEndpoint {
  /** IP address, or a hostname for DNS-resolved ServiceEntry endpoints. */
  address: string;
  /** The port to connect to (in embedded mode: the public inbound port of the replica's sidecar). */
  port: number;
  labels: Readonly<Record<string, string>>;
  health: 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN';
  /** `spiffe://<trust domain>/ns/<ns>/sa/<sa>`. */
  identity?: string;
  /**
   * `istio` when a sidecar is in front of the endpoint (Istio's label
   * `security.istio.io/tlsMode: istio`): every replica the embedded runner starts, a pod the
   * injector labelled, a WorkloadEntry labelled so. Sidecars call it with Istio mutual TLS.
   */
  tlsMode?: 'istio';
  /** The workload's own port behind `port` (its containerPort): what PeerAuthentication's portLevelMtls names. */
  targetPort?: number;
  workload?: { name: string; namespace: string };
  /** `region/zone/subzone`. */
  locality?: string;
  weight?: number;
  /** The Workload's readinessProbe, when it has one (http probes only). */
  healthCheck?: { httpPath?: string; port?: number; intervalMs: number; timeoutMs: number; unhealthyThreshold: number; healthyThreshold: number };
}

export interface RegistryService {
  /** Fully qualified host: `reviews.default.svc.cluster.local`, or a ServiceEntry host. */
  hostname: string;
  namespace: string;
  /** Name of the resource that declared it (Service or ServiceEntry). */
  name: string;
  source: 'Service' | 'ServiceEntry';
  ports: readonly RegistryServicePort[];
  resolution: ServiceResolution;
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  /** Visibility (Service annotation `networking.istio.io/exportTo`, ServiceEntry `exportTo`); absent = everywhere. */
  exportTo?: readonly string[];
  addresses?: readonly string[];
  labels: Readonly<Record<string, string>>;
  /** Endpoints per service port number (as a string key, for JSON). */
  endpoints: Readonly<Record<string, readonly RegistryEndpoint[]>>;
}

export interface RegistrySnapshot {
  /** Increases with every change. */
  revision: number;
  services: readonly RegistryService[];
}
