import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/**
 * Bearer tokens and ids. A token is `gatehouse_<kind>_` + 256 random bits (base64url), shown once
 * and stored only as its SHA-256; the prefix lets secret scanners and people recognize it.
 */

export type TokenKind = 'agent' | 'session' | 'reviewer' | 'phantom';

/** A new token, e.g. `gatehouse_session_3q2…` (43 characters after the prefix). */
export function mintToken(kind: TokenKind): string {
  return `gatehouse_${kind}_${randomBytes(32).toString('base64url')}`;
}

/** Hex SHA-256 of a token: what the store keeps. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `token` hashes to `hash`, compared in constant time. */
export function tokenMatches(token: string, hash: string): boolean {
  const a = Buffer.from(tokenHash(token), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The kind a token claims by its prefix, or null. */
export function tokenKind(token: string): TokenKind | null {
  const m = /^gatehouse_(agent|session|reviewer|phantom)_[A-Za-z0-9_-]{43}$/.exec(token);
  return m ? (m[1] as TokenKind) : null;
}

/** A random id with a type prefix: `ses_…`, `apr_…`, `dec_…` (a v4 UUID's 122 random bits, as 32 hex digits). */
export function newId(prefix: 'ses' | 'apr' | 'dec' | 'web' | 'tok'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '')}`;
}
