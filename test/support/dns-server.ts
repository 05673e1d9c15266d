/**
 * A DNS server the test controls, on a UDP port of loopback: it answers A queries for the
 * names it is given (a name may have several addresses, and the answer may be changed while
 * it runs), NXDOMAIN for any other name, and counts the queries per name. Proxies are pointed
 * at it with `--dns-resolver` / SINEW_DNS_RESOLVERS, so tests resolve names like
 * `httpbin.org` to local stand-ins and never reach the internet. Packets are encoded with
 * dns-packet (RFC 1035 wire format).
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import * as packet from 'dns-packet';

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, what `--dns-resolver` takes. */
  address: string;
  /**
   * Sets the A records of `name` (an empty list: NXDOMAIN), with their TTL in seconds (default
   * 0: the answer says nothing about how long it holds, so the proxy's refresh rate decides).
   */
  set(name: string, addresses: readonly string[], ttlSeconds?: number): void;
  /** How many queries asked for `name`. */
  queries(name: string): number;
  close(): Promise<void>;
}

export async function startDnsServer(records: Record<string, readonly string[]> = {}): Promise<TestDnsServer> {
  const answers = new Map<string, readonly string[]>(Object.entries(records).map(([n, a]) => [n.toLowerCase(), a]));
  const ttls = new Map<string, number>();
  const counts = new Map<string, number>();
  const socket: Socket = createSocket('udp4');
  socket.on('message', (message, peer) => {
    let query: packet.Packet;
    try {
      query = packet.decode(message);
    } catch {
      return; // not DNS: nothing to answer
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase();
    counts.set(name, (counts.get(name) ?? 0) + 1);
    const addresses = answers.get(name) ?? [];
    const reply = packet.encode({
      id: query.id,
      type: 'response',
      // RD copied, RA set; RCODE 3 (NXDOMAIN) for an unknown name.
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (addresses.length > 0 ? 0 : 3),
      questions: [question],
      answers: question.type === 'A' ? addresses.map((data) => ({ type: 'A' as const, name: question.name, ttl: ttls.get(name) ?? 0, data })) : [],
    });
    socket.send(reply, peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  return {
    address: `127.0.0.1:${port}`,
    set(name, addresses, ttlSeconds = 0) {
      answers.set(name.toLowerCase(), addresses);
      ttls.set(name.toLowerCase(), ttlSeconds);
    },
    queries: (name) => counts.get(name.toLowerCase()) ?? 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
