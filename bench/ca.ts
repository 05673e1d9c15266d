/**
 * The CA's costs, each beside a reference measured in the same run. Rates are per second of
 * this process's CPU time (per core), so neighbours on a shared machine do not move them:
 *
 *   sign        CA.sign (CSR check, certificate, issued-log append under the lock) per second,
 *               against node's bare ECDSA P-256 verify + sign pairs (the cryptographic floor:
 *               one CSR signature checked, one certificate signed)
 *   csr         the proxy's key + CSR generation per second, ECDSA P-256 and RSA 2048
 *   handshake   new TLS 1.3 connections per second on one core (client and server in one
 *               process, 16 in flight) with issued certificates: mutual TLS against server-only TLS, and
 *               ECDSA P-256 against RSA 2048
 *   memory      what the proxy-side modules (certificate-info, workload-key) add to a fresh
 *               process, beside the CA's X.509 library and a trivial module
 *
 *   npx tsx bench/ca.ts [--seconds 3] [--json]
 *   npm run bench -- ca
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CertificateAuthority } from '../src/ca/authority.js';
import { generateKeyAndCsr, type WorkloadKeyType } from '../src/core/pki/workload-key.js';

export interface CaBenchResult {
  signPerSecond: number;
  bareSignVerifyPerSecond: number;
  csrPerSecond: Record<WorkloadKeyType, number>;
  handshakesPerSecond: { mutualEcdsa: number; serverOnlyEcdsa: number; mutualRsa: number };
  /** RSS growth (KiB) of a fresh process importing: a trivial module (the reference), certificate-info, workload-key. */
  memoryKb: { trivialModule: { rss: number; heap: number }; certificateInfo: { rss: number; heap: number }; workloadKey: { rss: number; heap: number }; x509Library: { rss: number; heap: number } };
}

/**
 * Operations per CPU-second of this process (user + system, every thread): on a shared
 * machine wall-clock rates measure the neighbours, CPU time measures the work.
 */
function perCpuSecond(count: number, since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return count / ((used.user + used.system) / 1e6);
}

/** Runs `step` back to back for about `seconds`; returns operations per CPU-second. */
async function rate(seconds: number, step: () => Promise<unknown> | unknown): Promise<number> {
  const end = performance.now() + seconds * 1000;
  const cpu = process.cpuUsage();
  let n = 0;
  while (performance.now() < end) {
    await step();
    n++;
  }
  return perCpuSecond(n, cpu);
}

/** New TLS connections per CPU-second, `inFlight` at a time. */
async function handshakeRate(seconds: number, server: { key: string; cert: string }, client: { key: string; cert: string } | undefined, ca: string, inFlight = 16): Promise<number> {
  const srv = tls.createServer({ ...server, ca, requestCert: client !== undefined, rejectUnauthorized: client !== undefined }, (s) => {
    s.on('error', () => undefined);
    s.end();
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  // One secure context for every connection, as a proxy keeps one per credential: building
  // it (parsing the PEM key, chain and roots) on every connect would dominate the figure.
  const secureContext = tls.createSecureContext({ ca, ...(client ?? {}) });
  const connect = () =>
    new Promise<void>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, secureContext, checkServerIdentity: () => undefined });
      socket.on('secureConnect', () => socket.end());
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
    });
  try {
    const end = performance.now() + seconds * 1000;
    const cpu = process.cpuUsage();
    let done = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < end) {
          await connect();
          done++;
        }
      }),
    );
    return perCpuSecond(done, cpu);
  } finally {
    srv.close();
  }
}

/**
 * Memory growth (KiB) of a fresh node process importing `module` from the build. The process
 * first loads a small package (commander) so that node's package loader, which any proxy has
 * warmed already, is not counted against the module.
 */
function loadCost(module: string): { rss: number; heap: number } {
  const script = `
    await import('commander');
    globalThis.gc(); const before = process.memoryUsage();
    await import(${JSON.stringify(pathToFileURL(module).href)});
    globalThis.gc(); const after = process.memoryUsage();
    console.log(JSON.stringify({ rss: Math.round((after.rss - before.rss) / 1024), heap: Math.round((after.heapUsed - before.heapUsed) / 1024) }));`;
  return JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') }).trim()) as { rss: number; heap: number };
}

