/**
 * What `sinew up` will run: each Workload replica with its ports, environment and command,
 * worked out from the manifests before anything starts (so a bad manifest fails fast).
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Resource } from '../api/resources/meta.js';

/** The Workload spec fields the runner reads (the full schema lives in src/api/resources/workload.ts). */
export interface WorkloadSpecView {
  command: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  replicas?: number;
  serviceAccount?: string;
  workingDir?: string;
  readinessProbe?: {
    httpGet?: { path?: string; port?: number | string };
    tcpSocket?: { port?: number | string };
    initialDelaySeconds?: number;
    periodSeconds?: number;
    timeoutSeconds?: number;
    failureThreshold?: number;
    successThreshold?: number;
  };
}

export interface ReplicaPlan {
  /** `<workload>-<index>`. */
  id: string;
  /**
   * The replica's name among the processes `sinew up` runs: its id, or `<id>.<namespace>` when a
   * workload of the same name runs in another namespace too (the suite's mesh tests have an
   * `echo-v1` in two namespaces), as two pods of one name live in two namespaces in Kubernetes.
   */
  label: string;
  index: number;
  workload: Resource<WorkloadSpecView>;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  command: string;
  args: string[];
  cwd: string;
  /** Environment from the manifest (the runner adds PORT, HOST, HTTP_PROXY, ...). */
  env: Record<string, string>;
  containerPorts: number[];
  probe?: ProbePlan;
}

export interface ProbePlan {
  kind: 'http' | 'tcp';
  path: string;
  /** The containerPort probed (mapped to the app's real port at run time). */
  containerPort: number;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
}

/**
 * Expands every Workload into its replicas. Relative paths in `command` (`./reviews.ts`,
 * `bin/app`) resolve against the manifest's directory, as the runner contract says.
 */
export function planReplicas(resources: readonly Resource[]): ReplicaPlan[] {
  const plans: ReplicaPlan[] = [];
  for (const resource of resources) {
    if (resource.kind !== 'Workload') continue;
    const workload = resource as Resource<WorkloadSpecView>;
    const spec = workload.spec;
    const manifestDir = workload.source?.file && workload.source.file !== '<stdin>' ? dirname(resolve(workload.source.file)) : process.cwd();
    const cwd = spec.workingDir ? resolve(manifestDir, spec.workingDir) : manifestDir;
    const [command, ...commandArgs] = spec.command;
    const containerPorts = (spec.ports ?? []).map((p) => p.containerPort);
    const env: Record<string, string> = {};
    for (const e of spec.env ?? []) env[e.name] = e.value ?? '';
    const probe = planProbe(spec, containerPorts);
    const replicas = spec.replicas ?? 1;
    for (let index = 0; index < replicas; index++) {
      plans.push({
        id: `${workload.metadata.name}-${index}`,
        label: `${workload.metadata.name}-${index}`,
        index,
        workload,
        namespace: workload.metadata.namespace,
        labels: { ...(workload.metadata.labels ?? {}) },
        serviceAccount: spec.serviceAccount ?? 'default',
        command: resolveCommand(command, manifestDir),
        args: [...commandArgs, ...(spec.args ?? [])].map((a) => resolveRelativeArg(a, manifestDir)),
        cwd,
        env,
        containerPorts,
        probe,
      });
    }
  }
  const namespacesOf = new Map<string, Set<string>>();
  for (const p of plans) namespacesOf.set(p.id, (namespacesOf.get(p.id) ?? new Set()).add(p.namespace));
  for (const p of plans) if (namespacesOf.get(p.id)!.size > 1) p.label = `${p.id}.${p.namespace}`;
  return plans;
}

function planProbe(spec: WorkloadSpecView, containerPorts: number[]): ProbePlan | undefined {
  const p = spec.readinessProbe;
  if (!p) return undefined;
  const portOf = (port: number | string | undefined): number => {
    if (typeof port === 'number') return port;
    const named = spec.ports?.find((cp) => cp.name === port);
    return named?.containerPort ?? containerPorts[0];
  };
  const common = {
    initialDelayMs: (p.initialDelaySeconds ?? 0) * 1000,
    periodMs: (p.periodSeconds ?? 1) * 1000,
    timeoutMs: (p.timeoutSeconds ?? 1) * 1000,
    failureThreshold: p.failureThreshold ?? 3,
    successThreshold: p.successThreshold ?? 1,
  };
  if (p.httpGet) return { kind: 'http', path: p.httpGet.path ?? '/', containerPort: portOf(p.httpGet.port), ...common };
  if (p.tcpSocket) return { kind: 'tcp', path: '', containerPort: portOf(p.tcpSocket.port), ...common };
  return undefined;
}

/** `./app.js` and `bin/app` are relative to the manifest; bare names (`node`) are looked up on PATH. */
function resolveCommand(command: string, manifestDir: string): string {
  if (isAbsolute(command) || !command.includes('/')) return command;
  return resolve(manifestDir, command);
}

/** Arguments that are explicit relative paths (`./x`, `../x`) resolve against the manifest's directory. */
function resolveRelativeArg(arg: string, manifestDir: string): string {
  return arg.startsWith('./') || arg.startsWith('../') ? resolve(manifestDir, arg) : arg;
}
