/**
 * Helpers of the egress tests: curl through a workload's sidecar, and TLS stand-ins for
 * external hosts on loopback that record what each client showed them (SNI, ALPN, client
 * certificate).
 */
import { execFile } from 'node:child_process';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { makeServerCertificate, type Pem } from '../support/tls.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

/** What a TLS stand-in saw of each connection that finished its handshake. */
export interface Seen {
  servername: string | false;
  alpn: string | false | null;
  clientCn?: string;
}

export interface TlsStandIn {
  port: number;
  seen: Seen[];
  /** Handshakes that failed (the client refused the certificate, or sent no TLS). */
  failures: number;
  close(): Promise<void>;
}

/** An HTTPS server on loopback for `names`, with a certificate from `ca`; asks for client certificates signed by `clientCa`. */
export async function tlsStandIn(ca: Pem, clientCa: Pem, names: string[], body: string): Promise<TlsStandIn> {
  const cert = await makeServerCertificate(ca, names);
  const state: TlsStandIn = { port: 0, seen: [], failures: 0, close: async () => {} };
  const server = https.createServer({ cert: cert.cert, key: cert.key, ca: clientCa.cert, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    state.seen.push({ servername: (socket as TLSSocket & { servername: string | false }).servername, alpn: socket.alpnProtocol, ...(socket.authorized && peer.subject ? { clientCn: String(peer.subject.CN) } : {}) });
    res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  server.on('tlsClientError', () => state.failures++);
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** curl through a sidecar's outbound listener (`-x`), as HTTP_PROXY / HTTPS_PROXY send a workload's requests; the heads are in stdout. */
export function curlVia(outbound: string, url: string, extra: string[] = []): Promise<Run> {
  return run('curl', ['-sS', '--max-time', '15', '-x', `http://${outbound}`, '-D', '-', '-o', '-', ...extra, url]);
}

/** The status of the last response head curl printed. */
export const statusOf = (r: Run) => Number(/^HTTP\/[\d.]+ (\d{3})/m.exec(r.stdout.split(/\r?\n\r?\n/).filter((b) => /^HTTP\//.test(b)).at(-1) ?? '')?.[1] ?? 0);
export const headerOf = (r: Run, name: string) => new RegExp(`^${name}: *(.*?)\\r?$`, 'im').exec(r.stdout)?.[1];
