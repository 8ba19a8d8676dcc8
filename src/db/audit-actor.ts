/**
 * Who is acting, for the audit triggers (migrations 004 and 007): code that changes audited tables runs
 * inside `withAuditActor`, which names the actor in transaction-local settings the triggers read.
 */
import type { Db, Queryable } from './types';

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
