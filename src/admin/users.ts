/** Users: list, read (with memberships), create, update email/active, deactivate. */
import type { Db, Queryable } from '../db';
import { withAuditActor, type AuditActor } from './audit-context';
import { AdminError, translatingDbErrors } from './errors';
import { parseInput, userCreateSchema, userUpdateSchema, type User } from './schemas';

const SELECT = `SELECT u.username, u.email, u.active,
       COALESCE((SELECT json_agg(json_build_object('experiment', e.name, 'source', m.source) ORDER BY e.name)
                   FROM experiment_members m JOIN experiments e ON e.id = m.experiment_id WHERE m.user_id = u.id), '[]'::json) AS experiments
  FROM users u`;

export async function listUsers(q: Queryable, opts: { includeInactive?: boolean } = {}): Promise<User[]> {
  return q.query<User>(`${SELECT} WHERE u.active OR $1 ORDER BY u.username`, [opts.includeInactive ?? true]);
}

export async function getUser(q: Queryable, username: string): Promise<User> {
  const [row] = await q.query<User>(`${SELECT} WHERE u.username = $1`, [username]);
  if (!row) throw new AdminError('not-found', `no user named '${username}'`);
  return row;
}

export async function createUser(db: Db, who: AuditActor, input: unknown): Promise<User> {
  const v = parseInput(userCreateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await q.query('INSERT INTO users (username, email, active) VALUES ($1, $2, $3)', [v.username, v.email ?? null, v.active]);
      return getUser(q, v.username);
    }),
  );
}

export async function updateUser(db: Db, who: AuditActor, username: string, input: unknown): Promise<User> {
  const v = parseInput(userUpdateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      // COALESCE keeps what was not given; email: null clears it (distinguished by the $4 flag).
      const rows = await q.query(
        `UPDATE users SET email = CASE WHEN $4 THEN $2 ELSE email END, active = COALESCE($3, active)
          WHERE username = $1 RETURNING id`,
        [username, v.email ?? null, v.active ?? null, v.email !== undefined],
      );
      if (rows.length === 0) throw new AdminError('not-found', `no user named '${username}'`);
      return getUser(q, username);
    }),
  );
}

export function setUserActive(db: Db, who: AuditActor, username: string, active: boolean): Promise<User> {
  return updateUser(db, who, username, { active });
}
