/**
 * The backend of the Gateway API conformance runner: a small server that answers as the
 * suite's echo servers do, run by `sinew up` as a Workload beside its sidecar.
 *
 * Two answer formats, as the suite's two images give them:
 *
 *   - echo-basic (gateway tests; kubernetes-sigs/gateway-api-conformance-images, formerly
 *     conformance/echo-basic/echo-basic.go): a JSON body naming the request as the backend saw
 *     it (`path` is the request URI with its query, `host`, `method`, `proto`, `headers` with
 *     Go's canonical names and without Host) and who served it (`namespace`, `pod`), with
 *     `Content-Type: application/json`; `X-Echo-Set-Header: name:value,...` sets response
 *     headers; `?delay=<Go duration>` waits before answering; the retry simulation
 *     (`?responseCode=500&succeedAfter=2&uuid=...`) fails the first attempts of each uuid; `/ws`
 *     is a WebSocket echo. Each request is logged as echo-basic logs it ("Echoing back request
 *     made to <uri> to client (<addr>)"), which is how the suite finds mirrored requests.
 *   - Istio's echo (mesh tests, `ECHO_FORMAT=istio`; istio/istio pkg/test/echo): text lines
 *     `ServiceVersion=`, `ServicePort=`, `Host=`, `URL=`, `Method=`, `Proto=`, `IP=`,
 *     `RequestHeader=<name>:<value>` per header value, `Hostname=<pod>`.
 *
 * It speaks HTTP/1.1 and, on the same port, HTTP/2 with prior knowledge (h2c), as echo-basic
 * does (golang.org/x/net/http2/h2c).
 *
 *   PORT, HOST        where to listen (the runner's Workload sets them); PORT_3001, when
 *                     set, a second port served alike (echo-basic's H2C_PORT)
 *   SINEW_WORKLOAD, SINEW_NAMESPACE   who it is (the pod name is `<workload>-<pid>`, so it
 *                     starts with the backend's name, as the suite's checks expect)
 *   SERVICE_VERSION   Istio echo's ServiceVersion (mesh tests)
 *   TLS_SERVER_CERT, TLS_SERVER_PRIVKEY   files of a certificate and key: HTTPS is then served
 *                     (h2 and http/1.1 over ALPN) on PORT_8443, echo-basic's HTTPS_PORT, where
 *                     the mesh maps that port (the TLS backends in the mesh); with no PORT_8443
 *                     (the TLS backend the runner starts outside the mesh) PORT itself speaks
 *                     HTTPS. The answer's `tls` names the connection as echo-basic's does
 *                     (`serverName`: the SNI, `peerCertificates`: the client's, PEM), which is
 *                     how the suite checks what a gateway originating TLS sent
 *
 * Once listening it prints `listening on <host>:<port>` with the port it got (PORT=0: any).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSecureServer, createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createNetServer, type Socket } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const namespace = process.env.SINEW_NAMESPACE ?? process.env.NAMESPACE ?? 'default';
const pod = process.env.POD_NAME ?? `${process.env.SINEW_WORKLOAD ?? 'echo'}-${process.pid}`;
const format = process.env.ECHO_FORMAT === 'istio' ? 'istio' : 'basic';

/** Go's http.CanonicalHeaderKey: `x-echo-set-header` -> `X-Echo-Set-Header`. */
export function canonicalHeaderKey(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** Go's time.ParseDuration for the forms the suite sends (`1s`, `500ms`, `1m30s`), in ms. */
export function parseGoDuration(text: string): number | undefined {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    total += Number(m[1]) * units[m[2]];
    consumed += m[0].length;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}

/** Attempts seen per uuid by the retry simulation. */
const attempts = new Map<string, number>();

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

function headersOf(req: AnyRequest): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.startsWith(':') || name.toLowerCase() === 'host') continue;
    const key = canonicalHeaderKey(name);
    (out[key] ??= []).push(raw[i + 1]);
  }
  return out;
}

