/**
 * The request and response objects of the downstream codecs: node's HTTP/1.1 and HTTP/2
 * servers', and sinew's own HTTP/1.1 codec's (h1-server.ts). Types only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { H1Request, H1Response } from './h1-server.js';

/** node's HTTP/1.1 and HTTP/2 requests, or sinew's own HTTP/1.1 codec's (h1-server.ts: never with a body). */
export type DownstreamRequest = IncomingMessage | Http2ServerRequest | H1Request;
export type DownstreamResponseObject = ServerResponse | Http2ServerResponse | H1Response;
