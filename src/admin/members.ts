/**
 * Experiment members. Members added here are administrator-managed (`source = 'sql'`, the same as plain
 * SQL): the IdP group sync never removes them. Removing works for either source; an 'oidc' member
 * removed by hand comes back on their next call if their groups still say so.
 */
import type { Db, Queryable } from '../db';
import { withAuditActor, type AuditActor } from './audit-context';
import { AdminError, translatingDbErrors } from './errors';
import { memberAddSchema, parseInput, type Member } from './schemas';

async function requireExperiment(q: Queryable, name: string): Promise<void> {
  const rows = await q.query('SELECT 1 FROM experiments WHERE name = $1', [name]);
  if (rows.length === 0) throw new AdminError('not-found', `no experiment named '${name}'`);
}

export async function listMembers(q: Queryable, experiment: string): Promise<Member[]> {
  await requireExperiment(q, experiment);
  const rows = await q.query<{ username: string; source: 'sql' | 'oidc'; user_active: boolean; added_at: Date | string }>(
    `SELECT u.username, m.source, u.active AS user_active, m.added_at
       FROM experiment_members m JOIN experiments e ON e.id = m.experiment_id JOIN users u ON u.id = m.user_id
      WHERE e.name = $1 ORDER BY u.username`,
    [experiment],
  );
  return rows.map((r) => ({ ...r, added_at: new Date(r.added_at).toISOString() }));
}

export async function addMember(db: Db, who: AuditActor, experiment: string, input: unknown): Promise<Member> {
  const v = parseInput(memberAddSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await requireExperiment(q, experiment);
      if (v.create_user) await q.query('INSERT INTO users (username) VALUES ($1) ON CONFLICT (username) DO NOTHING', [v.username]);
      const users = await q.query('SELECT 1 FROM users WHERE username = $1', [v.username]);
      if (users.length === 0) throw new AdminError('not-found', `no user named '${v.username}' (create the user first, or pass create_user)`);
      await q.query(
        `INSERT INTO experiment_members (experiment_id, user_id, source)
         SELECT e.id, u.id, 'sql' FROM experiments e, users u WHERE e.name = $1 AND u.username = $2`,
        [experiment, v.username],
      );
      const member = (await listMembers(q, experiment)).find((m) => m.username === v.username);
      return member!;
    }),
  );
}

export async function removeMember(db: Db, who: AuditActor, experiment: string, username: string): Promise<void> {
  await translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await requireExperiment(q, experiment);
      const rows = await q.query(
        `DELETE FROM experiment_members m USING experiments e, users u
          WHERE m.experiment_id = e.id AND m.user_id = u.id AND e.name = $1 AND u.username = $2 RETURNING m.user_id`,
        [experiment, username],
      );
      if (rows.length === 0) throw new AdminError('not-found', `'${username}' is not a member of '${experiment}'`);
    }),
  );
}
