/**
 * API tokens as administrators manage them: mint a personal (CLI) token with an expiry, list tokens
 * (metadata only, never the secret), revoke one or all of a user's. Minting and revoking are audited
 * by a trigger (migration 007) under the acting administrator's name.
 */
import { z } from 'zod';
import { getTokenInfo, listTokens, mintToken, revokeTokenById, revokeUserTokens, withAuditActor, type AuditActor, type Db, type Queryable } from '../db';
import { AdminError } from './errors';
import { parseInput, usernameSchema } from './schemas';

/** Lifetime of a minted token unless the caller says otherwise: a working day and a night. */
export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * `90`, `90s`, `15m`, `24h`, `7d`, `2w` → seconds; `0` → 0 (no expiry). Written by hand: five units
 * do not justify a dependency.
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+)\s*([smhdw]?)\s*$/i.exec(text);
  if (!m) throw new AdminError('invalid', `ttl: '${text}' is not a duration (e.g. 3600, 15m, 24h, 7d; 0 for no expiry)`);
  const seconds = Number(m[1]) * UNIT_SECONDS[(m[2] || 's').toLowerCase()]!;
  if (!Number.isSafeInteger(seconds) || seconds > 10 * 365 * 86400) throw new AdminError('invalid', `ttl: '${text}' is longer than ten years`);
  return seconds;
}

export const tokenSchema = z.object({
  id: z.number().int(),
  username: z.string(),
  kind: z.enum(['gateway', 'cli']).describe("'gateway': minted for a single-user server (revoked when it stops); 'cli': minted by `spawngate token`"),
  server_id: z.number().int().nullable(),
  note: z.string().nullable(),
  created_at: z.string(),
  expires_at: z.string().nullable().describe('null: never expires'),
  revoked_at: z.string().nullable(),
  state: z.enum(['active', 'expired', 'revoked']),
});
export type TokenModel = z.infer<typeof tokenSchema>;

export const tokenQuerySchema = z
  .object({
    user: usernameSchema.optional().describe('only this user\'s tokens'),
    kind: z.enum(['gateway', 'cli']).optional(),
    all: z.enum(['true', 'false', '1', '0']).optional().describe('also expired and revoked tokens'),
  })
  .strict();

export const tokenMintSchema = z
  .object({
    username: usernameSchema,
    ttl: z.string().optional().describe('lifetime (3600, 15m, 24h, 7d; 0: never expires); default 24h'),
    note: z.string().max(500).optional(),
  })
  .strict();

export function listTokenModels(q: Queryable, input: unknown): Promise<TokenModel[]> {
  const v = parseInput(tokenQuerySchema, input);
  return listTokens(q, { username: v.user, kind: v.kind, includeInactive: v.all === 'true' || v.all === '1' });
}

/** Mints a CLI token; returns the plaintext (shown once) and its metadata. */
export async function mintUserToken(db: Db, who: AuditActor, input: unknown): Promise<{ token: string; info: TokenModel }> {
  const v = parseInput(tokenMintSchema, input);
  const ttl = v.ttl === undefined ? DEFAULT_TOKEN_TTL_SECONDS : parseDuration(v.ttl);
  return withAuditActor(db, who, async (q) => {
    const token = await mintToken(q, { username: v.username, kind: 'cli', note: v.note, ttlSeconds: ttl === 0 ? undefined : ttl });
    const [info] = await listTokens(q, { username: v.username, includeInactive: true, limit: 1 });
    return { token, info: info! };
  });
}

export async function revokeTokenModel(db: Db, who: AuditActor, id: number): Promise<TokenModel> {
  return withAuditActor(db, who, async (q) => {
    const info = await revokeTokenById(q, id);
    if (!info) throw new AdminError('not-found', `no token with id ${id}`);
    return info;
  });
}

/** Revokes every active token of a user; returns how many. */
export function revokeAllTokens(db: Db, who: AuditActor, username: string): Promise<number> {
  return withAuditActor(db, who, (q) => revokeUserTokens(q, username));
}

export async function getTokenModel(q: Queryable, id: number): Promise<TokenModel> {
  const info = await getTokenInfo(q, id);
  if (!info) throw new AdminError('not-found', `no token with id ${id}`);
  return info;
}
