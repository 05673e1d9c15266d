/**
 * How the runner starts each kind of process: the control plane, a proxy (sidecar or
 * gateway), an app. Every child environment is built here (`env`), so whatever every process
 * of the mesh must carry — the run's marker (state.ts), and a credential for the control
 * plane once it asks for one — is added in one place.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyNode } from '../api/proxy-config.js';
import type { ReplicaPlan } from './plan.js';
import { CONTROL_PLANE_DIR, MESH_RUN_ENV } from './state.js';
import type { ProcessSpec } from './supervisor.js';
import { CONTROL_PLANE_NODE_FLAGS } from '../core/node-flags.js';

/**
 * V8 flags of every proxy process `sinew up` starts (the benchmarks run proxies with the same).
 * A 2 MB semi-space caps the young generation that V8 otherwise grows to 16 MB per semi-space
 * under load. Against V8's default, a 4 MB cap lowered a proxy's peak RSS under load by ~22 MB
 * (91 -> 69 MB) for ~2% more CPU per request at saturation; 2 MB saves ~4 MB more at 1000
 * req/s for ~1% more again (measured side by side, two proxies on one core). 1 MB would save
 * ~2.5 MB more but cost ~4%, and V8's --optimize-for-size ~35%.
 *
 * One V8 worker thread instead of node's four: a sidecar gets about one core's worth of CPU,
 * where more threads for concurrent GC and compilation only take turns, and each thread costs
 * a stack and a malloc arena. It saves ~1.7 MB at 1000 req/s for ~1% more CPU per request at
 * saturation (within the noise of the side-by-side runs).
 */
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--v8-pool-size=1'];

/** The control plane's V8 flags live in core, where the Kubernetes install reads them too. */
export { CONTROL_PLANE_NODE_FLAGS };

/** Proxy variables of the runner's own environment never reach a child: HTTP_PROXY is the mesh's to set. */
const PROXY_VARIABLES = /^(https?_proxy|HTTPS?_PROXY|NO_PROXY|no_proxy|grpc_proxy|no_grpc_proxy)$/;

/**
 * What points an app's clients at its sidecar's outbound listener: plain HTTP as absolute-URI
 * requests (HTTP_PROXY), HTTPS and anything else as CONNECT tunnels (HTTPS_PROXY; curl's
 * `-p`), gRPC through grpc_proxy (grpc-js and gRPC core tunnel with CONNECT). Nothing bypasses
 * it (NO_PROXY empty): under REGISTRY_ONLY the sidecar decides what leaves.
 */
export function outboundProxyEnv(outboundProxy: string): Record<string, string> {
  const url = `http://${outboundProxy}`;
  return { HTTP_PROXY: url, http_proxy: url, HTTPS_PROXY: url, https_proxy: url, grpc_proxy: url, NO_PROXY: '', no_proxy: '' };
}

export interface ControlPlanePorts {
  api: number;
  push: number;
  monitoring: number;
  /** The web console (its own port, served by the control plane). */
  console: number;
}

export class MeshLauncher {
  constructor(
    private readonly options: {
      /** bin/sinew.js of this installation. */
      sinew: string;
      stateDir: string;
      host: string;
      runId: string;
      controlPlane: ControlPlanePorts;
      /** Settings passed on to `sinew controlplane` (sampling, `--mesh-config`). */
      controlPlaneArgs: readonly string[];
    },
  ) {}

  get pushAddress(): string {
    return `${this.options.host}:${this.options.controlPlane.push}`;
  }

  /** The environment of every process the mesh starts: the runner's own, the run's marker, then `extra`. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !PROXY_VARIABLES.test(k)) env[k] = v;
    return { ...env, [MESH_RUN_ENV]: this.options.runId, ...extra };
  }

  controlPlane(): ProcessSpec {
    const { sinew, stateDir, host, controlPlane: cp } = this.options;
    return {
      id: 'control-plane',
      command: process.execPath,
      args: [...CONTROL_PLANE_NODE_FLAGS, sinew, 'controlplane', '--state-dir', join(stateDir, CONTROL_PLANE_DIR), '--host', host, '--api-port', String(cp.api), '--push-port', String(cp.push), '--monitoring-port', String(cp.monitoring), '--console-port', String(cp.console), ...this.options.controlPlaneArgs],
      cwd: process.cwd(),
      env: this.env({ SINEW_LOG_LEVEL: process.env.SINEW_LOG_LEVEL ?? 'warn' }),
    };
  }

  /**
   * A proxy that takes its config from the control plane, with its admin port and its
   * Prometheus port (Istio's 15090, `/stats/prometheus`); its log lines are prefixed
   * `<label>/proxy`. Writes the node file it reads, and its push credential (minted by the
   * control plane for this node) in a file only its owner can read (`--token-file`).
   */
  proxy(label: string, node: ProxyNode, ports: { admin: number; metrics: number }, credential: string): ProcessSpec {
    const { sinew, stateDir, host } = this.options;
    const dir = join(stateDir, 'proxies');
    const base = join(dir, node.id.replace(/[^\w.-]/g, '_'));
    const nodeFile = `${base}.json`;
    const tokenFile = `${base}.token`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(nodeFile, JSON.stringify(node, null, 2));
    // Created afresh and exclusively, so it is never briefly readable by others.
    rmSync(tokenFile, { force: true });
    writeFileSync(tokenFile, credential, { mode: 0o600, flag: 'wx' });
    return {
      id: `${label}/proxy`,
      command: process.execPath,
      args: [...PROXY_NODE_FLAGS, sinew, 'proxy', '--xds', this.pushAddress, '--node', nodeFile, '--token-file', tokenFile, '--admin-port', String(ports.admin), '--metrics-port', String(ports.metrics), '--host', host],
      cwd: process.cwd(),
      env: this.env({ SINEW_LOG_LEVEL: process.env.SINEW_LOG_LEVEL ?? 'warn' }),
    };
  }

  /**
   * A replica's app: PORT and HOST to listen on, who it is, and HTTP_PROXY (and the rest of
   * outboundProxyEnv) pointing at its sidecar. An app with several container ports learns
   * where each is as PORT_<containerPort> (PORT is the first one's).
   */
  app(plan: ReplicaPlan, appPort: number | undefined, outboundProxy: string, appPorts: Readonly<Record<string, number>> = {}): ProcessSpec {
    return {
      id: plan.label,
      command: plan.command,
      args: plan.args,
      cwd: plan.cwd,
      env: this.env({
        ...plan.env,
        ...Object.fromEntries(Object.entries(appPorts).map(([containerPort, port]) => [`PORT_${containerPort}`, String(port)])),
        PORT: appPort !== undefined ? String(appPort) : '',
        HOST: this.options.host,
        SINEW_WORKLOAD: plan.workload.metadata.name,
        SINEW_NAMESPACE: plan.namespace,
        ...outboundProxyEnv(outboundProxy),
      }),
    };
  }
}
