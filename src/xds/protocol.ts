/**
 * The push protocol between the control plane and its proxies (DESIGN.md "Push").
 *
 * A proxy opens a plaintext TCP connection (port 15010, like istiod's plaintext xDS port)
 * and the two sides exchange frames; each frame is one JSON object on one line:
 *
 *   proxy  -> server   hello  {protocol, node, version?, credential?}
 *                                                          who I am, what I already hold, and the
 *                                                          credential that proves it
 *   server -> proxy    push   {version, nonce, config}     a whole ProxyConfig (state of the world)
 *   server -> proxy    delta  {version, nonce, base, changes}
 *                                                          what changed since version `base`
 *   proxy  -> server   ack    {version, nonce}             applied; now serving `version`
 *   proxy  -> server   nack   {version, nonce, reason}     rejected; `version` is what I still serve
 *   proxy  -> server   resync {nonce, reason}              cannot use that delta; send the whole config
 *   proxy  -> server   csr    {id, csr}                    sign a workload certificate on this PKCS#10
 *                                                          request (the key stays with the proxy)
 *   server -> proxy    certificate {id, certificateChainPem} | {id, error: {code, message}}
 *                                                          the answer to csr `id`
 *   either -> other    ping   {id} / pong {id}             keepalive (the proxy pings)
 *   either -> other    close  {code, reason}               the sender is about to close, and why
 *
 * The ACK/NACK shape follows Envoy's xDS DiscoveryRequest: a response echoes the nonce of the
 * push it answers, `version` is the version the proxy now serves (on a NACK, its last good
 * one, as Envoy puts the previous `version_info` in a NACK) and a NACK carries the reason as
 * Envoy's `error_detail` does. A server ignores answers whose nonce is not its latest push
 * to that proxy, as Istio's pilot does for stale nonces. A delta is answered like a push.
 *
 * Deltas (protocol 2; Envoy's delta xDS, and VHDS for virtual hosts). A whole config for a
 * large mesh is megabytes, and one VirtualService change alters one virtual host of it, so
 * after the first push the server sends only what changed, keyed by resource name:
 *
 *   changes: {
 *     set?:   {node?, secrets?, telemetry?, ...}   top-level fields other than the lists, whole
 *     unset?: [field]                              top-level fields now absent
 *     listeners? | clusters? | endpoints?: ListDelta   (endpoints are keyed by clusterName)
 *     routeConfigs?: ListDelta & {virtualHosts?: [{routeConfig, updated?, removed?, order?}]}
 *   }
 *   ListDelta: {updated?: [item], removed?: [name], order?: [name]}
 *
 * To rebuild a list the proxy drops the `removed` names, replaces or adds each `updated` item
 * by name, and then orders the result by `order` when it is given; otherwise surviving items
 * keep their places and new ones follow in the order sent. A virtual-host patch applies the
 * same rules to the `virtualHosts` of the route table it names, after the route tables.
 *
 * Versioning. `base` is the version the server last sent that proxy (push or delta); the
 * proxy applies pushes in the order they arrive, so it holds `base` whether or not it has
 * answered it yet (a NACKed config is still held as a base, though not served). The
 * `<hash>` of a delta's version is the content hash of the config it makes (content.ts), and
 * the proxy checks it. A proxy whose held version is not `base`, or whose result does not
 * hash to the version, does not guess: it sends `resync` and ignores further deltas until
 * the whole config arrives. The server pushes the whole config on a new connection (so on
 * every reconnect), on `resync`, after a NACK, and to a proxy that spoke protocol 1; and
 * whenever a change cannot be said by name (a name used twice in a list).
 *
 * Framing: newline-delimited JSON rather than length prefixes. `JSON.stringify` never emits
 * a raw newline (newlines inside strings are escaped as `\n`), so a 0x0a byte always ends a
 * frame and nothing needs escaping; a frame can be read with `nc` and a person; and the
 * reader only has to scan each new chunk once for 0x0a. What a length prefix would buy
 * (binary payloads, knowing the size up front) we do not need: every payload is JSON anyway,
 * and the size limit is enforced while bytes arrive, before any frame is parsed.
 */
import type { Cluster, ClusterLoadAssignment, Listener, ProxyMode, ProxyNode, ProxyConfig, RouteConfiguration, VirtualHost } from '../api/proxy-config.js';
import { SinewError } from '../core/errors.js';

