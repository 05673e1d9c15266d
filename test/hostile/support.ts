/**
 * What the hostile-input suite needs besides its attacks: well-behaved clients that keep
 * asking while the attacks run (their success rate and latency are the suite's verdict on
 * "normal clients served throughout"), and a raw connection that reports when the proxy
 * closed it.
 */
import http from 'node:http';
import http2 from 'node:http2';

export interface NormalTarget {
  name: string;
  port: number;
  /** Host / :authority. */
  host: string;
  path: string;
  h2?: boolean;
}

export interface LoadReport {
  sent: number;
  ok: number;
  /** The first few failures, for the message. */
  failures: string[];
  p50Ms: number;
  p99Ms: number;
}

/** Keeps `perTarget` keep-alive clients per target asking, one request at a time each, until stopped. */
export function normalClients(targets: readonly NormalTarget[], perTarget = 2, paceMs = 20): { stop(): Promise<LoadReport> } {
  let stopped = false;
  const latencies: number[] = [];
  const failures: string[] = [];
  let sent = 0;
  const agents: http.Agent[] = [];
  const sessions: http2.ClientHttp2Session[] = [];
  const once = (t: NormalTarget, agent: http.Agent, session: http2.ClientHttp2Session | undefined, i: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const path = `${t.path}-${i}`;
      if (session) {
        const stream = session.request({ ':path': path, ':authority': t.host });
        let status = 0;
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('error', reject);
        stream.on('end', () => resolve(status));
        stream.resume();
        return;
      }
      const req = http.request({ host: '127.0.0.1', port: t.port, path, agent, headers: { host: t.host } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const workers = targets.flatMap((t) =>
    Array.from({ length: perTarget }, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      let session: http2.ClientHttp2Session | undefined;
      if (t.h2) {
        session = http2.connect(`http://127.0.0.1:${t.port}`);
        session.on('error', () => {});
        sessions.push(session);
      }
      for (let i = 0; !stopped; i++) {
        sent++;
        const started = performance.now();
        try {
          const status = await once(t, agent, session, i);
          if (status === 200) latencies.push(performance.now() - started);
          else if (failures.length < 5) failures.push(`${t.name}: ${status}`);
        } catch (err) {
          if (failures.length < 5) failures.push(`${t.name}: ${(err as Error).message}`);
        }
        // The clients' pace, not a wait for a condition.
        await new Promise((r) => setTimeout(r, paceMs));
      }
    }),
  );
  return {
    async stop() {
      stopped = true;
      await Promise.all(workers);
      for (const a of agents) a.destroy();
      for (const s of sessions) s.destroy();
      const sorted = [...latencies].sort((a, b) => a - b);
      const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
      return { sent, ok: latencies.length, failures, p50Ms: at(0.5), p99Ms: at(0.99) };
    },
  };
}

export function describeLoad(r: LoadReport): string {
  return `normal clients: ${r.ok}/${r.sent} served (${((100 * r.ok) / Math.max(1, r.sent)).toFixed(2)} %), p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms`;
}
