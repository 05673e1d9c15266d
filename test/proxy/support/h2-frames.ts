/**
 * Raw HTTP/2 frames (RFC 9113 §4), for the attacks node's own client will not send: a
 * connection preface, HEADERS with a minimal HPACK block, RST_STREAM, CONTINUATION, GOAWAY.
 * The header block uses only static-table indexes and literals without indexing (RFC 7541),
 * so every frame stands alone.
 */
import net from 'node:net';

export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4, ACK: 0x1 } as const;
export const CANCEL = 0x8;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** A literal field without indexing, new name (RFC 7541 §6.2.2), lengths under 127. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** GET `path` on `authority`, http: `:method GET` (2), `:scheme http` (6), `:path` literal, `:authority` literal. */
export function requestBlock(path: string, authority: string): Buffer {
  return Buffer.concat([Buffer.from([0x82, 0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, authority.length]), Buffer.from(authority)]);
}

/** A header block fragment of `n` copies of one small field, for CONTINUATION frames. */
export function filler(n: number): Buffer {
  return Buffer.concat(Array.from({ length: n }, () => literal('x-f', 'y')));
}

export function rstStream(streamId: number, code = CANCEL): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

export function goaway(lastStreamId: number, code = 0): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
  payload.writeUInt32BE(code, 4);
  return frame(FRAME.GOAWAY, 0, 0, payload);
}

/** A raw h2c connection: the preface and an empty SETTINGS sent; frames it receives, parsed. */
export interface RawH2 {
  readonly socket: net.Socket;
  /** Types of the frames received so far. */
  frames(): { type: number; flags: number; streamId: number; payload: Buffer }[];
  isClosed(): boolean;
}

export async function rawH2(port: number): Promise<RawH2> {
  const socket = net.connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  const frames: { type: number; flags: number; streamId: number; payload: Buffer }[] = [];
  let closed = false;
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const length = buf.readUIntBE(0, 3);
      if (buf.length < 9 + length) break;
      frames.push({ type: buf[3], flags: buf[4], streamId: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + length) });
      // SETTINGS must be acknowledged, or a server may give up on us.
      if (buf[3] === FRAME.SETTINGS && (buf[4] & FLAG.ACK) === 0) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      buf = buf.subarray(9 + length);
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  return { socket, frames: () => frames, isClosed: () => closed };
}
