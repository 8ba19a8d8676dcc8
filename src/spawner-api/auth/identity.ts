/**
 * Who is calling. The auth middleware (or the websocket upgrade) puts an `Identity` in
 * `res.locals.identity`; gateway routes decide what it may do with `actingUser`.
 */
import type { Response } from 'express';
import { forbidden, unauthorized } from '../errors';

export type Identity =
  /** The hub's token: may manage any user's servers, and nothing else. */
  | { kind: 'hub' }
  /** The admin/service token, or an OIDC token with the admin role (`username` set): may act for any user everywhere. */
  | { kind: 'admin'; username?: string; via?: 'oidc'; expiresAt?: Date }
  /**
   * A per-user gateway token or an OIDC token: acts as this user only. `expiresAt` (OIDC): when the
   * token stops being accepted, which also ends the websockets it opened.
   */
  | { kind: 'user'; username: string; serverId?: number; via?: 'oidc'; expiresAt?: Date };

export function identityOf(res: Response): Identity {
  const id = res.locals.identity as Identity | undefined;
  if (!id) throw unauthorized();
  return id;
}

/** Why the hub token gets nowhere on the gateway: the hub never needs a user's kernels. */
export const HUB_TOKEN_NOT_FOR_GATEWAY =
  "the hub token is for the hub's server routes (/api/users/…) only; reach kernels and kernelspecs with the user's gateway token or the admin token";

/**
 * The user a gateway request acts for. A user token acts as its user; naming anyone else is 403. The
 * admin token acts for whoever it names (`requested`, possibly nobody). The hub token is refused (403).
 */
export function actingUser(identity: Identity, requested: string | undefined): string | undefined {
  if (identity.kind === 'hub') throw forbidden(HUB_TOKEN_NOT_FOR_GATEWAY);
  if (identity.kind === 'user') {
    if (requested !== undefined && requested !== identity.username) {
      throw forbidden(`this token belongs to '${identity.username}' and cannot act for '${requested}'`);
    }
    return identity.username;
  }
  return requested;
}
