/**
 * The one identity resolver: a presented token → an `Identity`, or an `HttpError` saying why not. The
 * HTTP middleware and the websocket upgrade both use it, so a refusal reads the same on either path.
 *
 * Order: the admin and hub tokens (constant-time), then per-user tokens by hash (with their owner's
 * `users.active`, read at every request, concurrent ones sharing a statement: db/token-batch.ts), then OIDC
 * bearer tokens.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createBatchedTokenLookup, TOKEN_PREFIX, type Queryable } from '../../db';
import type { OidcIdentity } from '../../identity';
import { forbidden, unauthorized } from '../errors';
import type { Identity } from './identity';

export interface IdentityResolverOptions {
  db: Queryable;
  hubToken?: string;
  adminToken?: string;
  oidc?: Pick<OidcIdentity, 'authenticate'>;
}

export type IdentityResolver = (token: string) => Promise<Identity>;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function sameSecret(given: Buffer, configured: string | undefined): boolean {
  return configured !== undefined && timingSafeEqual(given, digest(configured));
}

/** The token of `Authorization: token <t>` (or `Bearer <t>`); undefined without one. */
export function headerToken(req: Pick<IncomingMessage, 'headers'>): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  return /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header)?.[1];
}

export const deactivatedMessage = (username: string): string =>
  `user '${username}' is deactivated in spawngate; an administrator must activate the account again`;

export function createIdentityResolver(o: IdentityResolverOptions): IdentityResolver {
  const lookup = createBatchedTokenLookup(o.db);
  return async function resolveIdentity(token: string): Promise<Identity> {
    const given = digest(token);
    if (sameSecret(given, o.adminToken)) return { kind: 'admin' };
    if (sameSecret(given, o.hubToken)) return { kind: 'hub' };
    if (token.startsWith(TOKEN_PREFIX)) {
      const found = token.length <= 256 ? await lookup(token) : undefined;
      if (!found) throw unauthorized('invalid token');
      if (found.status === 'revoked') throw unauthorized('this token was revoked; ask for a new one');
      if (found.status === 'expired') throw unauthorized(`this token expired at ${found.expiresAt?.toISOString()}; mint a new one`);
      if (found.userActive === false) throw forbidden(deactivatedMessage(found.username));
      return { kind: 'user', username: found.username, serverId: found.serverId ?? undefined };
    }
    if (!o.oidc) throw unauthorized('invalid token');
    // TokenRejectedError (401), UserDeactivatedError (403), IdentityProviderUnavailableError (503): the error mapper.
    const p = await o.oidc.authenticate(token);
    const expiry = p.expiresAt ? { expiresAt: p.expiresAt } : {};
    return p.admin ? { kind: 'admin', username: p.username, via: 'oidc', ...expiry } : { kind: 'user', username: p.username, via: 'oidc', ...expiry };
  };
}
