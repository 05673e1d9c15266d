/**
 * Request smuggling and malformed-framing shapes: each a request a front proxy and the server
 * behind it could read differently, with a second request (`GET /api/smuggled`) hidden where
 * one reading puts it. A proxy must refuse every one (4xx, then close the connection) and
 * never pass the hidden request on. Collected from RFC 9112's framing rules and the classic
 * CL.TE / TE.CL / TE.TE desync families.
 */
const HIDDEN = 'GET /api/smuggled HTTP/1.1\r\nHost: app\r\n\r\n';

export interface Shape {
  name: string;
  bytes: string;
}

const post = (fields: string, body: string) => `POST /api/shape HTTP/1.1\r\nHost: app\r\n${fields}\r\n${body}`;

export const SMUGGLING_SHAPES: readonly Shape[] = [
  { name: 'CL.TE: Content-Length and chunked together', bytes: post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${HIDDEN}`) },
  { name: 'TE.CL: chunked first, then Content-Length', bytes: post('Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', `5c\r\n${HIDDEN}\r\n0\r\n\r\n`) },
  { name: 'TE.TE: an unknown coding last', bytes: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n', `0\r\n\r\n${HIDDEN}`) },
  { name: 'TE: xchunked', bytes: post('Transfer-Encoding: xchunked\r\n', `0\r\n\r\n${HIDDEN}`) },
  { name: 'TE: chunked, identity', bytes: post('Transfer-Encoding: chunked, identity\r\n', `0\r\n\r\n${HIDDEN}`) },
  { name: 'TE with a space before the colon', bytes: post('Transfer-Encoding : chunked\r\n', `0\r\n\r\n${HIDDEN}`) },
  { name: 'TE hidden in an obs-fold', bytes: post('X-Pad: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', `0\r\n\r\n${HIDDEN}`) },
  { name: 'TE with a vertical tab', bytes: post('Transfer-Encoding:\x0bchunked\r\n', `0\r\n\r\n${HIDDEN}`) },
  { name: 'two differing Content-Length fields', bytes: post('Content-Length: 5\r\nContent-Length: 44\r\n', `hello${HIDDEN}`) },
  { name: 'Content-Length list of differing values', bytes: post('Content-Length: 5, 44\r\n', `hello${HIDDEN}`) },
  { name: 'Content-Length with a plus sign', bytes: post('Content-Length: +5\r\n', `hello${HIDDEN}`) },
  { name: 'Content-Length in hex', bytes: post('Content-Length: 0x5\r\n', `hello${HIDDEN}`) },
  { name: 'Content-Length negative', bytes: post('Content-Length: -1\r\n', HIDDEN) },
  { name: 'Content-Length with a space inside', bytes: post('Content-Length: 5 5\r\n', `hello${HIDDEN}`) },
  { name: 'chunk size past 2^64', bytes: post('Transfer-Encoding: chunked\r\n', `fffffffffffffffffffffff\r\n${HIDDEN}`) },
  { name: 'chunk size with a sign', bytes: post('Transfer-Encoding: chunked\r\n', `-5\r\nhello\r\n0\r\n\r\n${HIDDEN}`) },
  { name: 'chunk data not followed by CRLF', bytes: post('Transfer-Encoding: chunked\r\n', `5\r\nhelloXX0\r\n\r\n${HIDDEN}`) },
  { name: 'chunk extension with a bare CR', bytes: post('Transfer-Encoding: chunked\r\n', `5;a\rb\r\nhello\r\n0\r\n\r\n${HIDDEN}`) },
  { name: 'a bare CR in a field value', bytes: post('X-A: 1\rX-B: 2\r\nContent-Length: 0\r\n', HIDDEN) },
  { name: 'a NUL in a field value', bytes: post('X-A: 1\x002\r\nContent-Length: 0\r\n', HIDDEN) },
  { name: 'a field name with a space', bytes: post('Content Length: 5\r\n', `hello${HIDDEN}`) },
  { name: 'bare LF line ends', bytes: `POST /api/shape HTTP/1.1\nHost: app\nContent-Length: 5\n\nhello${HIDDEN}` },
  { name: 'two Host fields', bytes: `GET /api/shape HTTP/1.1\r\nHost: app\r\nHost: evil.example\r\n\r\n${HIDDEN}` },
  { name: 'no Host field', bytes: `GET /api/shape HTTP/1.1\r\n\r\n${HIDDEN}` },
  { name: 'a request line with a tab', bytes: `GET\t/api/shape HTTP/1.1\r\nHost: app\r\n\r\n${HIDDEN}` },
  { name: 'HTTP/1.2', bytes: `GET /api/shape HTTP/1.2\r\nHost: app\r\n\r\n${HIDDEN}` },
  { name: 'a method with a control character', bytes: `G\x01T /api/shape HTTP/1.1\r\nHost: app\r\n\r\n${HIDDEN}` },
  { name: 'a target with a space', bytes: `GET /api/sh ape HTTP/1.1\r\nHost: app\r\n\r\n${HIDDEN}` },
  { name: 'a field with no colon', bytes: post('Content-Length 5\r\n', `hello${HIDDEN}`) },
];