function authorityOf(req: AnyRequest): string {
  return (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '';
}

async function handle(req: AnyRequest, res: AnyResponse): Promise<void> {
  const uri = req.url ?? '/';
  const url = new URL(uri, 'http://echo');
  const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
  // Health checks (the runner's readiness probe, the sidecar's) are not logged: the log is
  // where mirrored requests are looked for.
  if (url.pathname !== '/health') process.stdout.write(`Echoing back request made to ${uri} to client (${remote})\n`);

  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('OK');
    return;
  }
  const delay = url.searchParams.get('delay');
  if (delay) {
    const ms = parseGoDuration(delay);
    if (ms === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`invalid delay ${delay}`);
      return;
    }
    await new Promise((r) => setTimeout(r, ms));
  }
  const uuid = url.searchParams.get('uuid');
  const succeedAfter = url.searchParams.get('succeedAfter');
  if (uuid && succeedAfter !== null) {
    const seen = (attempts.get(uuid) ?? 0) + 1;
    attempts.set(uuid, seen);
    if (seen <= Number(succeedAfter)) {
      const code = Number(url.searchParams.get('responseCode') ?? 500);
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(`attempt ${seen} of ${uuid}: ${code}`);
      return;
    }
  }
  // Drain the body; the echo names the request, not its content.
  for await (const _chunk of req) void _chunk;

  const headers = headersOf(req);
  const setHeaders: Record<string, string> = {};
  for (const list of headers['X-Echo-Set-Header'] ?? []) {
    for (const kv of list.split(',')) {
      const [name, value] = kv.trim().split(/:(.*)/s);
      if (!name) continue;
      setHeaders[name] = setHeaders[name] === undefined ? (value ?? '').trim() : `${setHeaders[name]},${(value ?? '').trim()}`;
    }
  }
  const proto = req.httpVersion === '2.0' ? 'HTTP/2.0' : `HTTP/${req.httpVersion}`;
  if (format === 'istio') {
    const lines = [
      `ServiceVersion=${process.env.SERVICE_VERSION ?? ''}`,
      `ServicePort=${process.env.SERVICE_PORT ?? port}`,
      `Host=${authorityOf(req)}`,
      `URL=${uri}`,
      `Method=${req.method}`,
      `Proto=${proto}`,
      `IP=${req.socket.remoteAddress}`,
      ...Object.entries(headers).flatMap(([k, vs]) => vs.map((v) => `RequestHeader=${k}:${v}`)),
      `Namespace=${namespace}`,
      `Hostname=${pod}`,
    ];
    res.writeHead(200, { 'content-type': 'text/plain', ...setHeaders });
    res.end(lines.join('\n') + '\n');
    return;
  }
  const body = JSON.stringify({ path: uri, host: authorityOf(req), method: req.method, proto, headers, namespace, ingress: '', service: '', pod, httpPort: String(port), ...tlsOf(req) }, null, ' ');
  res.writeHead(200, { ...setHeaders, 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

/** echo-basic's `tls` of an HTTPS request: version, SNI, ALPN, cipher, and the client's certificates as PEM. */
function tlsOf(req: AnyRequest): { tls?: Record<string, unknown> } {
  const socket = req.socket as TLSSocket;
  if (!socket.encrypted) return {};
  const peer = socket.getPeerX509Certificate?.();
  return {
    tls: {
      version: socket.getProtocol() ?? '',
      serverName: (socket as TLSSocket & { servername?: string | false }).servername || '',
      negotiatedProtocol: socket.alpnProtocol || '',
      cipherSuite: socket.getCipher()?.standardName ?? '',
      peerCertificates: peer ? [peer.toString()] : [],
    },
  };
}

const onRequest = (req: AnyRequest, res: AnyResponse) => {
  handle(req, res).catch((err: Error) => {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(err.message));
  });
};

const http1 = createHttpServer(onRequest);
const http2 = createHttp2Server(onRequest);
// WebSocket echo at /ws: every frame back as it came (text as text, binary as binary).
const ws = new WebSocketServer({ noServer: true });
http1.on('upgrade', (req, socket, head) => {
  if (new URL(req.url ?? '/', 'http://echo').pathname !== '/ws') {
    socket.destroy();
    return;
  }
  process.stdout.write(`Echoing back request made to ${req.url} to client (websocket)\n`);
  ws.handleUpgrade(req, socket, head, (conn) => conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary })));
});

/** The HTTP/2 connection preface (RFC 9113 3.4): a client speaking h2c with prior knowledge starts with it. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

const server = createNetServer((socket: Socket) => {
  socket.on('error', () => socket.destroy());
  socket.once('readable', () => {
    const head: Buffer | null = socket.read(PREFACE.length) ?? socket.read();
    if (head) socket.unshift(head);
    (head && head.length >= 3 && PREFACE.subarray(0, Math.min(head.length, PREFACE.length)).equals(head.subarray(0, Math.min(head.length, PREFACE.length))) ? http2 : http1).emit('connection', socket);
  });
});
// echo-basic serves HTTPS when given a certificate (its TLS_SERVER_CERT, TLS_SERVER_PRIVKEY):
// on its HTTPS_PORT (8443) beside HTTP where the mesh maps that port, else on PORT itself. A
// client certificate is asked for but not required, so that the answer can name it.
const tlsFiles = process.env.TLS_SERVER_CERT && process.env.TLS_SERVER_PRIVKEY ? { cert: readFileSync(process.env.TLS_SERVER_CERT), key: readFileSync(process.env.TLS_SERVER_PRIVKEY) } : undefined;
const tlsPort = process.env.PORT_8443 ? Number(process.env.PORT_8443) : undefined;
const https = tlsFiles && tlsPort === undefined ? createHttpsServer({ ...tlsFiles, requestCert: true, rejectUnauthorized: false }, onRequest) : undefined;
https?.on('tlsClientError', () => undefined);
const listening = https ?? server;
listening.listen(port, host, () => {
  const actual = (listening.address() as { port: number }).port;
  process.stdout.write(`echo server (${format}${https ? ', https' : ''}) ${pod} listening on ${host}:${actual}\n`);
});
// echo-basic also listens on its H2C_PORT (3001): the Service's second port targets it
const second = process.env.PORT_3001 && Number(process.env.PORT_3001) !== port ? Number(process.env.PORT_3001) : undefined;
const secondServer = second ? createNetServer((socket) => server.emit('connection', socket)) : undefined;
secondServer?.listen(second, host);
const secureServer = tlsFiles && tlsPort !== undefined ? createSecureServer({ ...tlsFiles, allowHTTP1: true, requestCert: true, rejectUnauthorized: false }, onRequest) : undefined;
secureServer?.on('tlsClientError', () => undefined);
secureServer?.listen(tlsPort, host);

const shutdown = () => {
  secondServer?.close();
  secureServer?.close();
  listening.close(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
