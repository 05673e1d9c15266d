/**
 * Runs the embedded mesh's processes (workload replicas) and keeps them running: restarts
 * a crashed process with exponential backoff, prefixes each output line with the replica's
 * name, and on stop kills the whole process group so no grandchild is orphaned (an app that
 * was started through `npm` or a shell would otherwise survive its parent).
 *
 * A `ProcessRecorder` hears of every process before it is spawned and once it has a pid, so
 * the runner can write each one down in its state directory: a runner that dies (kill -9)
 * leaves a list that `sinew down` stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';

export interface ProcessSpec {
  /** Unique name, used as the log prefix (e.g. `reviews-v1-0`). */
  id: string;
  command: string;
  args: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
}

export type ProcessState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped';

/** Told of every launch of every process, in order: `launching` (before spawn), `launched`, `ended`. */
export interface ProcessRecorder {
  /** Before the spawn. Must be durable when it returns (a synchronous write). */
  launching(spec: ProcessSpec): void;
  /** Right after the spawn, with the pid (also the process group id: children run detached). */
  launched(spec: ProcessSpec, pid: number): void;
  /** The process was stopped for good (not on a crash that will be restarted). */
  ended(spec: ProcessSpec): void;
}

/** How one run of a process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Thrown by `Supervisor.start` once the supervisor is stopping: nothing new may start. */
export class SupervisorClosedError extends Error {
  readonly code = 'SNW_ERR_SUPERVISOR_CLOSED';
  constructor(id: string) {
    super(`not starting ${id}: the mesh is stopping`);
  }
}

/** How many of a process's last output lines are kept (for reports on a part that is late). */
const RECENT_LINES = 40;

export interface SupervisorOptions {
  clock?: Clock;
  /** Where prefixed output lines go (default: process.stdout). */
  output?: (line: string) => void;
  /** First restart delay (default 1 s), doubled per consecutive crash up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A process that ran this long resets the backoff (default 10 s). */
  stableAfterMs?: number;
  /** Grace period between SIGTERM and SIGKILL on stop (default 5 s). */
  stopGraceMs?: number;
  /** Hears of every launch (default: nobody). */
  recorder?: ProcessRecorder;
}

type ResolvedOptions = Required<Omit<SupervisorOptions, 'recorder'>> & Pick<SupervisorOptions, 'recorder'>;

/** One supervised process. Events: 'state' (state), 'exit' (code, signal). */
export class ManagedProcess extends EventEmitter {
  state: ProcessState = 'starting';
  restarts = 0;
  child?: ChildProcess;
  /** How the last run ended, if one did. */
  lastExit?: ExitInfo;
  /** When the next restart is due (monotonic ms), while in 'backoff'. */
  restartDueAt?: number;
  /** The last lines the process printed, oldest first (at most RECENT_LINES). */
  readonly recentLines: string[] = [];
  private startedAt = 0;
  private backoffMs: number;
  /** Set by restart(): the coming exit keeps the backoff growing even after a long run. */
  private forcedRestart = false;
  private timer?: TimerHandle;
  private exited?: Promise<void>;

