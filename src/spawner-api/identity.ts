/**
 * Who is calling. The auth middleware puts an `Identity` in `res.locals.identity`; routes decide what
 * it may do with `actingUser`.
 */
import type { Response } from 'express';
import { forbidden, unauthorized } from './errors';

export type Identity =
  /** The hub's token: may manage any user's servers. */
  | { kind: 'hub' }
  /** The admin/service token, or an OIDC token with the admin role (`username` set): may act for any user everywhere. */
  | { kind: 'admin'; username?: string; via?: 'oidc' }
  /** A per-user gateway token or an OIDC token: acts as this user only. */
  | { kind: 'user'; username: string; serverId?: number; via?: 'oidc' };

export function identityOf(res: Response): Identity {
  const id = res.locals.identity as Identity | undefined;
  if (!id) throw unauthorized();
  return id;
}

/**
 * The user a request acts for. A user token acts as its user; naming anyone else is 403. Hub and
 * admin tokens must name a user (`requested`), unless `fallback` is allowed to be undefined.
 */
export function actingUser(identity: Identity, requested: string | undefined): string | undefined {
  if (identity.kind === 'user') {
    if (requested !== undefined && requested !== identity.username) {
      throw forbidden(`this token belongs to '${identity.username}' and cannot act for '${requested}'`);
    }
    return identity.username;
  }
  return requested;
}
