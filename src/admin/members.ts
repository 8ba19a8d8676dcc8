/**
 * Experiment members. Members added here are administrator-managed (`source = 'sql'`, the same as plain
 * SQL): the IdP group sync never removes them. Removing works for either source; an 'oidc' member
 * removed by hand comes back on their next call if their groups still say so.
 */
import { deleteMember, ensureUser, experimentIdByName, insertMember, selectMembers, userExists, withAuditActor, type AuditActor, type Db, type Queryable } from '../db';
import { AdminError, translatingDbErrors } from './errors';
import { memberAddSchema, parseInput, type Member } from './schemas';

async function requireExperiment(q: Queryable, name: string): Promise<void> {
  if ((await experimentIdByName(q, name)) === undefined) throw new AdminError('not-found', `no experiment named '${name}'`);
}

export async function listMembers(q: Queryable, experiment: string): Promise<Member[]> {
  await requireExperiment(q, experiment);
  return selectMembers(q, experiment);
}

export async function addMember(db: Db, who: AuditActor, experiment: string, input: unknown): Promise<Member> {
  const v = parseInput(memberAddSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await requireExperiment(q, experiment);
      if (v.create_user) await ensureUser(q, v.username);
      if (!(await userExists(q, v.username))) throw new AdminError('not-found', `no user named '${v.username}' (create the user first, or pass create_user)`);
      await insertMember(q, experiment, v.username);
      const member = (await selectMembers(q, experiment)).find((m) => m.username === v.username);
      return member!;
    }),
  );
}

export async function removeMember(db: Db, who: AuditActor, experiment: string, username: string): Promise<void> {
  await translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await requireExperiment(q, experiment);
      if (!(await deleteMember(q, experiment, username))) throw new AdminError('not-found', `'${username}' is not a member of '${experiment}'`);
    }),
  );
}
