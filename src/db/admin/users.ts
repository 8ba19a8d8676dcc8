/** Users repository: the `users` table, memberships shown with each user, and the active flag. */
import type { Queryable } from '../types';

export interface UserRecord {
  username: string;
  email: string | null;
  active: boolean;
  experiments: Array<{ experiment: string; source: 'sql' | 'oidc' }>;
}

const SELECT = `SELECT u.username, u.email, u.active,
       COALESCE((SELECT json_agg(json_build_object('experiment', e.name, 'source', m.source) ORDER BY e.name)
                   FROM experiment_members m JOIN experiments e ON e.id = m.experiment_id WHERE m.user_id = u.id), '[]'::json) AS experiments
  FROM users u`;

export function selectUsers(q: Queryable, opts: { includeInactive?: boolean } = {}): Promise<UserRecord[]> {
  return q.query<UserRecord>(`${SELECT} WHERE u.active OR $1 ORDER BY u.username`, [opts.includeInactive ?? true]);
}

export async function selectUser(q: Queryable, username: string): Promise<UserRecord | undefined> {
  const [row] = await q.query<UserRecord>(`${SELECT} WHERE u.username = $1`, [username]);
  return row;
}

export async function insertUser(q: Queryable, v: { username: string; email?: string | null; active: boolean }): Promise<void> {
  await q.query('INSERT INTO users (username, email, active) VALUES ($1, $2, $3)', [v.username, v.email ?? null, v.active]);
}

/** Creates the user unless they exist. */
export async function ensureUser(q: Queryable, username: string): Promise<void> {
  await q.query('INSERT INTO users (username) VALUES ($1) ON CONFLICT (username) DO NOTHING', [username]);
}

export async function userExists(q: Queryable, username: string): Promise<boolean> {
  return (await q.query('SELECT 1 FROM users WHERE username = $1', [username])).length > 0;
}

/**
 * Changes email (when `email` is not undefined; null clears it) and/or active (when not undefined).
 * False when no user has that name.
 */
export async function updateUserRow(q: Queryable, username: string, v: { email?: string | null; active?: boolean }): Promise<boolean> {
  const rows = await q.query(
    `UPDATE users SET email = CASE WHEN $4 THEN $2 ELSE email END, active = COALESCE($3, active)
      WHERE username = $1 RETURNING id`,
    [username, v.email ?? null, v.active ?? null, v.email !== undefined],
  );
  return rows.length > 0;
}

/**
 * Whether an administrator deactivated this user (`users.active = false`). A user with no row is not
 * deactivated. Read on every call, so a change by plain SQL applies to the next request.
 */
export async function isUserDeactivated(q: Queryable, username: string): Promise<boolean> {
  const [row] = await q.query<{ active: boolean }>('SELECT active FROM users WHERE username = $1', [username]);
  return row !== undefined && row.active === false;
}
