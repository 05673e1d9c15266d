/**
 * Who may talk to the control plane, and how each one proves it. One module, so that every
 * port (the HTTP API, the push port, the trace collector) and the web console the control
 * plane serves check credentials the same way.
 *
 * - **The API token**: 32 random bytes, hex, written at start into the state directory
 *   (`<state dir>/api-token`, mode 0600, owner-only like an SSH key) and kept across restarts
 *   of the same state directory. Whoever can read that file is the mesh's operator: the CLI
 *   and the runner (`sinew up`) read it, and send it as `Authorization: Bearer <token>`
 *   (RFC 6750 §2.1). The console logs a browser in by exchanging it for a cookie
 *   (`checkApiToken`).
 * - **Proxy credentials**: minted by the control plane, on the runner's request, for one proxy
 *   node (`POST /api/v1/proxy-credentials`); the runner hands each to its proxy (a file of
 *   mode 0600). A proxy presents its credential in the push HELLO, and as a bearer token to
 *   the trace collector. It is bound to the node it was minted for (id, mode, workload,
 *   namespace, labels, service account), so it gets that node's config and no other. The
 *   mesh's certificate authority will replace it with the proxy's certificate.
 *
 * A proxy credential is `snwp1.<node id, base64url>.<node digest>.<MAC>`: the MAC is an HMAC
 * (RFC 2104, SHA-256) of the id and the digest under a key derived from the API token, so the
 * control plane checks one without keeping a list, restarts keep them valid, and a new API
 * token revokes them all. Every comparison of a secret is constant-time.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { ProxyNode } from '../api/proxy-config.js';
import { SinewError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';

/** The API token's file, in the control plane's state directory. */
export const API_TOKEN_FILE = 'api-token';

const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^[0-9a-f]{64}$/;
const PROXY_CREDENTIAL_PREFIX = 'snwp1';

/** Who sent a request or opened a stream. */
export type Principal = { kind: 'operator' } | { kind: 'proxy'; nodeId: string };

/** A random API token: 32 bytes from the system's CSPRNG, as 64 hex digits. */
export function newApiToken(): string {
  return randomBytes(TOKEN_BYTES).toString('hex');
}

/**
 * The API token of a state directory: read when `<dir>/api-token` exists, else created (mode
 * 0600, exclusively, so two control planes starting at once agree on one). A token file that
 * others could read is made owner-only again, with a warning; one that does not hold a token
 * is an error that says what to do.
 */
export async function loadOrCreateApiToken(dir: string, logger: Logger = silentLogger): Promise<{ token: string; file: string }> {
  const file = join(dir, API_TOKEN_FILE);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const token = newApiToken();
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(token + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { token, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const mode = (await stat(file)).mode & 0o777;
  if (mode & 0o077) {
    logger.warn('the API token file was readable by others; made it owner-only (mode 0600)', { file, mode: mode.toString(8) });
    await chmod(file, 0o600);
  }
  return { token: await readApiTokenFile(file), file };
}

/** Reads an API token file (the CLI and the runner do); throws a SinewError saying what to do. */
export async function readApiTokenFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SinewError(
      'SNW_ERR_NO_TOKEN',
      code === 'EACCES'
        ? `cannot read the control plane's API token ${file}: permission denied (it is readable by its owner only)`
        : `cannot read the control plane's API token ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  const token = text.trim();
  if (!TOKEN_PATTERN.test(token)) {
    throw new SinewError('SNW_ERR_BAD_TOKEN_FILE', `${file} does not hold an API token (64 hex digits); delete it and restart the control plane to make a new one`);
  }
  return token;
}

/** The bearer token of a request (RFC 6750 §2.1), if it has one. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return m?.[1];
}

/** Constant-time equality of two strings (different lengths are simply unequal). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The fields of a node that its credential binds, in a fixed order with sorted labels, so
 * the runner's node and the one the proxy sends in HELLO digest alike whatever their key order.
 */
export function nodeDigest(node: ProxyNode): string {
  const canonical = JSON.stringify([
    node.id,
    node.mode,
    node.workload,
    node.namespace,
    Object.entries(node.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    node.serviceAccount ?? null,
    node.canonicalService ?? null,
    node.canonicalRevision ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 22);
}

/** Checks and mints the control plane's credentials (see the file comment). */
export class ControlPlaneCredentials {
  readonly #apiToken: string;
  readonly #proxyKey: Buffer;

  constructor(apiToken: string) {
    if (!TOKEN_PATTERN.test(apiToken)) throw new SinewError('SNW_ERR_BAD_TOKEN', 'an API token is 64 hex digits');
    this.#apiToken = apiToken;
    // A key of its own for proxy credentials (RFC 5869's "extract" step in one HMAC), so no
    // MAC a proxy holds is ever computed under the API token itself.
    this.#proxyKey = createHmac('sha256', apiToken).update('sinew proxy credential key v1').digest();
  }

  /** The API token, for whoever must hand it on (the daemon's tests, a console login page's server side). */
  get apiToken(): string {
    return this.#apiToken;
  }

  /**
   * Whether `presented` is the API token, in constant time. The web console calls this when a
   * browser logs in with the token, before giving it a session cookie.
   */
  checkApiToken(presented: string | undefined): boolean {
    return presented !== undefined && sameSecret(presented, this.#apiToken);
  }

  /** A push credential for `node` (the runner asks for one per proxy it starts). */
  mintProxyCredential(node: ProxyNode): string {
    const digest = nodeDigest(node);
    return `${PROXY_CREDENTIAL_PREFIX}.${Buffer.from(node.id).toString('base64url')}.${digest}.${this.#mac(node.id, digest)}`;
  }

  /** The node id a proxy credential was minted for, when its MAC is right; else undefined. */
  proxyOf(presented: string): { nodeId: string; digest: string } | undefined {
    const parts = presented.split('.');
    if (parts.length !== 4 || parts[0] !== PROXY_CREDENTIAL_PREFIX) return undefined;
    const [, id64, digest, mac] = parts as [string, string, string, string];
    const nodeId = Buffer.from(id64, 'base64url').toString('utf8');
    if (!sameSecret(mac, this.#mac(nodeId, digest))) return undefined;
    return { nodeId, digest };
  }

  /**
   * Checks a HELLO: undefined when `presented` is a credential minted for exactly this node,
   * else why not (the push server sends the reason as it closes the stream).
   */
  checkProxyCredential(node: ProxyNode, presented: string | undefined): string | undefined {
    if (presented === undefined || presented === '') return 'no credential: a proxy presents the push credential its runner got for it from the control plane';
    const owner = this.proxyOf(presented);
    if (!owner) return 'the credential is not one this control plane issued (or its API token has changed since)';
    if (owner.nodeId !== node.id) return `the credential was issued for ${owner.nodeId}, not ${node.id}`;
    if (owner.digest !== nodeDigest(node)) return `the credential was issued for ${node.id} with other labels, mode, namespace or service account than this HELLO names`;
    return undefined;
  }

  /** Who sent `req`, by its bearer token; undefined when it has none or an invalid one. */
  authenticate(req: IncomingMessage): Principal | undefined {
    const token = bearerToken(req);
    if (token === undefined) return undefined;
    if (this.checkApiToken(token)) return { kind: 'operator' };
    const proxy = this.proxyOf(token);
    return proxy ? { kind: 'proxy', nodeId: proxy.nodeId } : undefined;
  }

  #mac(nodeId: string, digest: string): string {
    return createHmac('sha256', this.#proxyKey).update(`${nodeId}\n${digest}`).digest('base64url');
  }
}
