/**
 * `/api/admin/tokens`: list tokens (metadata only; the secret is never stored, so never shown) and
 * revoke one by id or all of a user's. Both revocations are audited (migration 007).
 */
import type { Request, Response, Router } from 'express';
import { getTokenModel, listTokenModels, revokeAllTokens, revokeTokenModel } from '../../admin';
import type { Db } from '../../db';
import { badRequest } from '../errors';
import { actorOf } from './actor';

function tokenId(req: Request): number {
  const id = Number(req.params.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw badRequest(`token id must be a positive integer, got '${String(req.params.id)}'`);
  return id;
}

export function addTokenRoutes(r: Router, db: Db): void {
  r.get('/tokens', async function listTokens(req: Request, res: Response) {
    res.json({ tokens: await listTokenModels(db, req.query) });
  });
  r.get('/tokens/:id', async function getToken(req: Request, res: Response) {
    res.json(await getTokenModel(db, tokenId(req)));
  });
  r.delete('/tokens/:id', async function revokeToken(req: Request, res: Response) {
    res.json(await revokeTokenModel(db, actorOf(res), tokenId(req)));
  });
  r.delete('/users/:username/tokens', async function revokeUserTokens(req: Request, res: Response) {
    res.json({ revoked: await revokeAllTokens(db, actorOf(res), String(req.params.username)) });
  });
}
