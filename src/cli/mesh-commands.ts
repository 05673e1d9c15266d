/**
 * Commands that look at or act on a running embedded mesh: status, proxy-status,
 * proxy-config, exec and down. They find the mesh through its state directory
 * (`.sinew/mesh.json`) or `--server`.
 */
import { spawn } from 'node:child_process';
import type { MeshStatus, ReplicaStatus, WorkloadStatus } from '../api/mesh-status.js';
import type { ProxyConfig } from '../api/proxy-config.js';
import { SinewError } from '../core/errors.js';
import { findLeftovers, isAlive, liveRunnerPid, readMeshFile, removeMeshFile, stopLeftovers } from '../mesh/state.js';
import { outboundProxyEnv } from '../mesh/launch.js';
import { callControlPlane, connectControlPlane, stateDir } from './client.js';
import { stringify as stringifyYaml } from 'yaml';
import type { SecretsDescription } from '../proxy/secrets/mesh-secrets.js';
import { table, type Io } from './output.js';
import type { ConnectOptions } from './config-commands.js';

export async function fetchStatus(options: ConnectOptions): Promise<MeshStatus> {
  const cp = await connectControlPlane(options);
  const res = await callControlPlane(cp, '/api/v1/status');
  if (res.status !== 200) throw new SinewError('SNW_ERR_STATUS', `the control plane answered ${res.status} to a status request`);
  return res.body as MeshStatus;
}

export async function runStatus(options: ConnectOptions & { output: string }, io: Io): Promise<number> {
  const status = await fetchStatus(options);
  if (options.output === 'json') {
    io.out(JSON.stringify(status, null, 2) + '\n');
    return 0;
  }
  const rows = (kind: string, list: WorkloadStatus[]) =>
    list.flatMap((w) =>
      w.replicas.map((r) => [kind, `${w.namespace}/${w.name}`, r.id, r.ready ? 'ready' : 'not ready', String(r.restarts ?? 0), r.app ?? '-', r.proxy.inbound ?? '-', r.proxy.outbound ?? '-', r.proxy.admin, r.proxy.metrics ?? '-', `${r.proxy.sync}${r.proxy.configVersion ? ' ' + r.proxy.configVersion : ''}`, r.proxy.certificate ? r.proxy.certificate.notAfter.replace(/\.\d{3}Z$/, 'Z') : '-']),
    );
  // CERT EXPIRES: the workload certificate the mesh CA last issued to the proxy (-o json: its identity, serial and root too).
  io.out(table(['KIND', 'WORKLOAD', 'REPLICA', 'STATUS', 'RESTARTS', 'APP', 'INBOUND', 'OUTBOUND', 'ADMIN', 'METRICS', 'CONFIG', 'CERT EXPIRES'], [...rows('gateway', status.gateways), ...rows('workload', status.workloads)]));
  const notReady = [...status.gateways, ...status.workloads].flatMap((w) => w.replicas.filter((r) => !r.ready));
  if (notReady.length) io.out(`\nnot ready:\n${notReady.map((r) => `  ${r.id}: ${r.reason ?? 'starting'}`).join('\n')}\n`);
  const cp = status.controlPlane;
  io.out(`\ncontrol plane: api ${cp.api}, push ${cp.push}${cp.monitoring ? `, metrics ${cp.monitoring}` : ''}; config revision ${cp.configRevision}; ${cp.proxiesConnected} proxies connected\n`);
  return 0;
}

export async function runProxyStatus(options: ConnectOptions & { output: string }, io: Io): Promise<number> {
  const cp = await connectControlPlane(options);
  const res = await callControlPlane(cp, '/api/v1/proxies');
  const proxies = res.body as { id: string; versionSent?: string; versionAcked?: string; sync: string; lastNack?: string }[];
  if (options.output === 'json') io.out(JSON.stringify(proxies, null, 2) + '\n');
  else io.out(table(['PROXY', 'SENT', 'ACKED', 'STATUS', 'LAST ERROR'], proxies.map((p) => [p.id, p.versionSent ?? '-', p.versionAcked ?? '-', p.sync, p.lastNack ?? ''])));
  return proxies.every((p) => p.sync === 'SYNCED') ? 0 : 1;
}

/** Finds a replica by workload name (first replica) or replica id. */
function findReplica(status: MeshStatus, name: string): { workload: WorkloadStatus; replica: ReplicaStatus } {
  for (const w of [...status.workloads, ...status.gateways]) {
    for (const r of w.replicas) {
      if (r.id === name || w.name === name || `${w.namespace}/${w.name}` === name) return { workload: w, replica: r };
    }
  }
  const known = [...status.workloads, ...status.gateways].map((w) => w.name).join(', ');
  throw new SinewError('SNW_ERR_NO_WORKLOAD', `no workload or replica named "${name}"; running: ${known || 'none'}`);
}

