/**
 * HTTP/1.1 field lines (`name: value\r\n`) that the proxy builds itself: the trace context and
 * the peer metadata it adds to every upstream request. Their values are hex it generated, a
 * context its parsers validated, or constants checked once, so they are serialized once and go
 * onto the wire as they are. Checking them again for every request, as the HTTP/1.1 client
 * checks what the app sent, was a measurable share of what telemetry cost per request.
 */

/** RFC 9110 §5.6.2 token characters, any number of them (a token is one or more). */
export const TOKEN_CHARS_ONLY = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]*$/;
/**
 * RFC 9110 §5.5 field-value characters (obs-text included). A CR, LF or NUL would let a value
 * end its line and inject a field; a character above 0xff would become one when written as
 * latin1.
 */
export const INVALID_FIELD_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * `text` from `start` to `end` without the optional whitespace (SP, HTAB) RFC 9110 §5.5 lets a
 * field value have around it. Not String#trim, which also takes CR, LF, other controls and
 * NBSP (0xa0, a valid obs-text byte) off the ends.
 */
export function trimOws(text: string, start: number, end: number): string {
  while (start < end && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 0x20 || text.charCodeAt(end - 1) === 0x09)) end--;
  return text.slice(start, end);
}

/** An RFC 9110 token: a method or a field name. */
export function isToken(text: string): boolean {
  return text.length > 0 && TOKEN_CHARS_ONLY.test(text);
}

/**
 * One checked field line, for lines built once and sent many times. Throws a TypeError naming
 * the field when the name or value could not be sent as they are.
 */
export function fieldLine(name: string, value: string): string {
  if (!isToken(name)) throw new TypeError(`invalid header name "${name}"`);
  if (INVALID_FIELD_CHAR.test(value)) throw new TypeError(`header "${name}" has a character HTTP/1.1 does not allow in its value`);
  return name + ': ' + value + '\r\n';
}

/**
 * Sets each field of `lines` on a header object (for clients that take headers as an object:
 * undici for HTTP/2 and TLS upstreams, tests). A field already in `target` is replaced.
 */
export function addFieldLines<H extends Record<string, unknown>>(target: H, lines: string): H {
  let start = 0;
  while (start < lines.length) {
    let end = lines.indexOf('\r\n', start);
    if (end < 0) end = lines.length;
    const colon = lines.indexOf(':', start);
    if (colon > start && colon < end) (target as Record<string, unknown>)[lines.slice(start, colon)] = lines.slice(colon + 1, end).trim();
    start = end + 2;
  }
  return target;
}

/**
 * `headers` without the named fields (lower-case names): a copy when any of them is present,
 * else `headers` itself. Not `delete`: it turns V8's object into a slow dictionary that every
 * later header operation on it pays for (measurable on the proxy's request path).
 */
export function withoutFields<H extends Record<string, unknown>>(headers: H, names: readonly string[]): H {
  let present = false;
  for (let i = 0; i < names.length; i++) {
    if (headers[names[i]] !== undefined) {
      present = true;
      break;
    }
  }
  if (!present) return headers;
  const out: Record<string, unknown> = {};
  for (const key in headers) if (!names.includes(key)) out[key] = headers[key];
  return out as H;
}
