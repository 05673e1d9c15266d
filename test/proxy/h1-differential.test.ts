/**
 * The proxy's own HTTP/1.1 request parser against llhttp (node's server, which the proxy falls
 * back to): for generated heads full of the usual smuggling and injection material, every head
 * the proxy's parser accepts must be accepted by llhttp and read the same way — method, target,
 * each field and the body length. A head it declines goes to llhttp anyway, so declining is
 * always safe; accepting what llhttp would refuse, or reading it differently, is the bug this
 * looks for. Seeded, so a failure names a case that replays.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { SeededRandom, randomInt } from '../../src/core/random.js';
import { parseHead } from '../../src/proxy/http/h1-server.js';

const CASES = 600;
const random = new SeededRandom(20261122);
const pick = <T>(xs: readonly T[]): T => xs[randomInt(random, xs.length)];
const chance = (p: number) => random.next() < p;

/** Each part of a head is ordinary most of the time and hostile otherwise: [ordinary, hostile]. */
const METHODS = [['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD'], ['get', 'CONNECT', 'TRACE', 'FOO', 'GE\tT', '']] as const;
const TARGETS = [
  ['/', '/a/b?x=1&y=%20', '/a#frag', 'http://h/x', 'HTTPS://h:8/x?q', '//x', '/;p=1', "/a'b(c)*", '/[x]', '/%zz', '/~user/a-b_c.d'],
  ['*', '/a b', '/a\x01', '/a\x7f', '/\xe9', '/a"b', '/a<b>', '/a\\b', '/a{b}', '/a|b', '/a^b', '/a`b', '', 'x/y'],
] as const;
const VERSIONS = [['HTTP/1.1'], ['HTTP/1.0', 'HTTP/2.0', 'http/1.1', 'HTTP/1.10', 'HTTP/11', 'HTTP/1.1 ']] as const;
const NAMES = [
  ['x-a', 'X-Mixed-Case', 'user-agent', 'accept', 'cookie', 'set-cookie', 'authorization', 'content-type', 'x-forwarded-for', 'referer', 'content-length', 'connection', "x!#$%&'*+.^_`|~9"],
  ['transfer-encoding', 'upgrade', 'expect', 'x b', 'x\x01', '', 'x\xe9', 'x_(a)', 'x-a ', 'x"y', 'x:y'],
] as const;
const VALUES = [
  ['v', 'some value', ' v ', '\tv\t', '', 'a, b', '\xe9t\xe9', '\xa0v\xa0', 'close', 'keep-alive', 'Keep-Alive', 'x=1; y=2', '"quoted"', 'a\tb', '!~'],
  ['a\x00b', 'a\x7fb', 'a\x01b', 'a\rb', 'a\nb', 'upgrade', 'chunked', 'a\x0bb'],
] as const;
const LENGTHS = [['0', '5', '12'], ['+5', '05', ' 5 ', '5, 5', '-1', '1e3', '0x10', '999999999999999999', '']] as const;

/** An ordinary part 90% of the time. */
const part = (choices: readonly [readonly string[], readonly string[]]): string => pick(chance(0.9) ? choices[0] : choices[1]);

/** One generated head (without the blank line that ends it). */
function generateHead(): string {
  const sp = chance(0.97) ? ' ' : pick(['  ', '\t']);
  const lines = [`${part(METHODS)}${sp}${part(TARGETS)}${sp}${part(VERSIONS)}`];
  if (chance(0.95)) lines.push(`${pick(['Host', 'host', 'HOST'])}: ${pick(['echo', 'echo:80', 'a b', ''])}`);
  const fields = randomInt(random, 5);
  for (let i = 0; i < fields; i++) {
    const name = part(NAMES);
    const value = name === 'content-length' ? part(LENGTHS) : part(VALUES);
    const colon = chance(0.97) ? ': ' : pick([':', ' : ', ':\t']);
    lines.push(`${name}${colon}${value}`);
    if (chance(0.02)) lines.push(' folded continuation');
  }
  const eol = chance(0.97) ? '\r\n' : '\n';
  return lines.join(eol);
}

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyLength: number;
}

let server: http.Server;
let port = 0;

before(async () => {
  // As the proxy's listener configures node's server (its default header limit).
  server = http.createServer({ maxHeaderSize: 60 * 1024 }, (req, res) => {
    let bodyLength = 0;
    req.on('data', (c: Buffer) => (bodyLength += c.length));
    req.on('end', () => {
      // node gives a request's set-cookie as an array; on the wire it is the same one field.
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
      const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers, bodyLength };
      // In a header, so that a HEAD answer carries it too.
      res.writeHead(200, { 'x-seen': Buffer.from(JSON.stringify(seen)).toString('base64'), 'content-length': 0, connection: 'close' });
      res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

after(() => server.close());

/** What node's server made of the bytes: what it saw, or its status when it refused them. */
async function askNode(bytes: Buffer): Promise<{ status: number; seen?: Seen }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(bytes);
  let text = '';
  for await (const chunk of socket) {
    text += (chunk as Buffer).toString('latin1');
    if (text.includes('\r\n\r\n')) break;
  }
  socket.destroy();
  const status = Number(text.slice(9, 12));
  const seen = /\r\nx-seen: ([^\r]*)/i.exec(text)?.[1];
  return { status, seen: seen === undefined ? undefined : (JSON.parse(Buffer.from(seen, 'base64').toString()) as Seen) };
}

test(`every head the proxy's parser accepts, llhttp accepts and reads the same way (${CASES} generated heads)`, async () => {
  const socket = new net.Socket();
  let accepted = 0;
  for (let i = 0; i < CASES; i++) {
    const head = generateHead();
    const parsed = parseHead(head, socket);
    if (parsed === undefined) continue;
    accepted++;
    const body = Buffer.alloc(parsed.bodyLength, 'b');
    const node = await askNode(Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]));
    const which = `case ${i}: ${JSON.stringify(head)}`;
    assert.equal(node.status, 200, `${which}: llhttp refused what the proxy accepted`);
    assert.deepEqual(
      { method: parsed.req.method, url: parsed.req.url, headers: parsed.req.headers, bodyLength: parsed.bodyLength },
      node.seen,
      `${which}: read differently`,
    );
  }
  // The generator must exercise both sides: plenty accepted, plenty declined.
  assert.ok(accepted >= CASES / 5 && accepted <= CASES - CASES / 5, `accepted ${accepted} of ${CASES}`);
});