export const proxyConfigSections = ['listeners', 'routes', 'clusters', 'endpoints', 'secrets', 'all'] as const;

export async function runProxyConfig(options: ConnectOptions & { workload: string; section: string; output: string }, io: Io): Promise<number> {
  const status = await fetchStatus(options);
  const { replica } = findReplica(status, options.workload);
  // istioctl's singular spelling works too.
  if (options.section === 'secrets' || options.section === 'secret') return printSecrets(replica, options.output, io);
  const res = await fetch(`http://${replica.proxy.admin}/config_dump`);
  const dump = (await res.json()) as { config?: ProxyConfig } & Partial<ProxyConfig>;
  const config = (dump.config ?? dump) as ProxyConfig;
  const section = options.section;
  const pick: Record<string, unknown> = {
    listeners: config.listeners,
    routes: config.routeConfigs,
    clusters: config.clusters,
    endpoints: config.endpoints,
    all: config,
  };
  if (!(section in pick)) {
    io.err(`unknown section "${section}"; use one of: ${proxyConfigSections.join(', ')}\n`);
    return 2;
  }
  if (options.output === 'json') {
    io.out(JSON.stringify(pick[section], null, 2) + '\n');
    return 0;
  }
  if (options.output === 'yaml') {
    io.out(stringifyYaml(pick[section]));
    return 0;
  }
  switch (section) {
    case 'listeners':
      io.out(table(['NAME', 'ADDRESS', 'DIRECTION', 'PROTOCOL', 'ROUTES'], config.listeners.map((l) => [l.name, `${l.address.host}:${l.address.port}`, l.direction, l.protocol, l.http?.routeConfigByPort ? 'by port' : l.http?.routeConfigName ?? '-'])));
      break;
    case 'routes':
      io.out(
        table(
          ['ROUTE TABLE', 'VIRTUAL HOST', 'DOMAINS', 'ROUTE', 'ACTION'],
          config.routeConfigs.flatMap((rc) =>
            rc.virtualHosts.flatMap((vh) =>
              vh.routes.map((r) => [rc.name, vh.name, vh.domains.slice(0, 3).join(',') + (vh.domains.length > 3 ? ',...' : ''), r.name, r.action.kind === 'route' ? r.action.destinations.map((d) => `${d.cluster}${r.action.kind === 'route' && r.action.destinations.length > 1 ? `(${d.weight})` : ''}`).join(' ') : r.action.kind]),
            ),
          ),
        ),
      );
      break;
    case 'clusters':
      io.out(table(['CLUSTER', 'KIND', 'PROTOCOL', 'LB'], config.clusters.map((c) => [c.name, c.kind, c.protocol, c.lb.policy])));
      break;
    case 'endpoints':
      io.out(table(['ENDPOINT', 'HEALTH', 'CLUSTER'], config.endpoints.flatMap((e) => e.endpoints.map((ep) => [`${ep.address.host}:${ep.address.port}`, ep.health, e.clusterName]))));
      break;
    default:
      io.out(JSON.stringify(config, null, 2) + '\n');
  }
  return 0;
}

/**
 * `sinew proxy-config <workload> secrets`, as `istioctl proxy-config secret`: the proxy's
 * workload certificate and trust bundle as its admin port's /certs shows them (identities,
 * serials, validity; never a key).
 */
async function printSecrets(replica: ReplicaStatus, output: string, io: Io): Promise<number> {
  const res = await fetch(`http://${replica.proxy.admin}/certs`);
  if (!res.ok) throw new SinewError('SNW_ERR_PROXY_ADMIN', `${replica.id}'s proxy answered ${res.status} on /certs; is it a current sinew proxy?`);
  const dump = (await res.json()) as SecretsDescription;
  if (output === 'json') {
    io.out(JSON.stringify(dump, null, 2) + '\n');
    return 0;
  }
  if (output === 'yaml') {
    io.out(stringifyYaml(dump));
    return 0;
  }
  io.out(
    table(
      ['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE', 'IDENTITY'],
      dump.secrets.map((s) => [s.name, s.type, s.status, s.valid ? 'true' : 'false', s.serial ?? '', s.notAfter ?? '', s.notBefore ?? '', s.identity ?? (s.roots ? `${s.roots.length} root${s.roots.length === 1 ? '' : 's'}` : '')]),
    ),
  );
  if (dump.lastError) io.out(`\nlast certificate request failed at ${dump.lastError.at}: ${dump.lastError.message}\n`);
  const files = dump.files ?? [];
  if (files.length) {
    // Certificates named by file: what uses one that cannot be read is not served (the error says why).
    io.out(
      '\n' +
        table(
          ['FILE SECRET', 'STATUS', 'FILES', 'ERROR'],
          files.map((f) => [f.name, f.loaded ? (f.error ? 'ACTIVE (last good)' : 'ACTIVE') : 'UNREADABLE', [f.files.certificateChain, f.files.privateKey, f.files.trustedCa].filter(Boolean).join(' '), f.error ?? '']),
        ),
    );
  }
  if (!dump.secrets.length && !files.length) io.out('\nthis proxy holds no secrets: its control plane has no CA, or its first config has not arrived\n');
  return 0;
}