  constructor(readonly spec: ProcessSpec, private readonly options: ResolvedOptions) {
    super();
    this.backoffMs = options.initialBackoffMs;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** @internal */
  launch(): void {
    const { spec, options } = this;
    this.setState('starting');
    this.restartDueAt = undefined;
    options.recorder?.launching(spec);
    const child = spawn(spec.command, spec.args as string[], {
      cwd: spec.cwd,
      env: spec.env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so stop() can signal every descendant at once.
      detached: true,
    });
    this.child = child;
    // Written down in the same turn as the spawn: nothing runs in between that could lose it.
    if (child.pid !== undefined) options.recorder?.launched(spec, child.pid);
    this.startedAt = options.clock.monotonic();
    const line = (text: string) => {
      this.recentLines.push(text);
      if (this.recentLines.length > RECENT_LINES) this.recentLines.shift();
      options.output(`[${spec.id}] ${text}`);
    };
    pipeLines(child.stdout!, line);
    pipeLines(child.stderr!, line);
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        line(`cannot start "${spec.command}": ${err.message}`);
      });
      child.once('close', (code, signal) => {
        this.lastExit = { code, signal };
        resolve();
        this.emit('exit', code, signal);
        this.onExit();
      });
    });
    child.once('spawn', () => {
      if (this.state === 'starting') this.setState('running');
    });
  }

  private onExit(): void {
    if (this.state === 'stopping' || this.state === 'stopped') {
      this.setState('stopped');
      return;
    }
    const ranFor = this.options.clock.monotonic() - this.startedAt;
    if (ranFor >= this.options.stableAfterMs && !this.forcedRestart) this.backoffMs = this.options.initialBackoffMs;
    const restarted = this.forcedRestart;
    this.forcedRestart = false;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs);
    this.restartDueAt = this.options.clock.monotonic() + delay;
    this.setState('backoff');
    if (!restarted) this.options.output(`[${this.spec.id}] exited (${describeExit(this.lastExit)}); restarting in ${(delay / 1000).toFixed(1)}s`);
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.state !== 'backoff') return;
      this.restarts++;
      try {
        this.launch();
      } catch (err) {
        // The process is not started when it cannot be written down first (the state directory
        // is gone or unwritable): a process the mesh cannot find again must not run.
        this.options.output(`[${this.spec.id}] cannot restart: ${(err as Error).message}`);
        this.setState('stopped');
      }
    }, delay);
    this.timer.unref();
  }

  /** How long the current run has been going (ms); 0 unless running. */
  uptimeMs(): number {
    return this.state === 'running' ? this.options.clock.monotonic() - this.startedAt : 0;
  }

  /** The delay before the next restart, as the backoff stands now (ms). */
  get nextBackoffMs(): number {
    return this.backoffMs;
  }

  /**
   * Stops the running process so that it starts again after the backoff, which keeps
   * growing across such restarts (a part that never gets ready is retried ever more slowly,
   * like Kubernetes' CrashLoopBackOff). No-op unless the process is running.
   */
  restart(): void {
    const child = this.child;
    if (this.state !== 'running' || !child || child.exitCode !== null || child.signalCode !== null) return;
    this.forcedRestart = true;
    signalGroup(child, 'SIGTERM');
    const kill = setTimeout(() => signalGroup(child, 'SIGKILL'), this.options.stopGraceMs);
    kill.unref();
    child.once('close', () => clearTimeout(kill));
  }

  /** Stops the process group: SIGTERM, then SIGKILL after the grace period. */
  async stop(): Promise<void> {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    if (this.state === 'stopped') return;
    const wasBackingOff = this.state === 'backoff';
    this.setState('stopping');
    const child = this.child;
    if (wasBackingOff || !child || child.exitCode !== null || child.signalCode !== null) {
      // Descendants of an exited process may still run in its group.
      if (child) signalGroup(child, 'SIGKILL');
      this.setState('stopped');
      this.options.recorder?.ended(this.spec);
      return;
    }
    signalGroup(child, 'SIGTERM');
    const kill = setTimeout(() => signalGroup(child, 'SIGKILL'), this.options.stopGraceMs);
    kill.unref();
    await this.exited;
    clearTimeout(kill);
    // Descendants that ignored SIGTERM must not outlive the mesh.
    signalGroup(child, 'SIGKILL');
    this.setState('stopped');
    this.options.recorder?.ended(this.spec);
  }

  /**
   * SIGKILL to the process group at once, synchronously: the last resort when the runner
   * itself is going down (an exception, a second Ctrl-C) and cannot wait.
   */
  killNow(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    if (this.child) signalGroup(this.child, 'SIGKILL');
  }

  private setState(state: ProcessState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }
}

