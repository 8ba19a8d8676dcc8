/** Users: list, read (with memberships), create, update email/active, deactivate. */
import { insertUser, selectUser, selectUsers, updateUserRow, withAuditActor, type AuditActor, type Db, type Queryable } from '../db';
import { AdminError, translatingDbErrors } from './errors';
import { parseInput, userCreateSchema, userUpdateSchema, type User } from './schemas';

export function listUsers(q: Queryable, opts: { includeInactive?: boolean } = {}): Promise<User[]> {
  return selectUsers(q, opts);
}

export async function getUser(q: Queryable, username: string): Promise<User> {
  const row = await selectUser(q, username);
  if (!row) throw new AdminError('not-found', `no user named '${username}'`);
  return row;
}

export async function createUser(db: Db, who: AuditActor, input: unknown): Promise<User> {
  const v = parseInput(userCreateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await insertUser(q, v);
      return getUser(q, v.username);
    }),
  );
}

export async function updateUser(db: Db, who: AuditActor, username: string, input: unknown): Promise<User> {
  const v = parseInput(userUpdateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      if (!(await updateUserRow(q, username, v))) throw new AdminError('not-found', `no user named '${username}'`);
      return getUser(q, username);
    }),
  );
}

export function setUserActive(db: Db, who: AuditActor, username: string, active: boolean): Promise<User> {
  return updateUser(db, who, username, { active });
}
