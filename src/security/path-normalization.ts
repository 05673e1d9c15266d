/**
 * Request path normalisation, Istio's meshConfig `pathNormalization` (`normalizePath` at the
 * end of this file, with the four modes); the BASE step is Istio's default,
 * which sets Envoy's HttpConnectionManager `normalize_path: true` and leaves `merge_slashes`
 * off and `path_with_escaped_slashes_action` at its default (KEEP_UNCHANGED).
 * https://istio.io/latest/docs/reference/config/security/normalization/
 *
 * Envoy's normalize_path is Chromium's URL path canonicaliser (Envoy keeps a snapshot of it in
 * source/common/chromium_url; PathUtil::canonicalPath), which does:
 *  - RFC 3986 5.2.4 dot-segment removal, where `%2e`/`%2E` counts as a dot, and `..` never
 *    climbs above the root (`/a/../../b` -> `/b`);
 *  - backslash is a path separator (`/a/..\b` -> `/b`);
 *  - percent-encoded unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`) are decoded;
 *    every other escape is kept exactly as sent, hex case included, so `%2F`, `%5c` and `%25`
 *    stay escaped (decoding `%2F` would be DECODE_AND_MERGE_SLASHES, not BASE);
 *  - an escaped NUL (`%00`) makes the path invalid: Envoy answers 400;
 *  - characters that are not allowed raw in a path (space, `"`, `<`, `>`, `^`, `` ` ``, `{`,
 *    `|`, `}`, controls, bytes >= 0x80) are percent-encoded;
 *  - a `%` that starts no valid escape is kept, and an escape that only appears after decoding
 *    (`%%30%30`) is defused by encoding the first `%` as `%25`.
 * The same path is used for route matching and sent upstream (Envoy rewrites `:path`).
 *
 * Pure functions only: no I/O, so the cases of Envoy's own path_utility_test.cc are unit tests.
 */

// === character classes (Chromium url_canon_path.cc kPathCharLookup) ===

/** Needs handling beyond a plain copy. */
const SPECIAL = 1;
/** Percent-encode when it appears raw. */
const ESCAPE = 2 | SPECIAL;
/** Decode when it appears percent-encoded. */
const UNESCAPE = 4;
/** Never allowed (NUL), raw or encoded: the path is invalid. */
const INVALID = 8 | SPECIAL;

const TABLE: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(ESCAPE); // controls, DEL and every byte >= 0x80
  t[0] = INVALID;
  for (const c of "!$&'()*+,/:;=@[]") t[c.charCodeAt(0)] = 0;
  for (const c of '-_~') t[c.charCodeAt(0)] = UNESCAPE;
  for (let c = 0x30; c <= 0x39; c++) t[c] = UNESCAPE;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = UNESCAPE;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = UNESCAPE;
  t[0x2e] = SPECIAL; // '.': dot segments
  return t;
})();

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The byte a `%XY` at `i` encodes, or -1 when it is not a valid escape. */
function decodeEscape(s: string, i: number): number {
  if (i + 3 > s.length) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

/** Length of a dot at `i`: 1 for `.`, 3 for `%2e`/`%2E`, else 0 (Chromium IsDot). */
function dotLength(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x2e) return 1;
  if (c === 0x25 && i + 3 <= s.length && s.charCodeAt(i + 1) === 0x32 && (s.charCodeAt(i + 2) | 0x20) === 0x65) return 3;
  return 0;
}

const isSlash = (c: number): boolean => c === 0x2f || c === 0x5c;

function escapeByte(out: string[], b: number): void {
  out.push('%', HEX[b >> 4], HEX[b & 15]);
}

/**
 * Chromium's CheckForNestedEscapes: a `%` kept because no valid escape followed it, plus the
 * characters decoded after it, must not spell a new escape (`%%30%30` would become `%00` and
 * mean something else to whoever decodes it next); if they do, that `%` becomes `%25`.
 */