/**
 * Bumped on an incompatible change. 2 added deltas; a server still serves protocol 1
 * proxies (whole pushes only) and closes a connection that speaks anything else.
 */
export const PROTOCOL_VERSION = 2;

/** The protocol versions a server accepts. */
export const SUPPORTED_PROTOCOLS: readonly number[] = [1, 2];

/**
 * Largest frame either side accepts. A whole ProxyConfig for a large mesh (thousands of
 * endpoints) is a few MiB; 64 MiB leaves room without letting a peer exhaust memory.
 */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/**
 * Largest frame a server reads from a connection that has not said HELLO. A HELLO is a node
 * (a few labels) and a credential, well under a KiB; anything bigger before the proxy is known
 * is a peer trying to make the server buffer for it.
 */
export const MAX_HELLO_FRAME_BYTES = 64 * 1024;

/**
 * Largest frame a server reads from a proxy past HELLO: ACKs, pings and NACKs, whose reason the
 * client cuts to 4096 characters (at most six bytes each once JSON-escaped).
 */
export const MAX_PROXY_FRAME_BYTES = 256 * 1024;

/**
 * Largest CSR a proxy may send: a PKCS#10 request for an RSA 4096 key with one URI SAN is
 * under 2 KiB of PEM; 16 KiB leaves room and bounds what the CA parses.
 */
export const MAX_CSR_CHARS = 16 * 1024;

/** The control plane's plaintext push port (istiod's 15010). */
export const DEFAULT_PUSH_PORT = 15010;

// === errors ===

/** Stable codes for push-protocol failures (STYLE.md 6). */
export const XdsErrorCode = {
  /** A frame is not JSON, not an object, or not a known message with the right fields. */
  MalformedFrame: 'SNW_ERR_XDS_MALFORMED_FRAME',
  /** A frame grew past the size limit before its newline arrived. */
  FrameTooLarge: 'SNW_ERR_XDS_FRAME_TOO_LARGE',
  /** A well-formed message that is not allowed now (e.g. an ACK before HELLO, a second HELLO). */
  UnexpectedMessage: 'SNW_ERR_XDS_UNEXPECTED_MESSAGE',
  /** The peer speaks another protocol version. */
  ProtocolVersion: 'SNW_ERR_XDS_PROTOCOL_VERSION',
  /** A HELLO without a valid credential for the node it names: the server closes the connection. */
  Unauthenticated: 'SNW_ERR_XDS_UNAUTHENTICATED',
  /** A connection did not send HELLO in time. */
  HelloTimeout: 'SNW_ERR_XDS_HELLO_TIMEOUT',
  /** Nothing was heard from the peer for too long (keepalive failed). */
  PeerTimeout: 'SNW_ERR_XDS_PEER_TIMEOUT',
  /** The config source threw while building a proxy's config. */
  ConfigSource: 'SNW_ERR_XDS_CONFIG_SOURCE',
  /** A proxy's apply() rejected a pushed config. */
  ConfigRejected: 'SNW_ERR_XDS_CONFIG_REJECTED',
  /** The server is shutting down. */
  ServerShutdown: 'SNW_ERR_XDS_SERVER_SHUTDOWN',
  /** The proxy is shutting down (sent by `PushClient.close()`). */
  ProxyShutdown: 'SNW_ERR_XDS_PROXY_SHUTDOWN',
  /** A delta does not fit the config the proxy holds (another base, unknown names, a result whose hash is not the version). */
  DeltaMismatch: 'SNW_ERR_XDS_DELTA_MISMATCH',
  /** The control plane would not sign a proxy's CSR (no CA, a revoked identity, a bad CSR); the proxy keeps its certificate and retries. */
  CertificateRefused: 'SNW_ERR_XDS_CERTIFICATE_REFUSED',
  /** A certificate request got no answer in time (or its connection was lost first). */
  CertificateUnanswered: 'SNW_ERR_XDS_CERTIFICATE_UNANSWERED',
  /** A bug while handling a message; only that connection is closed. */
  Internal: 'SNW_ERR_XDS_INTERNAL',
  /** The connection is closed or was never open. */
  NotConnected: 'SNW_ERR_XDS_NOT_CONNECTED',
} as const;
export type XdsErrorCode = (typeof XdsErrorCode)[keyof typeof XdsErrorCode];

/** A push-protocol failure with one of the `XdsErrorCode` codes. */
export class XdsError extends SinewError {
  constructor(code: XdsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'XdsError';
  }
}

