/**
 * Authentication middleware: who is calling (`authenticate`), what they may reach (`requireHub`,
 * `requireAdmin`), and the JSON body parser that only runs once the caller is known, so an
 * unauthenticated request is answered without its body being read.
 */
import type { IncomingMessage } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { isUserDeactivated, type Queryable } from '../../db';
import { forbidden, unauthorized } from '../errors';
import { identityOf } from './identity';
import { deactivatedMessage, headerToken, type IdentityResolver } from './resolve-identity';

/** Sets `res.locals.identity` when a token is presented; a token that does not hold is refused here. */
export function authenticate(resolve: IdentityResolver) {
  return async function authenticate(req: Request, res: Response, next: NextFunction): Promise<void> {
    const token = headerToken(req);
    if (token) res.locals.identity = await resolve(token);
    next();
  };
}

/** JSON media types, plus no Content-Type at all (Enterprise Gateway's client sends none). */
function isJsonRequest(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  return type === undefined || /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type);
}

/**
 * Parses JSON bodies of authenticated requests only. Without an identity the body stays unread and the
 * route's `identityOf` answers 401 (or the 404 handler answers, for unknown paths).
 */
export function parseJsonBodyOfAuthenticated(limit: string) {
  const parse = express.json({ limit, type: isJsonRequest });
  return function parseJsonBodyOfAuthenticated(req: Request, res: Response, next: NextFunction): void {
    if (!res.locals.identity) return next();
    parse(req, res, next);
  };
}

/** Only the hub or admin token may pass (server management). */
export function requireHub() {
  return function requireHub(_req: Request, res: Response, next: NextFunction): void {
    const id = identityOf(res);
    if (id.kind === 'user') throw forbidden('this endpoint needs the hub or admin token');
    next();
  };
}

/** Only admins: the static admin token or an OIDC admin. */
export function requireAdmin() {
  return function requireAdmin(_req: Request, res: Response, next: NextFunction): void {
    if (identityOf(res).kind !== 'admin') throw forbidden('the admin API needs the admin token or an OIDC token with the admin role');
    next();
  };
}

export function requireAuthenticated() {
  return function requireAuthenticated(_req: Request, res: Response, next: NextFunction): void {
    if (!res.locals.identity) throw unauthorized();
    next();
  };
}

/**
 * Refuses work for a deactivated user (403) whoever asks: the admin token naming them, or the hub
 * spawning their server. Read from the database each time, like the token check.
 */
export async function refuseDeactivated(db: Queryable, username: string | undefined): Promise<void> {
  if (username !== undefined && (await isUserDeactivated(db, username))) throw forbidden(deactivatedMessage(username));
}
