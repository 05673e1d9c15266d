/**
 * HTTP/2 sessions against abuse: rapid reset (CVE-2023-44487), and sessions left open after a
 * GOAWAY. Both were seen: a client that opened streams and reset them at once made nghttp2
 * send GOAWAY and stop reading, and node then kept the socket open for good (10 of 10 attack
 * connections minutes later), while the reset streams had already started upstream requests
 * (1,798 cancelled ones reached the app). nghttp2 ends sessions that way for other floods too
 * (a CONTINUATION flood can end in a GOAWAY(PROTOCOL_ERROR)), and node does not learn of it.
 *
 * - The listener starts a session's new streams one turn of the event loop after they arrive
 *   (Envoy's max_requests_per_io_cycle defers the same way), so a stream reset in the same
 *   read is never started (listener.ts).
 * - Envoy's premature-reset rule (its overload.premature_reset_* runtime defaults): a stream
 *   the client resets less than a second after it began, before its response ended, is
 *   premature. A session with 250 of its first 500 streams premature, or half of all its
 *   streams after that, is aborted with GOAWAY(ENHANCE_YOUR_CALM) and counted in
 *   `downstream_rq_too_many_premature_resets`. nghttp2's own limit (a token bucket of 1,000
 *   resets) comes later.
 * - A session closing gracefully (the listener drains, it sat idle, the peer sent GOAWAY) is
 *   destroyed after the drain timeout, whatever its streams are doing (Envoy's drain_timeout,
 *   5 s by default): `downstream_cx_drain_close`.
 * - A session quiet for the probe interval is sent a PING (Envoy's HTTP/2 connection
 *   keepalive); one that does not answer within the drain timeout is destroyed
 *   (`downstream_cx_h2_unresponsive`). That is what closes a session nghttp2 gave up on
 *   without telling node: it no longer reads, so it cannot see the answer. A session with no
 *   stream for Envoy's idle timeout (1 hour) is closed gracefully.
 */
import type http2 from 'node:http2';
import type { ProxyStats } from '../events.js';

/** Envoy's overload.premature_reset_total_stream_count. */
const PREMATURE_RESET_TOTAL_STREAM_COUNT = 500;
/** Envoy's overload.premature_reset_min_stream_lifetime_seconds. */
export const PREMATURE_RESET_MIN_STREAM_LIFETIME_MS = 1_000;
/** Envoy's HTTP connection manager drain_timeout default. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;
/** Envoy's HTTP connection idle_timeout default (common_http_protocol_options), which Istio keeps. */
export const IDLE_TIMEOUT_MS = 3_600_000;
/** The longest a session is quiet before it must answer a PING. */
export const MAX_PROBE_INTERVAL_MS = 30_000;
/** RFC 9113 §7. */
const ENHANCE_YOUR_CALM = 0xb;

class SessionGuard {
  /** Streams ended, and of those premature (Envoy's rule). */
  ended = 0;
  premature = 0;
  /** Streams open now (announced, not yet ended). */
  open = 0;
  /** When a stream last opened or ended (monotonic ms). */
  lastStream: number;
  drainTimer?: NodeJS.Timeout;
  probeTimer?: NodeJS.Timeout;
  /** Aborted for its resets: going away. */
  aborted = false;

  constructor(
    readonly session: http2.Http2Session,
    readonly stats: ProxyStats,
    readonly drainMs: () => number,
  ) {
    this.lastStream = performance.now();
  }
}

const guards = new WeakMap<http2.Http2Session, SessionGuard>();
/**
 * Each stream's session, noted as the session announces the stream: node forgets it once the
 * stream is destroyed, and a stream reset at once is destroyed before its 'request' event.
 */
const sessions = new WeakMap<http2.ServerHttp2Stream, http2.Http2Session>();

export function sessionOf(stream: http2.ServerHttp2Stream): http2.Http2Session | undefined {
  return sessions.get(stream);
}

/** Starts guarding a new session (the server's 'session' event). */
export function guardSession(session: http2.Http2Session, stats: ProxyStats, drainMs: () => number): void {
  const guard = new SessionGuard(session, stats, drainMs);
  guards.set(session, guard);
  // Ahead of node's own listener, which turns the stream into a 'request'.
  session.prependListener('stream', (stream: http2.ServerHttp2Stream) => {
    sessions.set(stream, session);
    guard.open++;
    guard.lastStream = performance.now();
  });
  session.once('goaway', () => armDrain(guard));
  session.once('close', () => {
    clearTimeout(guard.drainTimer);
    clearTimeout(guard.probeTimer);
  });
}

/** Closes a session gracefully: GOAWAY, its streams may finish, and it is destroyed after the drain timeout. */
export function closeSession(session: http2.Http2Session): void {
  const guard = guards.get(session);
  if (!session.closed && !session.destroyed) session.close();
  if (guard) armDrain(guard);
  else if (!session.destroyed) session.destroy();
}

/**
 * The server's 'timeout' listener: `session` saw no bytes either way for the probe interval.
 * Idle long enough, it is closed; otherwise it must answer a PING within the drain timeout.
 */
export function sessionQuiet(session: http2.Http2Session): void {
  const guard = guards.get(session);
  if (guard === undefined || session.destroyed) return;
  if (guard.open === 0 && performance.now() - guard.lastStream >= IDLE_TIMEOUT_MS) return closeSession(session);
  if (guard.probeTimer !== undefined) return;
  const answered = () => {
    clearTimeout(guard.probeTimer);
    guard.probeTimer = undefined;
  };
  guard.probeTimer = setTimeout(() => {
    guard.probeTimer = undefined;
    if (session.destroyed) return;
    guard.stats.inc('downstream_cx_h2_unresponsive');
    session.destroy();
  }, guard.drainMs());
  guard.probeTimer.unref();
  try {
    // An answer, or the session's end, calls back; a session past node's limit of PINGs in
    // flight is not answering them either, and the timer ends it.
    session.ping(answered);
  } catch {
    // Closing already: the timer ends it if nothing else does.
  }
}

/** The session was aborted for its resets: its streams are not to be started. */
export function sessionAborted(session: http2.Http2Session): boolean {
  return guards.get(session)?.aborted === true;
}

/** A stream of `session` ended; `premature` when the client reset it early (Envoy's rule). */
export function streamEnded(session: http2.Http2Session, premature: boolean): void {
  const guard = guards.get(session);
  if (guard === undefined) return;
  if (guard.open > 0) guard.open--;
  guard.lastStream = performance.now();
  if (session.destroyed || guard.aborted) return;
  guard.ended++;
  if (!premature) return;
  guard.premature++;
  const tooMany = guard.ended < PREMATURE_RESET_TOTAL_STREAM_COUNT ? guard.premature >= PREMATURE_RESET_TOTAL_STREAM_COUNT / 2 : guard.premature * 2 >= guard.ended;
  if (!tooMany) return;
  guard.aborted = true;
  guard.stats.inc('downstream_rq_too_many_premature_resets');
  // The GOAWAY says why; the session goes once it is out (destroy() itself would drop it).
  session.goaway(ENHANCE_YOUR_CALM);
  setImmediate(() => session.destroy());
}

function armDrain(guard: SessionGuard): void {
  if (guard.drainTimer !== undefined || guard.session.destroyed) return;
  guard.drainTimer = setTimeout(() => {
    if (guard.session.destroyed) return;
    guard.stats.inc('downstream_cx_drain_close');
    guard.session.destroy();
  }, guard.drainMs());
  guard.drainTimer.unref();
}
