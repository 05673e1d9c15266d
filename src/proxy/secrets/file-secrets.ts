/**
 * Certificates the proxy reads from its own file system (Istio's certificates named by path:
 * a Gateway server's `serverCertificate` / `privateKey` / `caCertificates`, a DestinationRule's
 * `clientCertificate` / `privateKey` / `caCertificates`). Istio's agent serves such files over
 * SDS as `file-cert:<chain>~<key>` and `file-root:<ca>` and watches them, so that Envoy takes a
 * rewritten certificate for new connections; this module is that agent part in the proxy.
 *
 * - A pushed secret with `files` carries paths only; `resolve` fills in what they hold, so a key
 *   never travels in a push and a proxy that does not use a file never reads it.
 * - The material is checked as it is read (a chain and a key that belong together, roots that
 *   hold a CA). What cannot be read or used is reported (`unavailable`, with the path and the
 *   reason), and what names it is not served: never TLS with no certificate or a wrong one.
 * - A file that changes is read again and the proxy told (`onChange`), as the SecretProvider
 *   tells it of a renewed workload certificate: listeners keep their sockets and give new
 *   connections the new certificate; open connections keep theirs. A rewrite that leaves the
 *   files unusable for a moment (the chain written before its key) keeps the last good
 *   material serving, as Envoy keeps a secret whose update it rejected.
 *
 * Changes are found by polling the files' status (fs.watchFile): it follows symlinks (the
 * `..data` swap of a Kubernetes secret volume) and works for a file or directory that does not
 * exist yet, which inotify on the file does not.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import type tls from 'node:tls';
import type { ProxyConfig, Secret } from '../../api/proxy-config.js';
import { TrustBundle } from '../../core/pki/trust-bundle.js';
import type { Logger } from '../../core/logger.js';

/** How often the watched files' status is checked. */
export const FILE_SECRET_POLL_MS = 500;

export interface ResolvedFileSecrets {
  /** The config with every readable file secret's material filled in. */
  config: ProxyConfig;
  /** Secrets whose files could not be read or used, with why (the path included). */
  unavailable: ReadonlyMap<string, string>;
}

export interface FileSecretState {
  name: string;
  files: NonNullable<Secret['files']>;
  /** Whether the proxy holds usable material for it. */
  loaded: boolean;
  /** Why the files cannot be used now (the last good material may still serve). */
  error?: string;
}

type Material = Pick<Secret, 'certificateChainPem' | 'privateKeyPem' | 'trustedCaPem'>;

export class FileSecrets {
  readonly #logger: Logger;
  readonly #pollMs: number;
  /** Last good material per secret name. */
  readonly #good = new Map<string, Material>();
  /** The last problem per secret name, so that a problem is logged once, not at every apply. */
  readonly #problems = new Map<string, string>();
  readonly #watched = new Map<string, (curr: Stats, prev: Stats) => void>();
  readonly #listeners = new Set<() => void>();
  #states: FileSecretState[] = [];
  #closed = false;

  constructor(options: { logger: Logger; pollMs?: number }) {
    this.#logger = options.logger;
    this.#pollMs = options.pollMs ?? FILE_SECRET_POLL_MS;
  }

