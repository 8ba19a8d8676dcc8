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
  const found = await lookupToken(q, token);
  if (!found || found.status !== 'valid') return undefined;
  return { username: found.username, kind: found.kind, serverId: found.serverId };
}

/** What a presented token is, for the identity resolver: its owner, whether it still holds, and why not. */
export interface TokenLookup extends TokenOwner {
  /** 'expired' and 'revoked' tokens are refused with that reason (401). */
  status: 'valid' | 'expired' | 'revoked';
  expiresAt: Date | null;
  /** `users.active` of the owner; null when the owner has no users row (not refused). */
  userActive: boolean | null;
}

/**
 * Looks a token up by hash with its owner's `users.active`, in one statement, so a deactivation by
 * admin SQL applies to the very next request (token-batch.ts keeps that true when lookups share a
 * statement). Undefined for unknown or malformed tokens.
 */
export async function lookupToken(q: Queryable, token: string): Promise<TokenLookup | undefined> {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const hash = hashToken(token);
  return (await lookupTokenHashes(q, [hash])).get(hash);
}

/** What `lookupToken` answers for each of `hashes` (`hashToken`) found, in one statement. */
export async function lookupTokenHashes(q: Queryable, hashes: readonly string[]): Promise<Map<string, TokenLookup>> {
  const rows = await q.query<{
    token_hash: string;
    username: string;
    kind: TokenKind;
    server_id: number | string | null;
    expires_at: Date | string | null;
    revoked: boolean;
    expired: boolean;
    user_active: boolean | null;
  }>(
    `SELECT t.token_hash, t.username, t.kind, t.server_id, t.expires_at, t.revoked_at IS NOT NULL AS revoked,
            (t.expires_at IS NOT NULL AND t.expires_at <= now()) AS expired, u.active AS user_active
       FROM api_tokens t LEFT JOIN users u ON u.username = t.username
      WHERE t.token_hash = ANY($1::text[])`,
    [hashes],
  );
  const found = new Map<string, TokenLookup>();
  for (const row of rows) {
    found.set(row.token_hash, {
      username: row.username,
      kind: row.kind,
      serverId: row.server_id === null ? null : Number(row.server_id),
      status: row.revoked ? 'revoked' : row.expired ? 'expired' : 'valid',
      expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
      userActive: row.user_active,
    });
  }
  return found;
}

/** A token as administrators see it: metadata only, never the token or its hash. */
export interface TokenInfo {
  id: number;
  username: string;
  kind: TokenKind;
  server_id: number | null;
  note: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  state: 'active' | 'expired' | 'revoked';
}

const TOKEN_INFO = `SELECT id, username, kind, server_id, note, created_at, expires_at, revoked_at,
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired' ELSE 'active' END AS state
  FROM api_tokens`;

type TokenInfoRow = Omit<TokenInfo, 'id' | 'server_id' | 'created_at' | 'expires_at' | 'revoked_at'> & {
  id: number | string;
  server_id: number | string | null;
  created_at: Date | string;
  expires_at: Date | string | null;
  revoked_at: Date | string | null;
};

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

function toInfo(r: TokenInfoRow): TokenInfo {
  return {
    ...r,
    id: Number(r.id),
    server_id: r.server_id === null ? null : Number(r.server_id),
    created_at: new Date(r.created_at).toISOString(),
    expires_at: iso(r.expires_at),
    revoked_at: iso(r.revoked_at),
  };
}

/** Tokens, newest first; by default only active ones. */
export async function listTokens(
  q: Queryable,
  opts: { username?: string; kind?: TokenKind; includeInactive?: boolean; limit?: number } = {},
): Promise<TokenInfo[]> {
  const rows = await q.query<TokenInfoRow>(
    `SELECT * FROM (${TOKEN_INFO}) t
      WHERE ($1::text IS NULL OR username = $1) AND ($2::text IS NULL OR kind = $2) AND ($3 OR state = 'active')
      ORDER BY id DESC LIMIT $4`,
    [opts.username ?? null, opts.kind ?? null, opts.includeInactive ?? false, opts.limit ?? 1000],
  );
  return rows.map(toInfo);
}

/** One token's metadata by id. */
export async function getTokenInfo(q: Queryable, id: number): Promise<TokenInfo | undefined> {
  const [row] = await q.query<TokenInfoRow>(`${TOKEN_INFO} WHERE id = $1`, [id]);
  return row ? toInfo(row) : undefined;
}

/** Revokes a token by id; returns its metadata afterwards (undefined: no such id). Idempotent. */
export async function revokeTokenById(q: Queryable, id: number): Promise<TokenInfo | undefined> {
  await q.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
  return getTokenInfo(q, id);
}

/** Revokes every unrevoked token of a user. Returns how many it revoked; idempotent. */
export async function revokeUserTokens(q: Queryable, username: string): Promise<number> {
  const rows = await q.query('UPDATE api_tokens SET revoked_at = now() WHERE username = $1 AND revoked_at IS NULL RETURNING id', [username]);
  return rows.length;
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

/** Where a credential of an open websocket stands now; `missing`: the token row is gone (server deleted). */
export interface CredentialStanding {
  /** The token hash or the user name it was asked about. */
  key: string;
  status: 'valid' | 'expired' | 'revoked' | 'missing';
  username: string | null;
  /** `users.active` of the owner; null when the owner has no users row (not refused). */
  userActive: boolean | null;
}

/**
 * Re-checks many credentials in one statement: token hashes (their state and owner's `users.active`)
 * and plain user names (OIDC identities, by `users.active` only). One row per key asked, so a replica
 * can revisit all its open websockets with a single round trip.
 */
export async function credentialStanding(
  q: Queryable,
  ask: { tokenHashes: readonly string[]; usernames: readonly string[] },
): Promise<CredentialStanding[]> {
  if (ask.tokenHashes.length === 0 && ask.usernames.length === 0) return [];
  const rows = await q.query<{ key: string; missing: boolean; revoked: boolean; expired: boolean; username: string | null; user_active: boolean | null }>(
    `SELECT h.key, t.id IS NULL AS missing, t.revoked_at IS NOT NULL AS revoked,
            (t.expires_at IS NOT NULL AND t.expires_at <= now()) AS expired, t.username, u.active AS user_active
       FROM unnest($1::text[]) AS h(key)
       LEFT JOIN api_tokens t ON t.token_hash = h.key
       LEFT JOIN users u ON u.username = t.username
     UNION ALL
     SELECT n.key, false, false, false, n.key, u.active
       FROM unnest($2::text[]) AS n(key)
       LEFT JOIN users u ON u.username = n.key`,
    [[...ask.tokenHashes], [...ask.usernames]],
  );
  return rows.map((r) => ({
    key: r.key,
    status: r.missing ? 'missing' : r.revoked ? 'revoked' : r.expired ? 'expired' : 'valid',
    username: r.username,
    userActive: r.user_active,
  }));
}
