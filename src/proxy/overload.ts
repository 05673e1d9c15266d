/**
 * Downstream connection limits: Envoy's overload manager (global_downstream_max_connections)
 * and per-listener connection limits. Past a limit a new connection is closed as soon as it is
 * accepted, and counted, so that the connections already open keep working: without a bound,
 * a flood of connections took the proxy to its file-descriptor limit (EMFILE), where it could
 * neither accept nor open the upstream connections its established clients needed.
 *
 *   global        `ProxyConfig.overload.maxDownstreamConnections`, over all listeners;
 *                 counted in `downstream_global_cx_overflow`. Absent: half of the process's
 *                 file-descriptor limit, less a reserve, since every downstream connection
 *                 may hold an upstream one (defaultMaxDownstreamConnections).
 *   per listener  `Listener.maxConnections`; node's server refuses past it before it makes a
 *                 socket ('drop'), counted in `downstream_cx_overflow`.
 */
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import type { ProxyStats } from './events.js';

/** File descriptors kept for what is not a downstream connection: listeners, the control plane, logs, health checks. */
const RESERVED_FDS = 64;

export class DownstreamConnections {
  private active = 0;

  constructor(
    /** The global limit in force (Infinity: none). */
    public limit: number,
  ) {}

  /** Connections admitted and not yet closed. */
  get open(): number {
    return this.active;
  }

  /** Takes a slot for a connection just accepted; false past the limit. Each true is released once. */
  admit(): boolean {
    if (this.active >= this.limit) return false;
    this.active++;
    return true;
  }

  release(): void {
    this.active--;
  }
}

/** The soft `Max open files` of /proc/self/limits (Linux), or undefined where there is none. */
export function fileDescriptorLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
}

/**
 * The global limit when the config sets none: each downstream connection may need an upstream
 * connection too, so half of the descriptors left after the reserve. No limit where the
 * descriptor limit cannot be read.
 */
export function defaultMaxDownstreamConnections(fdLimit: number | undefined): number {
  if (fdLimit === undefined) return Infinity;
  return Math.max(16, Math.floor((fdLimit - RESERVED_FDS) / 2));
}

/**
 * A listener's own limit on its server, refused by node before it makes a socket. Call once
 * per server to count refusals, then on each config with the listener's current limit.
 */
export function limitListenerConnections(server: net.Server, maxConnections: number | undefined, stats?: ProxyStats): void {
  if (stats) server.on('drop', () => stats.inc('downstream_cx_overflow'));
  // Node's own default: no limit.
  server.maxConnections = maxConnections ?? (undefined as unknown as number);
}
