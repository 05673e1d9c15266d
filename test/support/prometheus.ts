/**
 * A real Prometheus for integration tests: the binary from Debian's `prometheus` package
 * (`.ci/run` installs it), started on a free port with its own TSDB in a temp directory and a
 * config naming the targets to scrape, queried over its HTTP API, and stopped.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS = '/usr/bin/prometheus';

/** Why Prometheus cannot run here, or undefined when it can. */
export function prometheusMissing(): string | undefined {
  return existsSync(PROMETHEUS) ? undefined : `${PROMETHEUS} not installed (apt-get install prometheus)`;
}

/** One scrape target and the labels Prometheus attaches to every series scraped from it. */
export interface ScrapeTarget {
  /** `host:port` */
  address: string;
  labels?: Readonly<Record<string, string>>;
}

export interface ScrapeJob {
  name: string;
  /** Defaults to `/stats/prometheus`, the proxy's endpoint (Istio's 15090 path). */
  metricsPath?: string;
  targets: readonly ScrapeTarget[];
}

/** One series of an instant vector: its labels and value. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface Prometheus {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** The last few KB Prometheus wrote to stderr (its log). */
  log(): string;
  /** Rejects, with the log, if Prometheus exits before stop() (never settles otherwise); race it against waits. */
  exited: Promise<never>;
  /** The first series' value of an instant query; undefined when empty or not answering yet; throws if Prometheus rejects the query. */
  query(q: string): Promise<number | undefined>;
  /** Every series of an instant query; [] when empty or not answering yet; throws if Prometheus rejects the query. */
  vector(q: string): Promise<Sample[]>;
  /** SIGTERM (SIGKILL if it has not exited within 10 s), then removes the temp directory. */
  stop(): Promise<void>;
}

/** A port that was free a moment ago (Prometheus takes a port number, not port 0). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Starts Prometheus scraping `jobs` every `scrapeIntervalS` seconds. Resolves once it is
 * spawned, not once it answers: poll `query` (it answers undefined until then). Throws, saying
 * what to install, when the binary is missing.
 */
export async function startPrometheus(jobs: readonly ScrapeJob[], scrapeIntervalS = 1): Promise<Prometheus> {
  const missing = prometheusMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'sinew-prom-'));
  const config = join(dir, 'prometheus.yml');
  // JSON is YAML, so the config needs no quoting rules of its own.
  const interval = `${scrapeIntervalS}s`;
  writeFileSync(
    config,
    JSON.stringify(
      {
        global: { scrape_interval: interval, scrape_timeout: interval },
        scrape_configs: jobs.map((job) => ({
          job_name: job.name,
          metrics_path: job.metricsPath ?? '/stats/prometheus',
          static_configs: job.targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
        })),
      },
      null,
      2,
    ),
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const prom = spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  prom.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let stopping = false;
  const gone = once(prom, 'exit');
  // Settles only on an exit nobody asked for; a spawn failure (ENOENT, EACCES) is reported on
  // 'error', and 'exit' may never follow it.
  const exited = new Promise<never>((_, reject) => {
    gone.then(() => stopping || reject(new Error(`prometheus exited early:\n${stderr}`)), () => undefined);
    prom.once('error', (err) => reject(new Error(`prometheus did not start: ${err.message}`)));
  });
  exited.catch(() => undefined);

  const vector = async (q: string): Promise<Sample[]> => {
    let body: { status: string; error?: string; data?: { result?: { metric: Record<string, string>; value: [number, string] }[] } };
    try {
      body = (await (await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as typeof body;
    } catch {
      return []; // not up yet
    }
    // A query Prometheus rejects would otherwise look like one that matches nothing yet.
    if (body.status === 'error') throw new Error(`Prometheus rejected ${q}: ${body.error}`);
    return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };

  return {
    base,
    log: () => stderr,
    exited,
    vector,
    query: async (q) => (await vector(q))[0]?.value,
    stop: async () => {
      stopping = true;
      if (prom.exitCode === null && prom.signalCode === null && prom.pid !== undefined) {
        prom.kill('SIGTERM');
        const timer = setTimeout(() => prom.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