function defuseNestedEscape(spec: string, next: number, percentAt: number, out: string[]): void {
  const length = out.length;
  const lastDecoded = out[length - 1];
  const appendNext = percentAt === length - 2;
  if (appendNext) {
    if (next === spec.length || spec.charCodeAt(next) >= 0x80) return;
    out.push(spec[next]);
  }
  const a = hexValue(out[percentAt + 1]?.charCodeAt(0) ?? -1);
  const b = hexValue(out[percentAt + 2]?.charCodeAt(0) ?? -1);
  if (percentAt + 3 <= out.length && a >= 0 && b >= 0) {
    if (!appendNext) out.push(out[percentAt + 1]);
    out[percentAt + 1] = '2';
    out[percentAt + 2] = '5';
    out.push(lastDecoded);
  } else if (appendNext) {
    out.length = length; // the next input character is processed normally
  }
}

/** Output ends in `/`: drop the last segment, never the leading slash (Chromium BackUpToPreviousSlash). */
function backUpToPreviousSlash(out: string[]): void {
  let i = out.length - 1;
  if (i === 0) return;
  i--;
  while (i > 0 && out[i] !== '/') i--;
  out.length = i + 1;
}

/** True when the path is already canonical: no dots, escapes, backslashes or characters to encode. */
function isPlain(path: string): boolean {
  if (path.charCodeAt(0) !== 0x2f) return false;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c > 0xff || TABLE[c] & SPECIAL) return false;
  }
  return true;
}

// === normalisation ===

/**
 * Envoy's `PathUtil::canonicalPath` for the path part of `:path` (no query): the canonical
 * path, always starting with `/`, or undefined when the path is invalid (Envoy answers 400).
 */
export function canonicalPath(path: string): string | undefined {
  if (isPlain(path)) return path;
  const out: string[] = [];
  let ok = true;
  // The path always starts with a slash; a backslash counts as one and is converted below.
  if (path.length === 0 || !isSlash(path.charCodeAt(0))) out.push('/');
  let invalidPercentAt = -Infinity;
  const end = path.length;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c > 0xff) {
      // Not reachable from the wire (node hands header bytes over as latin1), but a string
      // could carry it: encode as UTF-8, then escape every byte, as Chromium does.
      const cp = path.codePointAt(i)!;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) escapeByte(out, b);
      if (cp > 0xffff) i++;
      continue;
    }
    const flags = TABLE[c];
    if (!(flags & SPECIAL)) {
      out.push(path[i]);
      continue;
    }
    const dot = dotLength(path, i);
    if (dot > 0) {
      if (out[out.length - 1] !== '/') {
        out.push('.'); // part of a name: `a.b`, `a%2eb` -> `a.b`
        i += dot - 1;
        continue;
      }
      // Slash then dot: `.` or `..` followed by a slash or the end is a dot segment.
      const after = i + dot;
      if (after === end || isSlash(path.charCodeAt(after))) {
        i = after === end ? after - 1 : after; // current directory: skip `.` and its slash
        continue;
      }
      const second = dotLength(path, after);
      const afterSecond = after + second;
      if (second > 0 && (afterSecond === end || isSlash(path.charCodeAt(afterSecond)))) {
        backUpToPreviousSlash(out);
        i = afterSecond === end ? afterSecond - 1 : afterSecond;
        continue;
      }
      out.push('.');
      i += dot - 1;
      continue;
    }
    if (c === 0x5c) {
      out.push('/');
      continue;
    }
    if (c === 0x25) {
      const value = decodeEscape(path, i);
      if (value < 0) {
        // Not an escape: keep the `%` as sent (Chromium's permissive choice), remember it.
        invalidPercentAt = out.length;
        out.push('%');
        continue;
      }
      const vflags = TABLE[value];
      if (vflags & UNESCAPE) {
        out.push(String.fromCharCode(value));
        if (invalidPercentAt >= out.length - 3) defuseNestedEscape(path, i + 3, invalidPercentAt, out);
      } else {
        // Kept exactly as sent, hex case included (a server may be sensitive to it).
        out.push('%', path[i + 1], path[i + 2]);
        if (vflags === INVALID) ok = false;
      }
      i += 2;
      continue;
    }
    if (flags === INVALID) ok = false;
    escapeByte(out, c);
  }
  return ok ? out.join('') : undefined;
}

