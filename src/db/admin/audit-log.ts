/** Audit log repository (rows written by triggers, migrations 004 and 007): newest first, filtered, paged by id. */
import type { Queryable } from '../types';

export interface AuditFilter {
  actor?: string;
  /** Exact action, or a prefix ending in '.' ('experiments.' = every experiment change). */
  action?: string;
  target?: string;
  since?: string | Date;
  before_id?: number;
  limit: number;
}

export interface AuditRecord {
  id: number;
  created_at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
}

export async function selectAudit(q: Queryable, v: AuditFilter): Promise<AuditRecord[]> {
  const actionPrefix = v.action?.endsWith('.') ? v.action : null;
  const rows = await q.query<{ id: string | number; created_at: Date | string; actor: string; action: string; target: string | null; details: Record<string, unknown> }>(
    `SELECT id, created_at, actor, action, target, details FROM audit_log
      WHERE ($1::text IS NULL OR actor = $1)
        AND ($2::text IS NULL OR action = $2)
        AND ($3::text IS NULL OR starts_with(action, $3))
        AND ($4::text IS NULL OR target = $4)
        AND ($5::timestamptz IS NULL OR created_at >= $5)
        AND ($6::bigint IS NULL OR id < $6)
      ORDER BY id DESC
      LIMIT $7`,
    [v.actor ?? null, actionPrefix ? null : (v.action ?? null), actionPrefix, v.target ?? null, v.since ?? null, v.before_id ?? null, v.limit],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id), created_at: new Date(r.created_at).toISOString() }));
}