// === messages ===

export interface HelloMessage {
  type: 'hello';
  protocol: number;
  node: ProxyNode;
  /** The version the proxy already serves, if any, so the server can skip an identical push. */
  version?: string;
  /**
   * What proves the proxy is `node`: the push credential its runner got from the control plane
   * for it (controlplane/credentials.ts). A server that checks credentials closes the connection
   * of a HELLO without a valid one (Unauthenticated).
   */
  credential?: string;
}

export interface PushMessage {
  type: 'push';
  version: string;
  nonce: string;
  config: ProxyConfig;
}

/** One list's changes (see the file comment for how a proxy applies them). */
export interface ListDelta<T> {
  /** Items added or replaced, whole. */
  updated?: T[];
  /** Names no longer in the list. */
  removed?: string[];
  /** Every name of the resulting list in order; absent when the default order is right. */
  order?: string[];
}

/** The changes to the virtual hosts of one route table (Envoy's VHDS), as a ListDelta keyed by virtual host name. */
export interface VirtualHostPatch extends ListDelta<VirtualHost> {
  routeConfig: string;
}

/** What a delta changes, relative to its base version. */
export interface ConfigChanges {
  set?: Partial<Pick<ProxyConfig, 'node' | 'secrets' | 'telemetry'>> & Record<string, unknown>;
  unset?: string[];
  listeners?: ListDelta<Listener>;
  routeConfigs?: ListDelta<RouteConfiguration> & { virtualHosts?: VirtualHostPatch[] };
  clusters?: ListDelta<Cluster>;
  endpoints?: ListDelta<ClusterLoadAssignment>;
}

export interface DeltaMessage {
  type: 'delta';
  version: string;
  nonce: string;
  /** The version these changes apply to: the one last sent to this proxy. */
  base: string;
  changes: ConfigChanges;
}

export interface AckMessage {
  type: 'ack';
  version: string;
  nonce: string;
}

export interface NackMessage {
  type: 'nack';
  /** The version the proxy still serves (its last good one; empty when it has none). */
  version: string;
  nonce: string;
  reason: string;
}

/** The proxy cannot use the delta `nonce` (see DeltaMismatch) and asks for the whole config. */
export interface ResyncMessage {
  type: 'resync';
  nonce: string;
  reason: string;
}

/**
 * A certificate signing request (Istio's CreateCertificate, istio.v1.auth.IstioCertificateService,
 * which istiod serves beside xDS). Only a proxy past HELLO may send one: the identity of the
 * certificate comes from the node its credential proved, never from the CSR.
 */
export interface CsrMessage {
  type: 'csr';
  /** Chosen by the proxy; the answer carries it back. */
  id: number;
  /** PEM PKCS#10 request, signed by the key the certificate is for. */
  csr: string;
}

/** The answer to a `csr`: the signed chain (leaf first), or why not. */
export interface CertificateMessage {
  type: 'certificate';
  id: number;
  certificateChainPem?: string;
  error?: { code: string; message: string };
}

export interface PingMessage {
  type: 'ping';
  id: number;
}

export interface PongMessage {
  type: 'pong';
  id: number;
}

export interface CloseMessage {
  type: 'close';
  code: string;
  reason: string;
}

export type ClientMessage = HelloMessage | AckMessage | NackMessage | ResyncMessage | CsrMessage | PingMessage | PongMessage | CloseMessage;
export type ServerMessage = PushMessage | DeltaMessage | CertificateMessage | PingMessage | PongMessage | CloseMessage;
export type Message = ClientMessage | ServerMessage;

/** Serialises one message as a frame (JSON plus the terminating newline). */
export function encodeFrame(message: Message): string {
  return JSON.stringify(message) + '\n';
}