/** `code 1`, `signal SIGKILL`. */
export function describeExit(exit: ExitInfo | undefined): string {
  if (!exit) return 'not started';
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function pipeLines(stream: NodeJS.ReadableStream, write: (line: string) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let i: number;
    while ((i = buffered.indexOf('\n')) >= 0) {
      write(buffered.slice(0, i).replace(/\r$/, ''));
      buffered = buffered.slice(i + 1);
    }
    // A process that never prints a newline must not grow this without bound.
    if (buffered.length > 64 * 1024) {
      write(buffered);
      buffered = '';
    }
  });
  stream.on('end', () => {
    if (buffered) write(buffered);
  });
}

/** Starts and stops processes as a group. */
export class Supervisor {
  private readonly processes = new Map<string, ManagedProcess>();
  private readonly options: ResolvedOptions;
  private closed = false;

  constructor(options: SupervisorOptions = {}) {
    this.options = {
      clock: options.clock ?? systemClock,
      output: options.output ?? ((line) => process.stdout.write(line + '\n')),
      initialBackoffMs: options.initialBackoffMs ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      stableAfterMs: options.stableAfterMs ?? 10_000,
      stopGraceMs: options.stopGraceMs ?? 5000,
      recorder: options.recorder,
    };
  }

  /** Starts and supervises a process. Throws SupervisorClosedError once stopAll() has begun. */
  start(spec: ProcessSpec): ManagedProcess {
    if (this.closed) throw new SupervisorClosedError(spec.id);
    if (this.processes.has(spec.id)) throw new Error(`process ${spec.id} is already supervised`);
    const managed = new ManagedProcess(spec, this.options);
    this.processes.set(spec.id, managed);
    managed.launch();
    return managed;
  }

  get(id: string): ManagedProcess | undefined {
    return this.processes.get(id);
  }

  list(): ManagedProcess[] {
    return [...this.processes.values()];
  }

  async stop(id: string): Promise<void> {
    const managed = this.processes.get(id);
    if (!managed) return;
    this.processes.delete(id);
    await managed.stop();
  }

  /** Stops every process (in parallel) and waits until all have exited; nothing starts after. */
  async stopAll(): Promise<void> {
    this.closed = true;
    const all = [...this.processes.values()];
    this.processes.clear();
    await Promise.all(all.map((p) => p.stop()));
  }

  /** SIGKILL to every process group, synchronously (see ManagedProcess.killNow). */
  killAllNow(): void {
    this.closed = true;
    for (const p of this.processes.values()) p.killNow();
  }
}

/** Ports this process handed out: the kernel may offer a just-closed port again at once. */
const handedOut = new Set<number>();

/**
 * The range the kernel takes ephemeral ports from (for port-0 listeners and the local side of
 * outgoing connections). Ports handed out for later binding are chosen below it: a port in
 * the ephemeral range can be taken as the local port of any outgoing connection on the
 * machine before the mesh binds it (seen as EADDRINUSE on a sidecar's inbound port).
 */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return [low, high];
  } catch {
    // Not Linux: the IANA ephemeral range.
  }
  return [49152, 65535];
}

/**
 * Finds a free TCP port on `host` for a listener to bind shortly. Chosen at random below the
 * ephemeral range (falling back to a port-0 bind when that range is crowded), and never the
 * same port twice from one process (the runner allocates a dozen before any is bound).
 */
export async function allocatePort(host = '127.0.0.1'): Promise<number> {
  const [low] = ephemeralRange();
  const from = Math.max(1024, Math.min(20_000, low - 4096));
  for (let attempt = 0; attempt < 200; attempt++) {
    const candidate = low > from ? from + Math.floor(Math.random() * (low - from)) : 0;
    const port = await tryBind(host, attempt < 100 ? candidate : 0);
    if (port !== undefined && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`could not find a free port on ${host}`);
}

/** Binds `port` (0 = any) and releases it; undefined when it is taken. */
function tryBind(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(undefined));
    server.listen(port, host, () => {
      const address = server.address();
      server.close(() => resolve(address && typeof address === 'object' ? address.port : undefined));
    });
  });
}
