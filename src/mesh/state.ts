/**
 * The state directory of an embedded mesh (`.sinew` by default): how `sinew up`, `sinew down`
 * and every other command find a mesh, and how `sinew down` finds every process a mesh
 * started even when `sinew up` itself died (kill -9, an out-of-memory kill, a closed laptop).
 *
 *   mesh.json              the runner: its pid, the run's id, the control plane's addresses
 *   processes/<id>.json    one per process the runner started: written before the spawn,
 *                          completed with the pid right after it, removed once it is stopped
 *   proxies/<node>.json    the node description each proxy is started with
 *   control-plane/         the control plane's own state (config in force, registrations)
 *
 * Every process the runner starts carries `SINEW_MESH_RUN=<run id>` in its environment, and
 * so do their descendants. On Linux that marker confirms that a recorded pid is still ours
 * before it is signalled (pids are reused), and finds processes whose record is missing: one
 * spawned in the instant between its record and its pid, or a grandchild that left its
 * process group.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcessRecorder, ProcessSpec } from './supervisor.js';

export const MESH_FILE = 'mesh.json';
export const PROCESSES_DIR = 'processes';
export const CONTROL_PLANE_DIR = 'control-plane';
/** The control plane's registrations (replica addresses) inside its state directory (controlplane/daemon.ts). */
export const REGISTRATIONS_FILE = 'registrations.json';
/** The environment variable that marks every process of one run of `sinew up`. */
export const MESH_RUN_ENV = 'SINEW_MESH_RUN';

export interface MeshFile {
  /** The `sinew up` process. */
  pid: number;
  /** When that process started (Linux: clock ticks since boot), so a reused pid is not taken for it. */
  pidStartTime?: string;
  /** Unique per run of `sinew up`; every process it starts carries it in MESH_RUN_ENV. */
  runId: string;
  startedAt: string;
  /** `tokenFile`: the control plane's API token (absent in files of older meshes: `<dir>/control-plane/api-token`). */
  controlPlane: { api: string; push: string; monitoring?: string; tokenFile?: string };
}

/** What the state directory says about one process the runner started. */
export interface RecordedProcess {
  id: string;
  runId: string;
  /** Absent when the runner died between writing the record and spawning the process. */
  pid?: number;
  command: string;
  args: readonly string[];
  launchedAt: string;
}

export function newRunId(): string {
  return randomUUID();
}

/** Writes a small file so that readers see the old or the new content, never a torn one. */
function writeFileAtomicSync(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function readMeshFile(stateDir: string): MeshFile | undefined {
  return readJson<MeshFile>(join(stateDir, MESH_FILE));
}

/** Written synchronously: the runner records itself before it starts anything. */
export function writeMeshFile(stateDir: string, mesh: MeshFile): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileAtomicSync(join(stateDir, MESH_FILE), JSON.stringify(mesh, null, 2) + '\n');
}

export function removeMeshFile(stateDir: string): void {
  rmSync(join(stateDir, MESH_FILE), { force: true });
}

/** Alive and not a zombie (a zombie has exited; only its parent has not reaped it yet). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but is not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true; // No /proc (not Linux): kill(0) is all there is.
  }
}

/** When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined off Linux. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The pid of the live `sinew up` that owns this state directory, if any. */
export function liveRunnerPid(stateDir: string): number | undefined {
  const mesh = readMeshFile(stateDir);
  if (!mesh || mesh.pid === process.pid || !isAlive(mesh.pid)) return undefined;
  // The runner died and its pid went to another process.
  if (mesh.pidStartTime !== undefined && processStartTime(mesh.pid) !== mesh.pidStartTime) return undefined;
  return mesh.pid;
}

// === the process registry ===

const fileNameOf = (id: string) => `${id.replace(/[^\w.-]/g, '_')}.json`;

/**
 * Writes down every process the supervisor starts (a ProcessRecorder). Writes are
 * synchronous on purpose: a record must be on disk before the spawn that it describes, and
 * the pid must follow in the same turn of the event loop, so that no kill of the runner can
 * fall between a process starting and its record.
 */
export class ProcessRegistry implements ProcessRecorder {
  private readonly dir: string;

