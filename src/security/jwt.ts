/**
 * End-user authentication (Istio's RequestAuthentication, Envoy's jwt_authn filter): find the
 * tokens a request carries, verify each with the JOSE library `jose` (signature, `iss`, `aud`,
 * `exp`/`nbf` with clock skew), and give a valid one's identity to authorization.
 *
 * As in Istio (DESIGN behaviour 9; Envoy `requires_any` with `allow_missing`): a request
 * without a token passes with no identity; one with a token that fails is answered 401. So
 * "require a token" is this plus an AuthorizationPolicy with `requestPrincipals: ["*"]`.
 *
 * No I/O of its own: the JWKS of a `jwksUri` is fetched through an injected function (the
 * proxy sends it through the mesh), and time comes from an injected clock.
 */
import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { deepFreeze } from '../core/freeze.js';
import type { RequestAuth } from './attributes.js';
import { DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_JWKS_REFRESH_MS, DEFAULT_JWKS_TIMEOUT_MS, jwtAuthnConfigSchema, type JwtAuthnConfig, type JwtProvider } from './jwt-config.js';

export type { JwtAuthnConfig, JwtProvider } from './jwt-config.js';

/** A token signed by a key the cached set lacks refetches the set, at most this often (jose's cooldown). */
const JWKS_COOLDOWN_MS = 30_000;
/**
 * Verified tokens kept, as Envoy's jwt_authn JWT cache keeps them (`jwt_cache_config`): a
 * client sends the same token with every request, and verifying a signature costs more than
 * proxying the request. The key is the whole token, signature included, so only the exact
 * token that was verified is found; its time claims are checked again on every use, and an
 * entry lasts no longer than a fetched key set is trusted before it is fetched again.
 */
const VERIFIED_CACHE_SIZE = 1000;

// === results ===

interface FoundToken {
  value: string;
  /** The header it came from, removed unless a provider forwards it. */
  header?: string;
  /** The providers that look where it was found. */
  providers: JwtProvider[];
}

interface VerifiedToken {
  auth: RequestAuth;
  provider: JwtProvider;
}

const NO_TOKEN: JwtOutcome = Object.freeze({ ok: true as const });

/** Envoy's jwt_authn status texts, used as the 401 body and in the response details. */
export const JwtFailure = {
  Missing: 'Jwt is missing',
  Malformed: 'Jwt is not in the form of Header.Payload.Signature',
  Expired: 'Jwt is expired',
  NotYetValid: 'Jwt not yet valid',
  UnknownIssuer: 'Jwt issuer is not configured',
  AudienceNotAllowed: 'Audiences in Jwt are not allowed',
  VerificationFails: 'Jwt verification fails',
  JwksFetchFailed: 'Jwks remote fetch is failed',
} as const;
export type JwtFailureText = (typeof JwtFailure)[keyof typeof JwtFailure];

export interface HeaderAccess {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  remove(name: string): void;
}

export interface JwtRequest {
  headers: HeaderAccess;
  /** The request target (`:path` with its query). */
  path: string;
}

export type JwtOutcome =
  | { ok: true; auth?: RequestAuth }
  | { ok: false; failure: JwtFailureText; /** For the log: what went wrong in detail. */ message: string };

export interface JwtDependencies {
  /** Fetches a JWKS document; must honour the signal (the timeout). */
  fetchJwks(uri: string, signal: AbortSignal): Promise<string>;
  /** Milliseconds since the epoch. */
  now(): number;
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

/** Checks a config and builds the authenticator; throws for an inline JWKS that is not a key set. */
export function createJwtAuthenticator(rawConfig: unknown, deps: JwtDependencies): JwtAuthenticator {
  return new JwtAuthenticator(jwtAuthnConfigSchema.parse(rawConfig), deps);
}

export class JwtAuthenticator {
  readonly #config: JwtAuthnConfig;
  readonly #deps: JwtDependencies;
  readonly #inline = new Map<JwtProvider, KeySet>();
  readonly #remote: JwksCache;
  /** By `cacheKey(token)`; an entry holds its whole token, compared before use. */
  readonly #verified = new Map<string, { token: string; auth: RequestAuth; provider: JwtProvider; exp?: number; nbf?: number; cachedAt: number }>();

