/**
 * Experiment memberships repository: 'sql' rows (administrators) and 'oidc' rows (the IdP group sync,
 * which only ever adds or removes its own).
 */
import type { Queryable } from '../types';

export interface MemberRecord {
  username: string;
  source: 'sql' | 'oidc';
  user_active: boolean;
  added_at: string;
}

export async function selectMembers(q: Queryable, experiment: string): Promise<MemberRecord[]> {
  const rows = await q.query<{ username: string; source: 'sql' | 'oidc'; user_active: boolean; added_at: Date | string }>(
    `SELECT u.username, m.source, u.active AS user_active, m.added_at
       FROM experiment_members m JOIN experiments e ON e.id = m.experiment_id JOIN users u ON u.id = m.user_id
      WHERE e.name = $1 ORDER BY u.username`,
    [experiment],
  );
  return rows.map((r) => ({ ...r, added_at: new Date(r.added_at).toISOString() }));
}

/** Adds an administrator-managed membership; a duplicate raises the primary-key violation. */
export async function insertMember(q: Queryable, experiment: string, username: string): Promise<void> {
  await q.query(
    `INSERT INTO experiment_members (experiment_id, user_id, source)
     SELECT e.id, u.id, 'sql' FROM experiments e, users u WHERE e.name = $1 AND u.username = $2`,
    [experiment, username],
  );
}

/** False when the user was not a member. */
export async function deleteMember(q: Queryable, experiment: string, username: string): Promise<boolean> {
  const rows = await q.query(
    `DELETE FROM experiment_members m USING experiments e, users u
      WHERE m.experiment_id = e.id AND m.user_id = u.id AND e.name = $1 AND u.username = $2 RETURNING m.user_id`,
    [experiment, username],
  );
  return rows.length > 0;
}

/**
 * Makes a user's 'oidc' memberships exactly `experiments` (those that exist); 'sql' rows are never
 * touched. Returns what was added and removed and which named experiments do not exist.
 */
export async function syncOidcMemberships(
  q: Queryable,
  username: string,
  experiments: readonly string[],
): Promise<{ added: string[]; removed: string[]; unknown: string[] }> {
  const desired = [...experiments];
  const added = await q.query<{ name: string }>(
    `INSERT INTO experiment_members (experiment_id, user_id, source)
     SELECT e.id, u.id, 'oidc' FROM experiments e JOIN users u ON u.username = $1
      WHERE e.name = ANY($2::text[])
     ON CONFLICT (experiment_id, user_id) DO NOTHING
     RETURNING (SELECT name FROM experiments WHERE id = experiment_id) AS name`,
    [username, desired],
  );
  const removed = await q.query<{ name: string }>(
    `DELETE FROM experiment_members m USING experiments e, users u
      WHERE m.experiment_id = e.id AND m.user_id = u.id AND u.username = $1
        AND m.source = 'oidc' AND NOT (e.name = ANY($2::text[]))
     RETURNING e.name`,
    [username, desired],
  );
  const known = await q.query<{ name: string }>('SELECT name FROM experiments WHERE name = ANY($1::text[])', [desired]);
  const knownNames = new Set(known.map((r) => r.name));
  return {
    added: added.map((r) => r.name).sort(),
    removed: removed.map((r) => r.name).sort(),
    unknown: desired.filter((d) => !knownNames.has(d)),
  };
}