/**
 * The connection manager's use: origin-form paths (starting with `/`) are normalised; anything
 * else (`*` of `OPTIONS *`, or a relative path the caller refuses) is returned unchanged, since
 * Envoy checks for a relative path before normalising. Undefined = answer 400.
 */
export function normalizeRequestPath(path: string): string | undefined {
  return path.charCodeAt(0) === 0x2f ? canonicalPath(path) : path;
}

// === Istio's modes (meshConfig.pathNormalization.normalization) ===

/**
 * Istio's normalisation modes (https://istio.io/latest/docs/reference/config/security/normalization/):
 * NONE: nothing; BASE (the default): Envoy's normalize_path; MERGE_SLASHES: then
 * merge_slashes; DECODE_AND_MERGE_SLASHES: first `path_with_escaped_slashes_action:
 * UNESCAPE_AND_FORWARD` (`%2F`, `%2f`, `%5C`, `%5c` decoded), then both.
 */
export const PATH_NORMALIZATIONS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: 'path_normalization_failed' | 'invalid_path' };

const ENCODED_NUL = /%00/;

/**
 * A request target (`:path`, query included) as the connection manager forwards and routes
 * it, in Envoy's order of operations (ConnectionManagerUtility::maybeNormalizePath): the
 * fragment is dropped (Envoy strips `#...` before anything else), then escaped slashes are
 * decoded (DECODE_AND_MERGE_SLASHES), then the path is made canonical (BASE and up), then
 * slashes are merged (MERGE_SLASHES and up). Each step touches the path, never the query.
 *
 * Refused (answer 400): a path that is not origin-form (`\admin`, `admin`; Envoy's
 * `absolute_path_rejected`; `*` is left to the caller), and an escaped NUL (`%00`) in every
 * mode, NONE included: it has no legitimate use and a backend that decodes it may cut the
 * path there.
 */
export function normalizePath(target: string, mode: PathNormalization): NormalizedPath {
  const hash = target.indexOf('#');
  const withoutFragment = hash >= 0 ? target.slice(0, hash) : target;
  const q = withoutFragment.indexOf('?');
  let path = q >= 0 ? withoutFragment.slice(0, q) : withoutFragment;
  const query = q >= 0 ? withoutFragment.slice(q) : '';
  if (path.charCodeAt(0) !== 0x2f) return { ok: false, reason: 'invalid_path' };
  if (ENCODED_NUL.test(path)) return { ok: false, reason: 'path_normalization_failed' };
  if (mode === 'DECODE_AND_MERGE_SLASHES') path = path.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
  if (mode !== 'NONE') {
    const canonical = canonicalPath(path);
    if (canonical === undefined) return { ok: false, reason: 'path_normalization_failed' };
    path = canonical;
  }
  if (mode === 'MERGE_SLASHES' || mode === 'DECODE_AND_MERGE_SLASHES') path = path.replace(/\/{2,}/g, '/');
  return { ok: true, path: path + query };
}

/**
 * Envoy's HTTP/1 codec takes methods as RFC 9110 tokens and Istio matches them
 * case-sensitively, so a method in lower case (`get`) would slip past `methods: ["GET"]` on a
 * backend that reads it leniently; the proxy answers it 400, as Envoy's codec does for a
 * method it does not know.
 */
export function isAcceptedMethod(method: string): boolean {
  return /^[A-Z][A-Z0-9_-]*$/.test(method);
}