  constructor(config: JwtAuthnConfig, deps: JwtDependencies) {
    this.#config = config;
    this.#deps = deps;
    for (const p of config.providers) {
      if (p.jwks !== undefined) this.#inline.set(p, createLocalJWKSet(parseJwks(p.jwks, p.issuer)));
      else if (p.jwksUri === undefined) throw new TypeError(`jwt provider ${p.issuer}: needs jwks or jwksUri`);
    }
    this.#remote = new JwksCache(deps, config.jwksRefreshMs ?? DEFAULT_JWKS_REFRESH_MS);
  }

  /** Envoy's clear_route_cache: route again once a token is verified (jwt-config.ts). */
  get clearRouteCache(): boolean {
    return this.#config.clearRouteCache === true;
  }

  /**
   * Authenticates one request: every token found is verified by the provider of its issuer; the
   * first valid one gives the identity. Applies the header outputs of the provider that
   * verified it, and removes tokens from headers unless `forwardOriginalToken`.
   */
  authenticate(request: JwtRequest): JwtOutcome | Promise<JwtOutcome> {
    const found = this.#extract(request);
    if (found.length === 0) return NO_TOKEN;
    // The common case, a token verified before: answered without waiting on anything.
    const known = found.map((t) => this.#fromCache(t.value, t.providers));
    if (known.every((k) => k !== undefined)) return this.#finish(request, found, known as VerifiedToken[]);
    return this.#authenticateSlowly(request, found);
  }

  async #authenticateSlowly(request: JwtRequest, found: FoundToken[]): Promise<JwtOutcome> {
    const verified: VerifiedToken[] = [];
    for (const token of found) {
      const result = await this.#verify(token.value, token.providers);
      if (!result.ok) return result;
      verified.push(result);
    }
    return this.#finish(request, found, verified);
  }

  /** Every token is valid: the first gives the identity; headers are written and tokens removed. */
  #finish(request: JwtRequest, found: readonly FoundToken[], verified: readonly VerifiedToken[]): JwtOutcome {
    for (const token of found) {
      if (token.header && !token.providers.some((p) => p.forwardOriginalToken)) request.headers.remove(token.header);
    }
    const first = verified[0];
    applyOutputs(first.provider, first.auth, found[0].value, request.headers);
    return { ok: true, auth: first.auth };
  }

