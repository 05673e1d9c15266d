/**
 * Envoy's tls_inspector listener filter: reads a new connection's first bytes without
 * consuming them and, when they are a TLS ClientHello (RFC 8446 §4.1.2), the server name
 * (SNI, RFC 6066 §3) and the protocols offered over ALPN (RFC 7301 §3.1). The listener chooses
 * the filter chain, and with it the certificate, from them (filter-chains.ts).
 */

/** What the first bytes of a connection say. */
export type ClientHelloInspection =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'raw_buffer' }
  | { readonly kind: 'tls'; readonly serverName?: string; readonly alpn: readonly string[] }
  /** It starts like TLS but is no ClientHello this proxy can read (it is then served as TLS without SNI or ALPN). */
  | { readonly kind: 'tls-unreadable' };

/** The first byte of a TLS record carrying a handshake (RFC 8446 §5.1, ContentType 22). */
export const TLS_HANDSHAKE_RECORD = 0x16;
/** ClientHellos larger than this are not inspected (Envoy's default max_client_hello_size is 64 KiB). */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

const NEED_MORE = Object.freeze({ kind: 'need-more' as const });
const RAW = Object.freeze({ kind: 'raw_buffer' as const });
const UNREADABLE = Object.freeze({ kind: 'tls-unreadable' as const });

export function inspectClientHello(data: Buffer): ClientHelloInspection {
  if (data.length === 0) return NEED_MORE;
  if (data[0] !== TLS_HANDSHAKE_RECORD) return RAW;
  // Reassemble the handshake message from its records (a ClientHello may span several).
  const parts: Buffer[] = [];
  let have = 0;
  let offset = 0;
  let needed = -1;
  while (offset + 5 <= data.length) {
    if (data[offset] !== TLS_HANDSHAKE_RECORD) return UNREADABLE;
    const length = data.readUInt16BE(offset + 3);
    if (offset + 5 + length > data.length) break;
    parts.push(data.subarray(offset + 5, offset + 5 + length));
    have += length;
    offset += 5 + length;
    if (needed < 0 && have >= 4) {
      const head = Buffer.concat(parts);
      if (head[0] !== 1) return UNREADABLE; // not a ClientHello
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO_BYTES) return UNREADABLE;
    }
    if (needed >= 0 && have >= needed) return parseClientHello(Buffer.concat(parts).subarray(4, needed));
  }
  return data.length > MAX_CLIENT_HELLO_BYTES + 5 * 16 ? UNREADABLE : NEED_MORE;
}

function parseClientHello(body: Buffer): ClientHelloInspection {
  try {
    let p = 2 + 32; // legacy_version, random
    p += 1 + body[p]; // legacy_session_id
    p += 2 + body.readUInt16BE(p); // cipher_suites
    p += 1 + body[p]; // legacy_compression_methods
    if (p >= body.length) return { kind: 'tls', alpn: [] };
    const end = Math.min(body.length, p + 2 + body.readUInt16BE(p));
    p += 2;
    let serverName: string | undefined;
    const alpn: string[] = [];
    while (p + 4 <= end) {
      const type = body.readUInt16BE(p);
      const length = body.readUInt16BE(p + 2);
      const ext = body.subarray(p + 4, p + 4 + length);
      p += 4 + length;
      if (type === 0 && ext.length >= 5) {
        // server_name: a list of (name_type, name); host_name is type 0.
        let q = 2;
        while (q + 3 <= ext.length) {
          const nameType = ext[q];
          const nameLength = ext.readUInt16BE(q + 1);
          if (nameType === 0) {
            serverName = ext.subarray(q + 3, q + 3 + nameLength).toString('latin1').toLowerCase();
            break;
          }
          q += 3 + nameLength;
        }
      } else if (type === 16 && ext.length >= 2) {
        // application_layer_protocol_negotiation: a list of length-prefixed protocol ids.
        let q = 2;
        while (q < ext.length) {
          const n = ext[q];
          alpn.push(ext.subarray(q + 1, q + 1 + n).toString('latin1'));
          q += 1 + n;
        }
      }
    }
    return serverName === undefined ? { kind: 'tls', alpn } : { kind: 'tls', serverName, alpn };
  } catch {
    return UNREADABLE;
  }
}