  constructor(stateDir: string, private readonly runId: string) {
    this.dir = join(stateDir, PROCESSES_DIR);
    mkdirSync(this.dir, { recursive: true });
  }

  launching(spec: ProcessSpec): void {
    this.write({ id: spec.id, runId: this.runId, command: spec.command, args: spec.args, launchedAt: new Date().toISOString() });
  }

  launched(spec: ProcessSpec, pid: number): void {
    this.write({ id: spec.id, runId: this.runId, pid, command: spec.command, args: spec.args, launchedAt: new Date().toISOString() });
  }

  ended(spec: ProcessSpec): void {
    try {
      unlinkSync(join(this.dir, fileNameOf(spec.id)));
    } catch {
      // Never written, or already gone.
    }
  }

  private write(record: RecordedProcess): void {
    writeFileAtomicSync(join(this.dir, fileNameOf(record.id)), JSON.stringify(record) + '\n');
  }
}

export function readRecordedProcesses(stateDir: string): RecordedProcess[] {
  const dir = join(stateDir, PROCESSES_DIR);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((n) => readJson<RecordedProcess>(join(dir, n))).filter((r): r is RecordedProcess => r !== undefined && typeof r.id === 'string');
}

// === finding and stopping what a run left ===

const procAvailable = () => existsSync('/proc/self/environ');

/** Pids (not this process) whose environment carries one of the run ids. Linux only (/proc). */
function pidsCarrying(runIds: ReadonlySet<string>): number[] {
  if (runIds.size === 0 || !procAvailable()) return [];
  const markers = [...runIds].map((id) => `${MESH_RUN_ENV}=${id}`);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (markers.some((m) => env.includes(m)) && isAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

/** Whether `pid` is a live process of the run `runId` (on Linux, checked by its marker: pids are reused). */
function belongsToRun(pid: number, runId: string): boolean {
  if (!isAlive(pid)) return false;
  if (!procAvailable()) return true;
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${MESH_RUN_ENV}=${runId}`);
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    // Recorded processes lead their own process group (the supervisor starts them detached).
    process.kill(-pid, sig);
  } catch {
    // Not a group leader (a descendant found by its marker), or already gone.
  }
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

export interface LeftoverProcesses {
  /** The records found (whether or not their process was still alive). */
  recorded: RecordedProcess[];
  /** The runs they came from. */
  runIds: ReadonlySet<string>;
  /** Live processes of those runs (recorded, or found by their marker). */
  alive: number[];
}

/** What a run that is no longer supervised left in the state directory, and which of it still runs. */
export function findLeftovers(stateDir: string): LeftoverProcesses {
  const recorded = readRecordedProcesses(stateDir);
  const runIds = new Set(recorded.map((r) => r.runId));
  const mesh = readMeshFile(stateDir);
  if (mesh?.runId) runIds.add(mesh.runId);
  const alive = new Set<number>();
  for (const r of recorded) if (r.pid !== undefined && belongsToRun(r.pid, r.runId)) alive.add(r.pid);
  for (const pid of pidsCarrying(runIds)) alive.add(pid);
  return { recorded, runIds, alive: [...alive].sort((a, b) => a - b) };
}

/**
 * Stops every process a run recorded in `stateDir` (and, on Linux, every process carrying
 * its marker): SIGTERM to each process group, SIGKILL to what is left after `graceMs`. Then
 * removes the records. Only for runs whose runner is gone: a live runner stops its own.
 */
export async function stopLeftovers(stateDir: string, options: { graceMs?: number } = {}): Promise<LeftoverProcesses> {
  const found = findLeftovers(stateDir);
  const targets = found.alive;
  for (const pid of targets) signal(pid, 'SIGTERM');
  const deadline = Date.now() + (options.graceMs ?? 5000);
  const anyAlive = () => targets.some(isAlive);
  while (anyAlive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const pid of targets) if (isAlive(pid)) signal(pid, 'SIGKILL');
  // Descendants the marker finds only now (a process that forked while being stopped).
  for (const pid of pidsCarrying(found.runIds)) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 5000;
  while (anyAlive() && Date.now() < killDeadline) await new Promise((r) => setTimeout(r, 20));
  rmSync(join(stateDir, PROCESSES_DIR), { recursive: true, force: true });
  return found;
}
