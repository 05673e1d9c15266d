/**
 * The conformance suite's TCP echo (echo-basic with TCP_ECHO_SERVER set: the `tcp-backend` of
 * its base manifests; kubernetes-sigs/gateway-api-conformance-images echo-basic/tcpserver), run
 * by `sinew up` as a Workload beside its sidecar. On a plain port and, given a certificate, a
 * TLS port, each connection is greeted with `Gateway API Test TCP Server`, then answered line by
 * line: `PING` -> `PONG`, `IS_TLS` -> `true`/`false`, `TEST` -> the JSON the suite checks
 * (namespace, pod, ports, `isTLS`, and for TLS the version, the server name the client sent,
 * the negotiated ALPN protocol and the cipher suite, by Go's names).
 *
 *   PORT, HOST                         the plain port (containerPort 3000) and where to listen
 *   PORT_8443                          the TLS port, served when a certificate is given
 *   TLS_SERVER_CERT, TLS_SERVER_PRIV_KEY   files of its certificate and key
 *   SINEW_WORKLOAD, SINEW_NAMESPACE    who it is (the pod name is `<workload>-<pid>`)
 */
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createInterface } from 'node:readline';

export const WELCOME_MESSAGE = 'Gateway API Test TCP Server\n';

const host = process.env.HOST ?? '127.0.0.1';
const plainPort = Number(process.env.PORT ?? 3000);
const tlsPort = process.env.PORT_8443 ? Number(process.env.PORT_8443) : undefined;
const namespace = process.env.SINEW_NAMESPACE ?? process.env.NAMESPACE ?? 'default';
const pod = process.env.POD_NAME ?? `${process.env.SINEW_WORKLOAD ?? 'tcp-backend'}-${process.pid}`;

/** Go's crypto/tls names: tls.VersionName and tls.CipherSuiteName (TLS 1.3 suites as IANA names them). */
const GO_VERSION_NAMES: Record<string, string> = { TLSv1: 'TLS 1.0', 'TLSv1.1': 'TLS 1.1', 'TLSv1.2': 'TLS 1.2', 'TLSv1.3': 'TLS 1.3' };

function serve(socket: Socket, tlsSocket?: TLSSocket): void {
  socket.on('error', () => socket.destroy());
  const assertions: Record<string, unknown> = { namespace, ingress: '', service: '', pod, tcpport: String(plainPort), ...(tlsPort ? { tlsport: String(tlsPort) } : {}), isTLS: tlsSocket !== undefined };
  if (tlsSocket) {
    const cipher = tlsSocket.getCipher();
    const protocol = tlsSocket.getProtocol() ?? '';
    assertions.tls = {
      version: GO_VERSION_NAMES[protocol] ?? protocol,
      serverName: (tlsSocket as TLSSocket & { servername?: string | false }).servername || '',
      ...(tlsSocket.alpnProtocol ? { negotiatedProtocol: tlsSocket.alpnProtocol } : {}),
      cipherSuite: cipher?.standardName ?? cipher?.name ?? '',
    };
  }
  socket.write(WELCOME_MESSAGE);
  const lines = createInterface({ input: socket, crlfDelay: Infinity });
  // readline passes the socket's errors on (a client's reset): the connection ends, not the server
  lines.on('error', () => socket.destroy());
  lines.on('line', (line) => {
    if (line === 'TEST') socket.write(`${JSON.stringify(assertions)}\n`);
    else if (line === 'IS_TLS') socket.write(`${tlsSocket !== undefined}\n`);
    else if (line === 'PING') socket.write('PONG\n');
  });
  lines.on('close', () => socket.end());
}

const plain = createServer((socket) => serve(socket));
plain.listen(plainPort, host, () => process.stdout.write(`tcp echo ${pod} listening on ${host}:${plainPort}\n`));

const certFile = process.env.TLS_SERVER_CERT;
const keyFile = process.env.TLS_SERVER_PRIV_KEY;
const secure =
  tlsPort !== undefined && certFile && keyFile
    ? createTlsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' }, (socket) => serve(socket, socket))
    : undefined;
secure?.on('tlsClientError', () => undefined);
secure?.listen(tlsPort, host, () => process.stdout.write(`tcp echo ${pod} listening for TLS on ${host}:${tlsPort}\n`));

const shutdown = () => {
  secure?.close();
  plain.close(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
