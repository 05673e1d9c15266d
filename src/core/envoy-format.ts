/**
 * Envoy's substitution format strings (access logs: `%START_TIME%`, `%REQ(X-FORWARDED-FOR)%`,
 * `%REQ(USER-AGENT):10%`, ...), parsed once: the mesh config loader checks a format with it
 * and the proxy's access log compiles it into a line writer (src/telemetry/access-log.ts).
 *
 * Grammar (Envoy's SubstitutionFormatParser): text, with command operators `%NAME%`,
 * `%NAME(argument)%` or `%NAME(argument):max_length%`. An operator Envoy does not know is a
 * configuration error there, and here. `KNOWN_OPERATORS` are the ones Sinew fills in; an
 * operator Envoy has but Sinew has no value for yet (`UPSTREAM_WIRE_BYTES_SENT`, ...) writes
 * `-` as Envoy writes an unset value (listed in `EMPTY_OPERATORS`).
 */

export type FormatSegment = { kind: 'text'; text: string } | { kind: 'operator'; name: string; argument?: string; maxLength?: number };

/** The operators Sinew writes a value for (HTTP access logs). */
export const KNOWN_OPERATORS: ReadonlySet<string> = new Set([
  'START_TIME', 'REQ', 'REQUEST_HEADER', 'RESP', 'RESPONSE_HEADER', 'REQ_WITHOUT_QUERY', 'PROTOCOL', 'RESPONSE_CODE',
  'RESPONSE_FLAGS', 'RESPONSE_CODE_DETAILS', 'CONNECTION_TERMINATION_DETAILS', 'UPSTREAM_TRANSPORT_FAILURE_REASON',
  'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION', 'UPSTREAM_HOST', 'UPSTREAM_CLUSTER', 'UPSTREAM_CLUSTER_RAW',
  'UPSTREAM_LOCAL_ADDRESS', 'DOWNSTREAM_LOCAL_ADDRESS', 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'DOWNSTREAM_LOCAL_PORT',
  'DOWNSTREAM_REMOTE_ADDRESS', 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', 'DOWNSTREAM_REMOTE_PORT', 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS',
  'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT', 'REQUESTED_SERVER_NAME', 'ROUTE_NAME', 'UPSTREAM_REQUEST_ATTEMPT_COUNT',
  'GRPC_STATUS', 'GRPC_STATUS_NUMBER', 'HOSTNAME', 'STREAM_ID', 'DYNAMIC_METADATA',
]);

/** Envoy operators Sinew has no value for yet: they write `-` (null in JSON), as an unset value does in Envoy. */
export const EMPTY_OPERATORS: ReadonlySet<string> = new Set([
  'REQUEST_DURATION', 'RESPONSE_DURATION', 'TRACE_ID', 'UPSTREAM_PROTOCOL', 'RESPONSE_FLAGS_LONG', 'REQUEST_TX_DURATION', 'RESPONSE_TX_DURATION', 'REQUEST_HEADERS_BYTES', 'RESPONSE_HEADERS_BYTES',
  'RESPONSE_TRAILERS_BYTES', 'UPSTREAM_WIRE_BYTES_SENT', 'UPSTREAM_WIRE_BYTES_RECEIVED', 'UPSTREAM_HEADER_BYTES_SENT',
  'UPSTREAM_HEADER_BYTES_RECEIVED', 'DOWNSTREAM_WIRE_BYTES_SENT', 'DOWNSTREAM_WIRE_BYTES_RECEIVED', 'DOWNSTREAM_HEADER_BYTES_SENT',
  'DOWNSTREAM_HEADER_BYTES_RECEIVED', 'TRAILER', 'RESPONSE_TRAILER', 'CLUSTER_METADATA', 'UPSTREAM_METADATA',
  'FILTER_STATE', 'UPSTREAM_FILTER_STATE', 'VIRTUAL_CLUSTER_NAME', 'DOWNSTREAM_PEER_URI_SAN', 'DOWNSTREAM_LOCAL_URI_SAN',
  'DOWNSTREAM_PEER_SUBJECT', 'DOWNSTREAM_LOCAL_SUBJECT', 'DOWNSTREAM_TLS_VERSION', 'DOWNSTREAM_TLS_CIPHER', 'DOWNSTREAM_TLS_SESSION_ID',
  'DOWNSTREAM_PEER_ISSUER', 'DOWNSTREAM_PEER_SERIAL', 'DOWNSTREAM_PEER_FINGERPRINT_256', 'UPSTREAM_TLS_VERSION', 'UPSTREAM_PEER_SUBJECT',
  'UPSTREAM_PEER_URI_SAN', 'UPSTREAM_LOCAL_URI_SAN', 'CONNECTION_ID', 'UPSTREAM_CONNECTION_ID', 'CEL', 'METADATA', 'ENVIRONMENT',
  'LOCAL_REPLY_BODY', 'UPSTREAM_REMOTE_ADDRESS', 'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', 'UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT',
  'UPSTREAM_LOCAL_PORT', 'UPSTREAM_REMOTE_PORT', 'UPSTREAM_TRANSPORT_FAILURE_REASON_LONG', 'DOWNSTREAM_TRANSPORT_FAILURE_REASON',
]);

/** Operators that take an argument (`%REQ(X-FOO)%`); START_TIME's is optional. */
const NEEDS_ARGUMENT = new Set(['REQ', 'REQUEST_HEADER', 'RESP', 'RESPONSE_HEADER', 'REQ_WITHOUT_QUERY', 'TRAILER', 'RESPONSE_TRAILER', 'ENVIRONMENT']);

export class EnvoyFormatError extends Error {
  readonly code = 'SNW_ERR_ACCESS_LOG_FORMAT';
}

/** Parses a format string; throws EnvoyFormatError naming the first problem and its position. */
export function parseEnvoyFormat(format: string): FormatSegment[] {
  const out: FormatSegment[] = [];
  let text = '';
  let i = 0;
  while (i < format.length) {
    const c = format[i];
    if (c !== '%') {
      text += c;
      i++;
      continue;
    }
    const m = /^%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::(\d+))?%/.exec(format.slice(i));
    if (!m) throw new EnvoyFormatError(`a % at position ${i} does not start a command operator (%NAME%, %NAME(arg)% or %NAME(arg):length%)`);
    const [whole, name, argument, maxLength] = m;
    if (!KNOWN_OPERATORS.has(name) && !EMPTY_OPERATORS.has(name)) throw new EnvoyFormatError(`%${name}% at position ${i} is not a command operator Envoy has`);
    if (NEEDS_ARGUMENT.has(name) && !argument) throw new EnvoyFormatError(`%${name}% at position ${i} needs an argument, like %${name}(X-REQUEST-ID)%`);
    if (text) out.push({ kind: 'text', text });
    text = '';
    const op: FormatSegment = { kind: 'operator', name };
    if (argument !== undefined) op.argument = argument;
    if (maxLength !== undefined) op.maxLength = Number(maxLength);
    out.push(op);
    i += whole.length;
  }
  if (text) out.push({ kind: 'text', text });
  return out;
}

/** Parses every string value of a JSON format dictionary (nested objects allowed); throws on the first bad one, naming its key. */
export function checkEnvoyFormatLabels(labels: Record<string, unknown>, prefix = ''): void {
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value === 'string') {
      try {
        parseEnvoyFormat(value);
      } catch (err) {
        throw new EnvoyFormatError(`${prefix}${key}: ${(err as Error).message}`);
      }
    } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) checkEnvoyFormatLabels(value as Record<string, unknown>, `${prefix}${key}.`);
  }
}