// === decoding ===

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into frames. Bytes are kept as Buffers until a newline arrives, so a
 * multi-byte UTF-8 character split across TCP chunks decodes correctly, and each byte is
 * scanned for the newline only once. Throws an `XdsError` (FrameTooLarge) as soon as the
 * bytes of an unfinished frame pass the limit, without waiting for the rest.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** `maxFrameBytes` may change between chunks (a server reads more once a proxy is known). */
  constructor(public maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /** Feeds a chunk; returns the complete frames it finished, as strings without the newline. */
  push(chunk: Buffer): string[] {
    const frames: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl === -1) break;
      const size = this.pendingBytes + (nl - start);
      if (size > this.maxFrameBytes) throw tooLarge(size, this.maxFrameBytes);
      const tail = chunk.subarray(start, nl);
      const bytes = this.pending.length ? Buffer.concat([...this.pending, tail], size) : tail;
      this.pending = [];
      this.pendingBytes = 0;
      frames.push(bytes.toString('utf8'));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxFrameBytes) throw tooLarge(this.pendingBytes, this.maxFrameBytes);
      this.pending.push(rest);
    }
    return frames;
  }

  /** Bytes held for an unfinished frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }
}

function tooLarge(size: number, limit: number): XdsError {
  return new XdsError(XdsErrorCode.FrameTooLarge, `frame of at least ${size} bytes exceeds the ${limit}-byte limit`);
}

function malformed(detail: string): XdsError {
  return new XdsError(XdsErrorCode.MalformedFrame, `malformed frame: ${detail}`);
}

/** Parses one frame sent by a proxy; throws an `XdsError` (MalformedFrame) naming what is wrong. */
export function parseClientMessage(frame: string): ClientMessage {
  const obj = parseObject(frame);
  switch (obj.type) {
    case 'hello': {
      const protocol = obj.protocol;
      if (typeof protocol !== 'number' || !Number.isInteger(protocol)) throw malformed('hello.protocol must be an integer');
      const node = parseNode(obj.node);
      const hello: HelloMessage = { type: 'hello', protocol, node };
      const version = optionalString(obj, 'version', 'hello');
      const credential = optionalString(obj, 'credential', 'hello');
      if (version !== undefined) hello.version = version;
      if (credential !== undefined) hello.credential = credential;
      return hello;
    }
    case 'ack':
      return { type: 'ack', version: requiredString(obj, 'version', 'ack'), nonce: requiredString(obj, 'nonce', 'ack') };
    case 'nack':
      return {
        type: 'nack',
        version: requiredString(obj, 'version', 'nack'),
        nonce: requiredString(obj, 'nonce', 'nack'),
        reason: requiredString(obj, 'reason', 'nack'),
      };
    case 'resync':
      return { type: 'resync', nonce: requiredString(obj, 'nonce', 'resync'), reason: requiredString(obj, 'reason', 'resync') };
    case 'csr': {
      const csr = requiredString(obj, 'csr', 'csr');
      if (csr.length > MAX_CSR_CHARS) throw malformed(`csr.csr is longer than ${MAX_CSR_CHARS} characters`);
      return { type: 'csr', id: requiredId(obj, 'csr'), csr };
    }
    case 'ping':
    case 'pong':
    case 'close':
      return parseCommon(obj);
    default:
      throw malformed(`unknown message type ${JSON.stringify(obj.type)} from a proxy`);
  }
}

/** Parses one frame sent by the server; throws an `XdsError` (MalformedFrame) naming what is wrong. */
export function parseServerMessage(frame: string): ServerMessage {
  const obj = parseObject(frame);
  switch (obj.type) {
    case 'push': {
      const config = obj.config;
      if (!config || typeof config !== 'object' || Array.isArray(config)) throw malformed('push.config must be an object');
      return {
        type: 'push',
        version: requiredString(obj, 'version', 'push'),
        nonce: requiredString(obj, 'nonce', 'push'),
        config: config as ProxyConfig,
      };
    }
    case 'delta': {
      // Only the envelope is checked here; the changes are checked against the held config
      // as they are applied (delta.ts), where a bad one costs a resync, not the connection.
      const changes = obj.changes;
      if (!changes || typeof changes !== 'object' || Array.isArray(changes)) throw malformed('delta.changes must be an object');
      return {
        type: 'delta',
        version: requiredString(obj, 'version', 'delta'),
        nonce: requiredString(obj, 'nonce', 'delta'),
        base: requiredString(obj, 'base', 'delta'),
        changes: changes as ConfigChanges,
      };
    }
    case 'certificate': {
      const message: CertificateMessage = { type: 'certificate', id: requiredId(obj, 'certificate') };
      const chain = optionalString(obj, 'certificateChainPem', 'certificate');
      if (chain !== undefined) message.certificateChainPem = chain;
      const error = obj.error;
      if (error !== undefined && error !== null) {
        if (typeof error !== 'object' || Array.isArray(error)) throw malformed('certificate.error must be an object');
        const e = error as Record<string, unknown>;
        message.error = { code: requiredString(e, 'code', 'certificate.error'), message: requiredString(e, 'message', 'certificate.error') };
      }
      if ((chain === undefined) === (message.error === undefined)) throw malformed('certificate needs either certificateChainPem or error');
      return message;
    }
    case 'ping':
    case 'pong':
    case 'close':
      return parseCommon(obj);
    default:
      throw malformed(`unknown message type ${JSON.stringify(obj.type)} from the server`);
  }
}