  /** The distinct tokens in the request, each with the providers that look where it was found. */
  #extract(request: JwtRequest): FoundToken[] {
    const out: FoundToken[] = [];
    const add = (value: string | undefined, provider: JwtProvider, header?: string) => {
      if (!value) return;
      const existing = out.find((t) => t.value === value);
      if (existing) existing.providers.push(provider);
      else out.push({ value, providers: [provider], ...(header ? { header } : {}) });
    };
    let query: URLSearchParams | undefined;
    let cookies: Map<string, string> | undefined;
    for (const p of this.#config.providers) {
      for (const h of p.fromHeaders) {
        const raw = request.headers.get(h.name.toLowerCase());
        if (raw === undefined) continue;
        const prefix = h.prefix ?? '';
        // Envoy compares the prefix case-sensitively, except for `Bearer ` which RFC 6750
        // leaves case-insensitive in practice; a header without the prefix has no token.
        if (prefix && !raw.startsWith(prefix) && !(prefix.toLowerCase() === 'bearer ' && raw.toLowerCase().startsWith('bearer '))) continue;
        add(raw.slice(prefix.length).trim(), p, h.name.toLowerCase());
      }
      if (p.fromParams.length > 0 && mayHoldParams(request.path, p.fromParams)) {
        query ??= new URLSearchParams(request.path.slice(request.path.indexOf('?') + 1));
        for (const name of p.fromParams) add(query.get(name) ?? undefined, p);
      }
      if (p.fromCookies.length > 0) {
        cookies ??= parseCookies(request.headers.get('cookie'));
        for (const name of p.fromCookies) add(cookies.get(name), p);
      }
    }
    return out;
  }

  /** A token verified before, still within its time claims and the key set's lifetime; undefined otherwise. */
  #fromCache(token: string, lookedHere: readonly JwtProvider[]): VerifiedToken | undefined {
    const key = cacheKey(token);
    const cached = this.#verified.get(key);
    if (!cached || cached.token !== token || !lookedHere.includes(cached.provider)) return undefined;
    const nowMs = this.#deps.now();
    const now = nowMs / 1000;
    const skew = this.#config.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
    const fresh = nowMs - cached.cachedAt < (this.#config.jwksRefreshMs ?? DEFAULT_JWKS_REFRESH_MS);
    const timely = (cached.exp === undefined || now <= cached.exp + skew) && (cached.nbf === undefined || now >= cached.nbf - skew);
    if (fresh && timely) return cached;
    this.#verified.delete(key); // verified again: an expired one then fails with its reason
    return undefined;
  }

  async #verify(token: string, lookedHere: readonly JwtProvider[]): Promise<({ ok: true } & VerifiedToken) | { ok: false; failure: JwtFailureText; message: string }> {
    const cached = this.#fromCache(token, lookedHere);
    if (cached) return { ok: true, ...cached };
    const result = await this.#verifyUncached(token, lookedHere);
    if (result.ok) {
      if (this.#verified.size >= VERIFIED_CACHE_SIZE) this.#verified.delete(this.#verified.keys().next().value!);
      const { exp, nbf } = result.auth.claims as JWTPayload;
      this.#verified.set(cacheKey(token), { token, auth: deepFreeze(result.auth), provider: result.provider, cachedAt: this.#deps.now(), ...(typeof exp === 'number' ? { exp } : {}), ...(typeof nbf === 'number' ? { nbf } : {}) });
    }
    return result;
  }

  async #verifyUncached(token: string, lookedHere: readonly JwtProvider[]): Promise<{ ok: true; auth: RequestAuth; provider: JwtProvider } | { ok: false; failure: JwtFailureText; message: string }> {
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch (e) {
      return { ok: false, failure: JwtFailure.Malformed, message: (e as Error).message };
    }
    const provider = lookedHere.find((p) => p.issuer === claims.iss);
    if (!provider) return { ok: false, failure: JwtFailure.UnknownIssuer, message: `issuer ${String(claims.iss)} has no rule where the token was found` };
    const skew = this.#config.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
    const options = { issuer: provider.issuer, clockTolerance: skew, currentDate: new Date(this.#deps.now()) };
    let payload: JWTPayload;
    try {
      const inline = this.#inline.get(provider);
      if (inline) payload = (await jwtVerify(token, inline, options)).payload;
      else {
        const uri = provider.jwksUri!;
        const timeout = provider.jwksTimeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS;
        try {
          payload = (await jwtVerify(token, await this.#remote.get(uri, timeout), options)).payload;
        } catch (e) {
          // A key the cached set lacks: the issuer may have rotated its keys; fetch again.
          if (!(e instanceof errors.JWKSNoMatchingKey) || !this.#remote.mayRefresh(uri)) throw e;
          payload = (await jwtVerify(token, await this.#remote.get(uri, timeout, true), options)).payload;
        }
      }
    } catch (e) {
      return { ok: false, ...failureOf(e) };
    }
    if (provider.audiences?.length) {
      const aud = audiencesOf(payload);
      if (!aud.some((a) => provider.audiences!.includes(a))) return { ok: false, failure: JwtFailure.AudienceNotAllowed, message: `aud ${JSON.stringify(aud)} is none of ${JSON.stringify(provider.audiences)}` };
    }
    const auth: RequestAuth = {
      principal: `${payload.iss}/${payload.sub ?? ''}`,
      audiences: audiencesOf(payload),
      ...(typeof payload.azp === 'string' ? { presenter: payload.azp } : {}),
      claims: payload,
    };
    return { ok: true, auth, provider };
  }
}

/**
 * The verified-token cache's key: the last 32 characters of the token, which are signature
 * (192 bits of it). Hashing a whole token (hundreds of characters) for every request costs
 * more than the rest of the lookup; an entry is used only when its whole token is the same.
 */
/**
 * Whether the query of `target` may hold one of `names`: parsing it is left out (on every
 * request with a query and no token parameter) only when no name appears in it literally
 * and nothing in it is percent-encoded, so no encoded name can be missed.
 */
function mayHoldParams(target: string, names: readonly string[]): boolean {
  const q = target.indexOf('?');
  if (q < 0) return false;
  if (target.includes('%', q) || target.includes('+', q)) return true;
  for (const name of names) if (target.includes(name, q)) return true;
  return false;
}

function cacheKey(token: string): string {
  return token.length > 32 ? token.slice(-32) : token;
}

function failureOf(e: unknown): { failure: JwtFailureText; message: string } {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof JwksFetchError) return { failure: JwtFailure.JwksFetchFailed, message };
  if (e instanceof errors.JWTExpired) return { failure: JwtFailure.Expired, message };
  if (e instanceof errors.JWTClaimValidationFailed && e.claim === 'nbf') return { failure: JwtFailure.NotYetValid, message };
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return { failure: JwtFailure.Malformed, message };
  return { failure: JwtFailure.VerificationFails, message };
}

function audiencesOf(payload: JWTPayload): string[] {
  if (typeof payload.aud === 'string') return [payload.aud];
  return Array.isArray(payload.aud) ? payload.aud.filter((a): a is string => typeof a === 'string') : [];
}

/**
 * Envoy's outputs: the payload as sent (base64url, `forward_payload_header`) and single claims
 * (`claim_to_headers`: strings, numbers and booleans; a nested claim is written `a.b`). A
 * header the client sent under one of these names is replaced, so it cannot be forged.
 */
function applyOutputs(provider: JwtProvider, auth: RequestAuth, token: string, headers: HeaderAccess): void {
  if (provider.outputPayloadToHeader) headers.set(provider.outputPayloadToHeader.toLowerCase(), token.split('.')[1] ?? '');
  for (const { header, claim } of provider.outputClaimToHeaders ?? []) {
    let value: unknown = auth.claims;
    for (const key of claim.split('.')) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    const name = header.toLowerCase();
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') headers.set(name, String(value));
    else headers.remove(name);
  }
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function parseJwks(text: string, issuer: string): JSONWebKeySet {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TypeError(`jwt provider ${issuer}: jwks is not JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== 'object' || !Array.isArray((value as { keys?: unknown }).keys)) throw new TypeError(`jwt provider ${issuer}: jwks has no "keys" list`);
  return value as JSONWebKeySet;
}

// === the JWKS cache ===

export class JwksFetchError extends Error {
  readonly code = 'SINEW_JWKS_FETCH_FAILED';
}

/**
 * Fetched key sets by URI: one fetch at a time per URI, kept for `refreshMs`, fetched again
 * after that (a failed refresh keeps the old set, as Envoy keeps using a cached JWKS), and
 * fetched early when a token names a key the set lacks, at most once per cooldown.
 */
class JwksCache {
  readonly #entries = new Map<string, { keys: KeySet; fetchedAt: number }>();
  readonly #inFlight = new Map<string, Promise<KeySet>>();
  readonly #deps: JwtDependencies;
  readonly #refreshMs: number;

  constructor(deps: JwtDependencies, refreshMs: number) {
    this.#deps = deps;
    this.#refreshMs = refreshMs;
  }

  mayRefresh(uri: string): boolean {
    const entry = this.#entries.get(uri);
    return !entry || this.#deps.now() - entry.fetchedAt >= JWKS_COOLDOWN_MS;
  }

  async get(uri: string, timeoutMs: number, force = false): Promise<KeySet> {
    const entry = this.#entries.get(uri);
    if (entry && !force && this.#deps.now() - entry.fetchedAt < this.#refreshMs) return entry.keys;
    try {
      return await this.#fetch(uri, timeoutMs);
    } catch (e) {
      if (entry) return entry.keys;
      throw e;
    }
  }

  #fetch(uri: string, timeoutMs: number): Promise<KeySet> {
    const pending = this.#inFlight.get(uri);
    if (pending) return pending;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new JwksFetchError(`fetching the JWKS at ${uri} took more than ${timeoutMs} ms`)), timeoutMs);
    const run = (async () => {
      try {
        const text = await Promise.race([
          this.#deps.fetchJwks(uri, controller.signal),
          new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })),
        ]);
        const keys = createLocalJWKSet(parseJwks(text, uri));
        this.#entries.set(uri, { keys, fetchedAt: this.#deps.now() });
        return keys;
      } catch (e) {
        throw e instanceof JwksFetchError ? e : new JwksFetchError(`fetching the JWKS at ${uri} failed: ${(e as Error).message}`);
      } finally {
        clearTimeout(timer);
        this.#inFlight.delete(uri);
      }
    })();
    this.#inFlight.set(uri, run);
    return run;
  }
}
