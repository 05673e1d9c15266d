/**
 * The embedded mesh's runtime view: which replicas run where, as the runner reports them to
 * the control plane, and the status JSON that `sinew status -o json` prints — a stable
 * contract for scripts:
 *
 *   {"workloads": [{"name", "namespace", "labels", "replicas": [{"id", "app", "ready", "reason",
 *     "restarts", "proxy": {"inbound", "outbound", "admin", "metrics", "sync", "configVersion"}}]}],
 *    "gateways": [...same, and
 *     "proxy": {"servers": {"<Gateway server port>": "host:port", ...}}...],
 *    "controlPlane": {...}}
 *
 * Addresses are `host:port` strings. `metrics` is the proxy's Prometheus endpoint
 * (`/stats/prometheus`, Istio's 15090).
 */

/** One running replica (or gateway instance), as the runner registers it. */
export interface ReplicaRegistration {
  /** `<workload>-<index>`, e.g. `reviews-v1-0`; for gateways the gateway name. */
  id: string;
  /** The app's own address (`host:port` of its first port); absent for gateways. */
  app?: string;
  /** containerPort -> where the sidecar's inbound listener for it listens and where the app listens. */
  ports: Readonly<Record<string, { inbound: number; app: number }>>;
  host: string;
  /** Whether the replica can serve: its proxy holds its config and its app passed its readiness probe. */
  ready: boolean;
  /** Why it is not ready (absent when ready), e.g. `app: GET http://127.0.0.1:4000/health answered 503`. */
  reason?: string;
  /** How many times its processes (sidecar and app) were restarted. */
  restarts: number;
  proxy: ProxyAddresses;
}

export interface ProxyAddresses {
  /** Public inbound address (first port), `host:port`. */
  inbound?: string;
  /** Outbound (HTTP_PROXY) listener, `host:port`. */
  outbound?: string;
  admin: string;
  /** The proxy's Prometheus endpoint (`/stats/prometheus`, Istio's 15090), `host:port`. */
  metrics?: string;
  /** Gateways only: Gateway server port -> where the gateway listens for it, `host:port`. */
  servers?: Readonly<Record<string, string>>;
}

/** A workload (or gateway) and its replicas, as the runner registers them. */
export interface WorkloadRegistration {
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount?: string;
  kind: 'workload' | 'gateway';
  replicas: ReplicaRegistration[];
}

export type ProxySync = 'SYNCED' | 'STALE' | 'NACKED' | 'DISCONNECTED';

export interface ReplicaStatus {
  id: string;
  app?: string;
  ready: boolean;
  /** Why it is not ready (absent when ready). */
  reason?: string;
  restarts: number;
  proxy: ProxyAddresses & { configVersion?: string; sync: ProxySync; certificate?: ProxyCertificateStatus };
}

/** The workload certificate the mesh CA last issued to a proxy. */
export interface ProxyCertificateStatus {
  /** The SPIFFE ID in its URI SAN. */
  identity: string;
  /** Lower-case hex, as `sinew ca list` prints it. */
  serial: string;
  /** ISO 8601. */
  notBefore: string;
  notAfter: string;
  /** SHA-256 fingerprint of the root it chains to. */
  root: string;
}

export interface WorkloadStatus {
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  replicas: ReplicaStatus[];
}

export interface MeshStatus {
  workloads: WorkloadStatus[];
  gateways: WorkloadStatus[];
  controlPlane: {
    api: string;
    push: string;
    monitoring?: string;
    /** The web console, `host:port` (open it with the URL `sinew up` prints, which carries the token). */
    console?: string;
    configRevision: number;
    proxiesConnected: number;
  };
}
