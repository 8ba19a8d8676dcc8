/**
 * API tokens (table `api_tokens`): gateway tokens handed to a single-user server, CLI tokens for people.
 * The plaintext exists only in `mintToken`'s return value; the database keeps its SHA-256, so a leaked
 * table grants nothing. Lookups go by hash, so no constant-time comparison is involved.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from './types';

export type TokenKind = 'gateway' | 'cli';

export interface MintTokenInput {
  username: string;
  kind: TokenKind;
  /** The server this token belongs to; revoked with it (`revokeServerTokens`) and deleted with its row. */
  serverId?: number;
  /** Free text for administrators, e.g. what the token is for. */
  note?: string;
  /** Lifetime in seconds; unset: does not expire. */
  ttlSeconds?: number;
}

export interface TokenOwner {
  username: string;
  kind: TokenKind;
  serverId: number | null;
}

/** Every token starts with this, so a leaked one is recognisable (and scannable) as spawngate's. */
export const TOKEN_PREFIX = 'sg_';

/** SHA-256 hex of a plaintext token: what `api_tokens.token_hash` holds. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Creates a token and returns its plaintext (`sg_` + 32 random bytes base64url). Not idempotent. */
export async function mintToken(q: Queryable, input: MintTokenInput): Promise<string> {
  if (input.ttlSeconds !== undefined && !(input.ttlSeconds > 0)) {
    throw new RangeError(`ttlSeconds must be positive, got ${input.ttlSeconds}`);
  }
  const { token, hash } = newToken();
  await q.query(
    `INSERT INTO api_tokens (token_hash, username, kind, server_id, note, expires_at)
     VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::double precision IS NULL THEN NULL
                                      ELSE now() + make_interval(secs => $6::double precision) END)`,
    [
      hash,
      input.username,
      input.kind,
      input.serverId ?? null,
      input.note ?? null,
      input.ttlSeconds ?? null,
    ],
  );
  return token;
}

/** The owner of a valid token; undefined when unknown, malformed, revoked or expired. */
export async function verifyToken(q: Queryable, token: string): Promise<TokenOwner | undefined> {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const [row] = await q.query<{ username: string; kind: TokenKind; server_id: number | string | null }>(
    `SELECT username, kind, server_id FROM api_tokens
      WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    [hashToken(token)],
  );
  if (!row) return undefined;
  return {
    username: row.username,
    kind: row.kind,
    serverId: row.server_id === null ? null : Number(row.server_id),
  };
}

/** Revokes one token. Returns true if it was valid until now; idempotent (false the second time). */
export async function revokeToken(q: Queryable, token: string): Promise<boolean> {
  const rows = await q.query(
    'UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL RETURNING id',
    [hashToken(token)],
  );
  return rows.length > 0;
}

/** Revokes every unrevoked token of a server (on stop). Returns how many it revoked; idempotent. */
export async function revokeServerTokens(q: Queryable, serverId: number): Promise<number> {
  const rows = await q.query(
    'UPDATE api_tokens SET revoked_at = now() WHERE server_id = $1 AND revoked_at IS NULL RETURNING id',
    [serverId],
  );
  return rows.length;
}

/** A fresh token and its hash; the caller stores only the hash. */
export function newToken(): { token: string; hash: string } {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}
