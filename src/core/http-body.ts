/**
 * Reading a request body on a node:http server without trusting the client: a size limit
 * checked before any byte is read and again as bytes arrive, `Expect: 100-continue` answered
 * only once the body is wanted, strict UTF-8, and a refusal the client can actually read.
 *
 * The last point needs care. A server that answers 413 and closes while the client is still
 * sending makes its kernel reset the connection, and the reset can destroy the answer before
 * the client reads it (RFC 9112 §9.6 on tearing down a connection; Apache and nginx "linger"
 * for this reason). So a refused body is read on and dropped for at most `lingerMs`, and only
 * then is the connection cut.
 *
 * Mount the same handler for the server's `checkContinue` event as for `request`: node then
 * leaves the interim 100 to `readBody`, which sends it only when the declared size fits (a
 * client announcing 100 MB gets its 413 before sending a byte), and the caller's own checks
 * (credentials, content type) run before the client is invited to send anything.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SinewError } from './errors.js';
import { StrictUtf8Stream, Utf8Error } from './utf8.js';

/** A body the server will not take, with the status to answer. */
export class HttpBodyError extends SinewError {
  constructor(
    code: string,
    readonly status: 400 | 413,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(code, message);
    this.name = 'HttpBodyError';
  }
}

/** The client went away before its body was read; there is nobody to answer. */
export class ClientGoneError extends SinewError {
  constructor() {
    super('SNW_ERR_CLIENT_GONE', 'the client closed the connection before sending the whole body');
    this.name = 'ClientGoneError';
  }
}

export interface BodyLimits {
  /** Largest body accepted, in bytes; larger gets 413. */
  maxBytes: number;
}

/** How long a refused body is read and dropped before the connection is cut. */
export const LINGER_MS = 2000;

const tooLarge = (max: number) =>
  new HttpBodyError('SNW_ERR_BODY_TOO_LARGE', 413, `request body over ${max} bytes; split the input`, { limit: max });

/**
 * Reads the whole body, up to `maxBytes`. Rejects with `HttpBodyError` (413) when the body is
 * larger, as soon as that is known, and with `ClientGoneError` when the client leaves. Sends
 * the interim `100 Continue` the client asked for once the declared size fits.
 */
export async function readBody(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const total = await readChunks(req, res, limits, (chunk) => chunks.push(chunk));
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/**
 * Reads the body a chunk at a time, handing each to `onChunk` as it arrives, and resolves
 * with the number of bytes read; limits, 100-continue and refusals as readBody. A chunk that
 * `onChunk` does not keep is garbage at once.
 */
function readChunks(req: IncomingMessage, res: ServerResponse, limits: BodyLimits, onChunk: (chunk: Buffer) => void): Promise<number> {
  const max = limits.maxBytes;
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && declared > max) return Promise.reject(tooLarge(max));
  if (/^100-continue$/i.test(String(req.headers.expect ?? '')) && !res.headersSent) res.writeContinue();
  return new Promise((resolve, reject) => {
    let total = 0;
    let over = false;
    const onData = (chunk: Buffer) => {
      if (over) return; // dropped: see drainAfterRefusal
      total += chunk.length;
      if (total > max) {
        over = true;
        reject(tooLarge(max));
        return;
      }
      try {
        onChunk(chunk);
      } catch (err) {
        over = true;
        reject(err);
      }
    };
    const onEnd = () => {
      cleanup();
      if (!over) resolve(total);
    };
    const onGone = () => {
      cleanup();
      if (!over) reject(new ClientGoneError());
    };
    const cleanup = () => {
      req.off('end', onEnd);
      req.off('aborted', onGone);
      req.off('error', onGone);
      req.off('close', onClose);
    };
    const onClose = () => {
      if (!req.complete) onGone();
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('aborted', onGone);
    req.once('error', onGone);
    req.once('close', onClose);
  });
}

/**
 * Reads the body as strict UTF-8 text: 400 with the byte offset of the first invalid sequence.
 * Each chunk is decoded as it arrives and let go: holding the bytes until the end, then the
 * bytes joined, held a large body twice over besides its text, and long enough for V8 to move
 * the buffers to its old generation, where they stayed until a full collection (30 MB of a
 * 15 MB config's apply, bench/controlplane-memory.ts).
 */
export async function readText(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<string> {
  const decoder = new StrictUtf8Stream();
  try {
    await readChunks(req, res, limits, (chunk) => decoder.write(chunk));
    return decoder.end();
  } catch (err) {
    if (err instanceof Utf8Error) throw invalidUtf8(err);
    throw err;
  }
}

/**
 * Reads the whole body as strict UTF-8, then gives its text a piece at a time (a character
 * split between chunks comes whole with the later piece), letting go of each piece once it
 * has been taken: for a reader that parses as it goes (the control plane's apply), which then
 * never holds the text joined, and holds less and less of it as it reads. Each chunk is
 * decoded as it arrives, so its bytes are garbage at once (young garbage, which V8 frees at
 * its next scavenge; bytes kept until the end went to the old generation, and malloc kept
 * their pages). The body is received in full before any of it is handed on, so the time spent
 * parsing does not count against the server's request timeout. Limits and refusals as readText.
 */
export async function readTextPieces(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<Iterable<string>> {
  const decoder = new StrictUtf8Stream();
  const pieces: (string | undefined)[] = [];
  try {
    await readChunks(req, res, limits, (chunk) => pieces.push(decoder.decode(chunk)));
    pieces.push(decoder.finish());
  } catch (err) {
    if (err instanceof Utf8Error) throw invalidUtf8(err);
    throw err;
  }
  return (function* () {
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      pieces[i] = undefined;
      yield piece;
    }
  })();
}

function invalidUtf8(err: Utf8Error): HttpBodyError {
  return new HttpBodyError('SNW_ERR_INVALID_UTF8', 400, `request body is not valid UTF-8: the bytes at offset ${err.offset} are not a UTF-8 character`, { offset: err.offset });
}

/** Reads the body as JSON (strict UTF-8 first): 400 naming what is wrong. */
export async function readJson(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<unknown> {
  const text = await readText(req, res, limits);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpBodyError('SNW_ERR_INVALID_JSON', 400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Once a reply has been sent for a request whose body was not read to its end (a refusal),
 * reads the rest and drops it, for at most `lingerMs`, then cuts the connection if the body
 * is still coming. See the file comment for why the connection is not cut at once.
 */
export function drainAfterRefusal(req: IncomingMessage, lingerMs = LINGER_MS): void {
  if (req.complete) return;
  req.on('data', () => {});
  req.resume();
  const timer = setTimeout(() => req.socket.destroy(), lingerMs);
  timer.unref();
  req.once('end', () => clearTimeout(timer));
  req.socket.once('close', () => clearTimeout(timer));
}
