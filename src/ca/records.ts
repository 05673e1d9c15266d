/**
 * What the CA remembers besides its keys: the certificates it issued (`issued.jsonl`, one
 * JSON object a line, appended on every issuance and compacted as they expire) and what was
 * revoked (`revocations.json`). Pure functions over plain data; the CA does the I/O.
 */
import type { RevocationList } from '../api/proxy-config.js';

/** One issued certificate, as `sinew ca list` shows it. */
export interface IssuedRecord {
  serial: string;
  /** The SPIFFE ID in its URI SAN. */
  identity: string;
  notBefore: number;
  notAfter: number;
  /** The credential that asked for it, when the caller named one (see SignRequest.holder). */
  holder?: string;
  /** SHA-256 fingerprint of the root it chains to. */
  root: string;
}

/** Issued records are kept this long after the certificate expires, then compacted away. */
export const ISSUED_RETENTION_MS = 60 * 60 * 1000;

/** Reads issued.jsonl; a torn last line (a crash during an append) is skipped. */
export function parseIssuedLog(text: string | undefined): { records: IssuedRecord[]; skipped: number } {
  const records: IssuedRecord[] = [];
  let skipped = 0;
  for (const line of (text ?? '').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as IssuedRecord;
      if (typeof r.serial === 'string' && typeof r.identity === 'string' && Number.isFinite(r.notAfter)) records.push(r);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { records, skipped };
}

export function formatIssuedLog(records: readonly IssuedRecord[]): string {
  return records.map((r) => JSON.stringify(r) + '\n').join('');
}

/** The records still worth keeping at `now`. */
export function liveIssued(records: readonly IssuedRecord[], now: number): IssuedRecord[] {
  return records.filter((r) => r.notAfter + ISSUED_RETENTION_MS >= now);
}

// === revocations ===

export interface RevokedSerialRecord {
  serial: string;
  identity: string;
  /** The certificate's notAfter: pushed to proxies until then. */
  expiresAt: number;
  revokedAt: number;
  /** Renewals by this credential are refused from now on. */
  holder?: string;
}

export interface RevokedIdentityRecord {
  identity: string;
  revokedAt: number;
  /** Certificates issued before this (ms, a whole second after revokedAt's second) are refused by proxies. */
  issuedBefore: number;
  /** The last notAfter among the certificates it covers: pushed to proxies until then. */
  expiresAt: number;
  /** While true the CA issues nothing for the identity (`sinew ca unrevoke` clears it). */
  blocked: boolean;
}

/** revocations.json. */
export interface RevocationState {
  version: number;
  serials: RevokedSerialRecord[];
  identities: RevokedIdentityRecord[];
}

export const EMPTY_REVOCATIONS: RevocationState = { version: 0, serials: [], identities: [] };

export function parseRevocations(text: string | undefined): RevocationState {
  if (!text) return EMPTY_REVOCATIONS;
  const raw = JSON.parse(text) as Partial<RevocationState>;
  if (!Number.isInteger(raw.version) || !Array.isArray(raw.serials) || !Array.isArray(raw.identities)) throw new Error('not a revocation list (version, serials, identities)');
  return { version: raw.version as number, serials: raw.serials, identities: raw.identities };
}

/**
 * The list pushed to proxies at `now`: entries whose certificates may still be valid.
 * Identity entries keep only what a proxy needs (issuedBefore), not whether issuance is blocked.
 */
export function revocationListAt(state: RevocationState, now: number): RevocationList {
  return {
    version: state.version,
    serials: state.serials.filter((s) => s.expiresAt >= now).map((s) => ({ serial: s.serial, expiresAt: s.expiresAt })),
    identities: state.identities.filter((i) => i.expiresAt >= now).map((i) => ({ identity: i.identity, issuedBefore: i.issuedBefore, expiresAt: i.expiresAt })),
  };
}

/**
 * The instant from which an identity revoked at `revokedAt` may be issued for again:
 * certificate times have whole seconds (RFC 5280 UTCTime), so the next whole second. Every
 * certificate issued up to `revokedAt` has a notBefore before it.
 */
export function identityCutoff(revokedAt: number): number {
  return Math.floor(revokedAt / 1000) * 1000 + 1000;
}
