/**
 * tcp-echo: a line echo server that says which version answered.
 *
 * A stand-alone copy of Istio's samples/tcp-echo/src (the Go tcp-echo-server): every line a
 * client sends comes back prefixed, `<prefix> <line>`, on the same connection, until the client
 * closes it. Istio's image takes the ports and the prefix as arguments ("9000,9001,9002" "one");
 * here the port comes from PORT (the runner gives one per replica) and the prefix is the only
 * argument. Run alone with `PORT=9000 npx tsx tcp-echo.ts one`, then `echo hello | nc 127.0.0.1 9000`.
 */
import net from 'node:net';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? '9000');
const prefix = process.argv[2] ?? process.env.TCP_ECHO_PREFIX ?? 'hello';
/** A client that never sends a newline must not grow the buffer without bound. */
const maxLineBytes = 64 * 1024;

const server = net.createServer((socket) => {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let i: number;
    while ((i = buffered.indexOf('\n')) >= 0) {
      socket.write(`${prefix} ${buffered.slice(0, i + 1)}`);
      buffered = buffered.slice(i + 1);
    }
    if (buffered.length > maxLineBytes) socket.destroy();
  });
  // A reset by the client (or by its proxy) is routine for an echo server.
  socket.on('error', () => socket.destroy());
});

server.listen(port, host, () => {
  const address = server.address();
  // The line lets a parent that started us with PORT=0 learn the port the kernel chose.
  process.stdout.write(`listening on ${typeof address === 'object' && address ? address.port : port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    process.exit(0);
  });
}