  /** Reads the files the config's secrets name, and watches them (and only them) from now on. */
  resolve(config: ProxyConfig): ResolvedFileSecrets {
    const unavailable = new Map<string, string>();
    if (!Array.isArray(config?.secrets) || !config.secrets.some((s) => s.files)) {
      this.#watch(new Set());
      this.#states = [];
      return { config, unavailable };
    }
    const paths = new Set<string>();
    const states: FileSecretState[] = [];
    const secrets = config.secrets.map((s): Secret => {
      if (!s.files) return s;
      for (const p of [s.files.certificateChain, s.files.privateKey, s.files.trustedCa]) if (p) paths.add(p);
      const read = readMaterial(s.files);
      const last = this.#good.get(s.name);
      if ('material' in read) {
        if (this.#problems.delete(s.name)) this.#logger.info('TLS files readable again', { secret: s.name });
        this.#good.set(s.name, read.material);
        states.push({ name: s.name, files: s.files, loaded: true });
        return { ...s, ...read.material };
      }
      if (this.#problems.get(s.name) !== read.problem) {
        this.#problems.set(s.name, read.problem);
        this.#logger.warn(last ? 'TLS files cannot be used; the last good ones keep serving' : 'TLS files cannot be used; what names them is not served', { secret: s.name, error: read.problem });
      }
      states.push({ name: s.name, files: s.files, loaded: last !== undefined, error: read.problem });
      if (last) return { ...s, ...last };
      unavailable.set(s.name, read.problem);
      return s;
    });
    for (const name of [...this.#good.keys()]) if (!secrets.some((s) => s.name === name && s.files)) this.#good.delete(name);
    this.#watch(paths);
    this.#states = states;
    return { config: { ...config, secrets }, unavailable };
  }

  /** Calls `listener` after a watched file changed. Returns a function that unsubscribes. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The file secrets of the config in force, for the admin's /certs (paths and state, never material). */
  describe(): FileSecretState[] {
    return this.#states.map((s) => ({ ...s, files: { ...s.files } }));
  }

  close(): void {
    this.#closed = true;
    this.#watch(new Set());
    this.#listeners.clear();
  }

  #watch(paths: ReadonlySet<string>): void {
    for (const [path, listener] of this.#watched) {
      if (paths.has(path) && !this.#closed) continue;
      unwatchFile(path, listener);
      this.#watched.delete(path);
    }
    if (this.#closed) return;
    for (const path of paths) {
      if (this.#watched.has(path)) continue;
      const listener = (curr: Stats, prev: Stats) => {
        if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size && curr.ctimeMs === prev.ctimeMs) return;
        for (const l of this.#listeners) l();
      };
      // Not persistent: watching a certificate never keeps the process alive.
      watchFile(path, { interval: this.#pollMs, persistent: false }, listener);
      this.#watched.set(path, listener);
    }
  }
}

let tlsModule: typeof tls | undefined;
/** node:tls only once a file secret is read (as transport-socket.ts: plaintext proxies do not pay for it). */
function loadTls(): typeof tls {
  return (tlsModule ??= createRequire(import.meta.url)('node:tls') as typeof tls);
}

/** What the files hold, checked; or why they cannot be used. */
function readMaterial(files: NonNullable<Secret['files']>): { material: Material } | { problem: string } {
  const read = (path: string): string | { problem: string } => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { problem: `cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message}` };
    }
  };
  const material: Material = {};
  if (files.certificateChain !== undefined || files.privateKey !== undefined) {
    if (!files.certificateChain || !files.privateKey) return { problem: 'a certificate file needs its private key file, and the other way round' };
    const chain = read(files.certificateChain);
    if (typeof chain !== 'string') return chain;
    const key = read(files.privateKey);
    if (typeof key !== 'string') return key;
    try {
      // A chain that is not PEM, or a key that does not belong to it, fails here, not at a handshake.
      loadTls().createSecureContext({ cert: chain, key });
    } catch (err) {
      return { problem: `${files.certificateChain} and ${files.privateKey} cannot be used together: ${(err as Error).message}` };
    }
    material.certificateChainPem = chain;
    material.privateKeyPem = key;
  }
  if (files.trustedCa !== undefined) {
    const ca = read(files.trustedCa);
    if (typeof ca !== 'string') return ca;
    try {
      TrustBundle.fromPem(ca);
    } catch (err) {
      return { problem: `${files.trustedCa} holds no usable CA certificate: ${(err as Error).message}` };
    }
    material.trustedCaPem = ca;
  }
  return { material };
}

/**
 * The config without what names a secret that is unavailable: a listener's filter chain
 * whose certificate or client CA could not be read is left out (the server is not served, as
 * Envoy keeps such a chain warming), and a listener left with no chain is left out. Clusters
 * keep naming it: a cluster without its material warms (503 UH) until the files can be read.
 */
export function withoutUnservableChains(config: ProxyConfig, unavailable: ReadonlyMap<string, string>, logger: Logger, reported: Set<string> = new Set()): ProxyConfig {
  const left = new Set<string>();
  // Each chain left out is logged once, when it is first left out, not at every config push.
  const report = (what: Record<string, string | undefined>) => {
    const key = JSON.stringify(what);
    left.add(key);
    if (!reported.has(key)) logger.warn('a TLS server is not served: its files cannot be used', what);
  };
  const done = (out: ProxyConfig) => {
    reported.clear();
    for (const key of left) reported.add(key);
    return out;
  };
  if (unavailable.size === 0 || !Array.isArray(config.listeners)) return done(config);
  const names = (t: { certificate?: string; validationContext?: string } | undefined) => [t?.certificate, t?.validationContext].filter((n): n is string => n !== undefined);
  const blocked = (t: { certificate?: string; validationContext?: string } | undefined) => names(t).find((n) => unavailable.has(n));
  const listeners = config.listeners.flatMap((l) => {
    if (l.filterChains?.length) {
      const kept = l.filterChains.filter((c) => {
        const secret = blocked(c.tls);
        if (secret) report({ listener: l.name, chain: c.name, secret, error: unavailable.get(secret) });
        return secret === undefined;
      });
      if (kept.length === l.filterChains.length) return [l];
      return kept.length ? [{ ...l, filterChains: kept }] : [];
    }
    const secret = blocked(l.tls);
    if (secret === undefined) return [l];
    report({ listener: l.name, secret, error: unavailable.get(secret) });
    return [];
  });
  return done({ ...config, listeners });
}
