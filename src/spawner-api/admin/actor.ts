/** The audit actor of an admin API request: 'admin-token' or 'oidc:<user>'. */
import type { Response } from 'express';
import type { AuditActor } from '../../admin';
import { identityOf } from '../auth/identity';

export function actorOf(res: Response): AuditActor {
  const id = identityOf(res);
  if (id.kind === 'admin' && id.username) return { actor: `oidc:${id.username}`, via: 'api' };
  return { actor: id.kind === 'admin' ? 'admin-token' : id.kind, via: 'api' };
}