function parseCommon(obj: Record<string, unknown>): PingMessage | PongMessage | CloseMessage {
  if (obj.type === 'close') {
    return { type: 'close', code: requiredString(obj, 'code', 'close'), reason: requiredString(obj, 'reason', 'close') };
  }
  const id = obj.id;
  if (typeof id !== 'number' || !Number.isFinite(id)) throw malformed(`${String(obj.type)}.id must be a number`);
  return { type: obj.type as 'ping' | 'pong', id };
}

function requiredId(obj: Record<string, unknown>, where: string): number {
  const id = obj.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw malformed(`${where}.id must be a non-negative integer`);
  return id;
}

function parseObject(frame: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch (err) {
    throw malformed(`not JSON (${(err as Error).message})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw malformed('a frame must be a JSON object');
  const obj = value as Record<string, unknown>;
  if (typeof obj.type !== 'string') throw malformed('missing string field "type"');
  return obj;
}

function requiredString(obj: Record<string, unknown>, field: string, where: string): string {
  const value = obj[field];
  if (typeof value !== 'string') throw malformed(`${where}.${field} must be a string`);
  return value;
}

function optionalString(obj: Record<string, unknown>, field: string, where: string): string | undefined {
  const value = obj[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw malformed(`${where}.${field} must be a string`);
  return value;
}

const MODES: readonly ProxyMode[] = ['sidecar', 'router'];

/** Checks a node named in HELLO: the server keys status and config on it, so it must be whole. */
function parseNode(value: unknown): ProxyNode {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw malformed('hello.node must be an object');
  const obj = value as Record<string, unknown>;
  const id = requiredString(obj, 'id', 'hello.node');
  if (id === '') throw malformed('hello.node.id must not be empty');
  const mode = obj.mode;
  if (typeof mode !== 'string' || !MODES.includes(mode as ProxyMode)) {
    throw malformed(`hello.node.mode must be one of ${MODES.join(', ')}`);
  }
  const labelsValue = obj.labels ?? {};
  if (typeof labelsValue !== 'object' || Array.isArray(labelsValue)) throw malformed('hello.node.labels must be an object');
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(labelsValue as Record<string, unknown>)) {
    if (typeof v !== 'string') throw malformed(`hello.node.labels.${k} must be a string`);
    labels[k] = v;
  }
  const node: ProxyNode = {
    id,
    mode: mode as ProxyMode,
    workload: requiredString(obj, 'workload', 'hello.node'),
    namespace: requiredString(obj, 'namespace', 'hello.node'),
    labels,
  };
  const serviceAccount = optionalString(obj, 'serviceAccount', 'hello.node');
  const canonicalService = optionalString(obj, 'canonicalService', 'hello.node');
  const canonicalRevision = optionalString(obj, 'canonicalRevision', 'hello.node');
  if (serviceAccount !== undefined) node.serviceAccount = serviceAccount;
  if (canonicalService !== undefined) node.canonicalService = canonicalService;
  if (canonicalRevision !== undefined) node.canonicalRevision = canonicalRevision;
  return node;
}

// === versions ===

/**
 * A version is `<counter>-<hash>`: the counter orders pushes (monotonic per server, and a
 * server raises its own past any counter a reconnecting proxy reports), the hash names the
 * content, so a server that restarted can still tell that a proxy already holds what it
 * would send.
 */
export function formatVersion(counter: number, hash: string): string {
  return `${counter}-${hash}`;
}

/** Splits a version made by `formatVersion`; undefined for anything else. */
export function parseVersion(version: string): { counter: number; hash: string } | undefined {
  const dash = version.indexOf('-');
  if (dash <= 0) return undefined;
  const counter = Number(version.slice(0, dash));
  const hash = version.slice(dash + 1);
  if (!Number.isSafeInteger(counter) || counter < 0 || hash === '') return undefined;
  return { counter, hash };
}