export async function runCaBench(options: { seconds?: number } = {}): Promise<CaBenchResult> {
  const seconds = options.seconds ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'sinew-bench-ca-'));
  try {
    const ca = await CertificateAuthority.open({ dir: join(dir, 'ca') });
    const { csrPem } = await generateKeyAndCsr();
    const identity = { namespace: 'default', serviceAccount: 'bench' };
    const signPerSecond = await rate(seconds, () => ca.sign({ csrPem, identity }));

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = Buffer.alloc(400, 7);
    const signature = sign('sha256', data, privateKey);
    const bareSignVerifyPerSecond = await rate(seconds, () => {
      verify('sha256', data, publicKey, signature);
      sign('sha256', data, privateKey);
    });

    const csrPerSecond = {
      'ecdsa-p256': await rate(seconds, () => generateKeyAndCsr({ keyType: 'ecdsa-p256' })),
      'rsa-2048': await rate(seconds, () => generateKeyAndCsr({ keyType: 'rsa-2048' })),
    };

    const creds = async (sa: string, keyType: WorkloadKeyType) => {
      const kc = await generateKeyAndCsr({ keyType });
      const issued = await ca.sign({ csrPem: kc.csrPem, identity: { namespace: 'default', serviceAccount: sa } });
      return { key: kc.privateKeyPem, cert: issued.certificateChainPem };
    };
    const bundle = ca.trustBundle().pem();
    const [srvEc, cliEc, srvRsa, cliRsa] = await Promise.all([creds('server', 'ecdsa-p256'), creds('client', 'ecdsa-p256'), creds('server', 'rsa-2048'), creds('client', 'rsa-2048')]);
    const handshakesPerSecond = {
      mutualEcdsa: await handshakeRate(seconds, srvEc, cliEc, bundle),
      serverOnlyEcdsa: await handshakeRate(seconds, srvEc, undefined, bundle),
      mutualRsa: await handshakeRate(seconds, srvRsa, cliRsa, bundle),
    };

    const built = join(import.meta.dirname, '..', 'dist', 'src');
    const memoryKb = {
      trivialModule: loadCost(join(built, 'core', 'clock.js')),
      certificateInfo: loadCost(join(built, 'core', 'pki', 'certificate-info.js')),
      workloadKey: loadCost(join(built, 'core', 'pki', 'workload-key.js')),
      x509Library: loadCost(join(built, 'ca', 'x509-library.js')),
    };
    return { signPerSecond, bareSignVerifyPerSecond, csrPerSecond, handshakesPerSecond, memoryKb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function report(r: CaBenchResult): string {
  const f = (n: number) => (n < 10 ? n.toFixed(1) : n.toFixed(0));
  const mem = (m: { rss: number; heap: number }) => `${m.rss} / ${m.heap}`;
  return [
    'per CPU-second of one process:',
    `CA sign (CSR check + certificate + issued log)   ${f(r.signPerSecond)}/s   (bare ECDSA P-256 verify+sign: ${f(r.bareSignVerifyPerSecond)}/s, ratio ${(r.signPerSecond / r.bareSignVerifyPerSecond).toFixed(3)})`,
    `proxy key + CSR                                  ECDSA P-256 ${f(r.csrPerSecond['ecdsa-p256'])}/s, RSA 2048 ${f(r.csrPerSecond['rsa-2048'])}/s`,
    `TLS 1.3 handshakes (client and server both)      mutual ECDSA ${f(r.handshakesPerSecond.mutualEcdsa)}/s, server-only ECDSA ${f(r.handshakesPerSecond.serverOnlyEcdsa)}/s (ratio ${(r.handshakesPerSecond.mutualEcdsa / r.handshakesPerSecond.serverOnlyEcdsa).toFixed(2)}), mutual RSA 2048 ${f(r.handshakesPerSecond.mutualRsa)}/s`,
    `memory added by loading (RSS / heap, KiB)        proxy side: certificate-info ${mem(r.memoryKb.certificateInfo)}, workload-key ${mem(r.memoryKb.workloadKey)}; the CA's X.509 library + WebCrypto ${mem(r.memoryKb.x509Library)}; a trivial module ${mem(r.memoryKb.trivialModule)}`,
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } } });
  const result = await runCaBench({ seconds: Number(values.seconds) });
  process.stdout.write(values.json ? JSON.stringify(result) + '\n' : report(result));
}
