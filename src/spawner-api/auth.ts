/**
 * Token authentication. `Authorization: token <t>` (or `Bearer <t>`) is compared in constant time with
 * the hub and admin tokens, else looked up (by hash) among per-user gateway tokens.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Db } from '../db';
import { TOKEN_PREFIX, verifyToken } from '../db';
import { IdentityProviderUnavailableError, TokenRejectedError, UserDeactivatedError, type OidcIdentity } from '../identity';
import { forbidden, unauthorized, unavailable } from './errors';
import { identityOf, type Identity } from './identity';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function sameSecret(given: Buffer, configured: string | undefined): boolean {
  return configured !== undefined && timingSafeEqual(given, digest(configured));
}

export function tokenFrom(req: Request): string | undefined {
  const header = req.get('authorization');
  if (header) {
    const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
  return undefined;
}

export function authenticate(opts: { hubToken?: string; adminToken?: string; db: Db; oidc?: Pick<OidcIdentity, 'authenticate'> }) {
  return async function authenticate(req: Request, res: Response, next: NextFunction): Promise<void> {
    const token = tokenFrom(req);
    if (!token) return next();
    const given = digest(token);
    let identity: Identity | undefined;
    if (sameSecret(given, opts.adminToken)) identity = { kind: 'admin' };
    else if (sameSecret(given, opts.hubToken)) identity = { kind: 'hub' };
    else if (token.length <= 256) {
      const found = await verifyToken(opts.db, token);
      if (found) identity = { kind: 'user', username: found.username, serverId: found.serverId ?? undefined };
    }
    if (!identity && opts.oidc && !token.startsWith(TOKEN_PREFIX)) identity = await oidcIdentity(opts.oidc, token);
    if (!identity) throw unauthorized('invalid token');
    res.locals.identity = identity;
    next();
  };
}

/** An OIDC bearer token as an identity: 401 (bad token), 403 (user deactivated) or 503 (IdP unreachable). */
async function oidcIdentity(oidc: Pick<OidcIdentity, 'authenticate'>, token: string): Promise<Identity> {
  try {
    const p = await oidc.authenticate(token);
    return p.admin ? { kind: 'admin', username: p.username, via: 'oidc' } : { kind: 'user', username: p.username, via: 'oidc' };
  } catch (err) {
    if (err instanceof TokenRejectedError) throw unauthorized(`invalid token: ${err.message}`);
    if (err instanceof IdentityProviderUnavailableError) throw unavailable(err.message, err);
    if (err instanceof UserDeactivatedError) throw forbidden(err.message);
    throw err;
  }
}

/** Only the hub or admin token may pass (server management). */
export function requireHub() {
  return function requireHub(_req: Request, res: Response, next: NextFunction): void {
    const id = identityOf(res);
    if (id.kind === 'user') throw forbidden('this endpoint needs the hub or admin token');
    next();
  };
}

export function requireAuthenticated() {
  return function requireAuthenticated(_req: Request, res: Response, next: NextFunction): void {
    identityOf(res);
    next();
  };
}