/**
 * Runs a command with a workload's environment, so it calls the mesh as that workload
 * (through its sidecar's outbound listener), like `kubectl exec`.
 */
export async function runExec(options: ConnectOptions & { workload: string; command: string[] }, io: Io): Promise<number> {
  const status = await fetchStatus(options);
  const { workload, replica } = findReplica(status, options.workload);
  if (!replica.proxy.outbound) throw new SinewError('SNW_ERR_NO_OUTBOUND', `${replica.id} has no outbound listener`);
  const [cmd, ...args] = options.command;
  if (!cmd) {
    io.err('usage: sinew exec <workload> -- <command...>\n');
    return 2;
  }
  const child = spawn(cmd, args, {
    stdio: 'inherit',
    env: { ...process.env, ...outboundProxyEnv(replica.proxy.outbound), SINEW_WORKLOAD: workload.name, SINEW_NAMESPACE: workload.namespace },
  });
  return new Promise((resolve) => {
    child.once('error', (err) => {
      io.err(`cannot run "${cmd}": ${err.message}\n`);
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 1)));
  });
}

/**
 * Stops the mesh that `sinew up` started from this state directory and waits until it is gone.
 * The runner stops what it started; when the runner is gone (killed with kill -9, say), the
 * processes it wrote down in the state directory are stopped from here.
 */
export async function runDown(options: { stateDir?: string; timeoutMs?: number }, io: Io): Promise<number> {
  const dir = stateDir(options.stateDir);
  const mesh = readMeshFile(dir);
  const runner = liveRunnerPid(dir);
  const timeoutMs = options.timeoutMs ?? 30_000;
  let exitCode = 0;
  if (runner !== undefined) {
    io.out(`stopping the mesh (pid ${runner})...\n`);
    process.kill(runner, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (isAlive(runner) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(runner)) {
      io.err(`the mesh did not stop within ${timeoutMs / 1000}s; killing it and every process it started\n`);
      process.kill(runner, 'SIGKILL');
      exitCode = 1;
    }
  }
  // Whatever is still running was left by a runner that is gone (or was just killed).
  const left = findLeftovers(dir);
  if (runner === undefined && !mesh && left.recorded.length === 0 && left.alive.length === 0) {
    io.out('no mesh is running here (nothing to stop)\n');
    return 0;
  }
  if (left.alive.length > 0) {
    const names = [...new Set(left.recorded.filter((r) => r.pid === undefined || left.alive.includes(r.pid)).map((r) => r.id))];
    const who = runner === undefined ? `the mesh${mesh ? ` (pid ${mesh.pid})` : ''} is not running, but ${plural(left.alive.length, 'process', 'processes')} it started ${left.alive.length === 1 ? 'is' : 'are'}` : `${plural(left.alive.length, 'process', 'processes')} of the mesh ${left.alive.length === 1 ? 'is' : 'are'} still running`;
    io.out(`${who}${names.length ? ` (${names.slice(0, 6).join(', ')}${names.length > 6 ? ', ...' : ''})` : ''}; stopping ${left.alive.length === 1 ? 'it' : 'them'}\n`);
  } else if (runner === undefined) {
    io.out(`the mesh${mesh ? ` (pid ${mesh.pid})` : ''} is not running and left nothing running; cleaning up its state\n`);
  }
  await stopLeftovers(dir);
  const still = findLeftovers(dir).alive;
  removeMeshFile(dir);
  if (still.length > 0) {
    io.err(`✘ could not stop ${plural(still.length, 'process', 'processes')} (pids ${still.join(', ')})\n`);
    return 1;
  }
  io.out('✔ mesh stopped\n');
  return exitCode;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
