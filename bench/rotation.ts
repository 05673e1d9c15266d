/**
 * Certificate rotation under load (issue 17's bar): "with certificates of 60 s lifetime, wrk at
 * a fixed rate through the Bookinfo demo for 3 minutes loses 0 requests while every certificate
 * rotates at least twice".
 *
 * `sinew up` runs Bookinfo (bench/chaos.ts's BookinfoMesh, every part its own process) with the
 * control plane issuing 60 s workload certificates (SINEW_WORKLOAD_CERT_TTL, which `sinew up`
 * passes on to the control plane in its environment); wrk sends a fixed rate to /productpage
 * through the ingress gateway (chaos.ts's Load: a page that is not a complete 2xx counts as
 * lost, as do socket errors and timeouts). Meanwhile `sinew status` is read every 5 s and
 * every proxy's certificate serial recorded; a proxy rotated as many times as it showed new
 * serials after the first. Exits 1 unless nothing was lost and every proxy rotated >= 2 times.
 *
 *   npm run bench -- rotation [--duration 180] [--rate 200]
 */
import { BookinfoMesh, Load, wrkAvailable } from './chaos.js';

export interface RotationOptions {
  durationS: number;
  rate: number;
  certTtl: string;
  progress?: (line: string) => void;
}

export interface RotationResult {
  durationS: number;
  rate: number;
  certTtl: string;
  requests: number;
  non2xx: number;
  degraded: number;
  socketErrors: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  /** Per proxy (`<replica>/proxy`, `gateway`): serials seen, and rotations (serials after the first). */
  proxies: { id: string; serials: number; rotations: number }[];
  ok: boolean;
}

const POLL_MS = 5_000;

export async function runRotation(options: RotationOptions): Promise<RotationResult> {
  if (!wrkAvailable()) throw new Error('wrk is not installed: apt-get install wrk');
  const previousTtl = process.env.SINEW_WORKLOAD_CERT_TTL;
  process.env.SINEW_WORKLOAD_CERT_TTL = options.certTtl;
  const mesh = new BookinfoMesh();
  let load: Load | undefined;
  try {
    options.progress?.(`starting Bookinfo with ${options.certTtl} workload certificates`);
    await mesh.start();
    const serials = new Map<string, Set<string>>();
    const record = async () => {
      const status = await mesh.status();
      const proxies = [
        ...status.workloads.flatMap((w) => w.replicas.map((r) => ({ id: `${r.id}/proxy`, cert: r.proxy.certificate }))),
        ...status.gateways.flatMap((g) => g.replicas.map((r) => ({ id: r.id, cert: r.proxy.certificate }))),
      ];
      for (const p of proxies) if (p.cert) (serials.get(p.id) ?? serials.set(p.id, new Set()).get(p.id)!).add(p.cert.serial);
    };
    await record();
    options.progress?.(`wrk at ${options.rate} req/s through the gateway for ${options.durationS} s`);
    load = new Load(`http://${mesh.gateway}/productpage`, options.rate);
    const end = Date.now() + options.durationS * 1000;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, end - Date.now()))));
      await record();
    }
    const result = await load.stop();
    load = undefined;
    await record();
    const proxies = [...serials].map(([id, seen]) => ({ id, serials: seen.size, rotations: seen.size - 1 })).sort((a, b) => (a.id < b.id ? -1 : 1));
    return {
      durationS: options.durationS,
      rate: options.rate,
      certTtl: options.certTtl,
      requests: result.requests,
      non2xx: result.non2xx,
      degraded: result.degraded,
      socketErrors: result.errors,
      lost: result.lost,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      proxies,
      ok: result.lost === 0 && proxies.length > 0 && proxies.every((p) => p.rotations >= 2),
    };
  } finally {
    load?.kill();
    await mesh.stop();
    if (previousTtl === undefined) delete process.env.SINEW_WORKLOAD_CERT_TTL;
    else process.env.SINEW_WORKLOAD_CERT_TTL = previousTtl;
  }
}

export function report(r: RotationResult): string {
  const lines = [
    `${r.durationS} s at ${r.rate} req/s through the gateway, workload certificates of ${r.certTtl}:`,
    `requests ${r.requests}, non-2xx ${r.non2xx}, degraded pages ${r.degraded}, socket errors ${r.socketErrors}, lost ${r.lost} (goal 0); p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms`,
    'proxy'.padEnd(34) + 'serials  rotations',
    ...r.proxies.map((p) => `${p.id.padEnd(34)}${String(p.serials).padStart(7)}  ${String(p.rotations).padStart(9)}`),
    `${r.ok ? 'PASS' : 'FAIL'}: ${r.lost === 0 ? '0 lost' : `${r.lost} lost`}, every proxy rotated >= 2 times: ${r.proxies.length > 0 && r.proxies.every((p) => p.rotations >= 2) ? 'yes' : 'no'}`,
  ];
  return lines.join('\n') + '\n';
}
