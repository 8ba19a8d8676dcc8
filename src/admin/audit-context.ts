/**
 * Admin changes are audited by database triggers (migration 004), so plain SQL is audited too. Code
 * that changes admin tables names who is acting through transaction-local settings the triggers read.
 */
import type { Db, Queryable } from '../db';

export interface AuditActor {
  /** Who: 'admin-token', 'oidc:<user>', 'cli:<os user>'. */
  actor: string;
  /** Through what: 'api', 'cli', 'group-sync'. */
  via: string;
}

export function withAuditActor<T>(db: Db, who: AuditActor, fn: (q: Queryable) => Promise<T>): Promise<T> {
  return db.tx(async (q) => {
    // set_config(…, true) lasts until the end of this transaction only, so pooled connections stay clean.
    await q.query("SELECT set_config('spawngate.actor', $1, true), set_config('spawngate.via', $2, true)", [who.actor, who.via]);
    return fn(q);
  });
}
