/** Environments: register (name → experiment), move to another experiment, unregister. */
import {
  deleteEnvironmentRow,
  experimentIdByName,
  insertEnvironment,
  moveEnvironment,
  selectEnvironment,
  selectEnvironments,
  withAuditActor,
  type AuditActor,
  type Db,
  type Queryable,
} from '../db';
import { AdminError, translatingDbErrors } from './errors';
import { environmentCreateSchema, environmentUpdateSchema, parseInput, type Environment } from './schemas';

export function listEnvironments(q: Queryable, opts: { experiment?: string } = {}): Promise<Environment[]> {
  return selectEnvironments(q, opts);
}

export async function getEnvironment(q: Queryable, name: string): Promise<Environment> {
  const row = await selectEnvironment(q, name);
  if (!row) throw new AdminError('not-found', `no environment named '${name}' is registered`);
  return row;
}

async function experimentId(q: Queryable, name: string): Promise<number> {
  const id = await experimentIdByName(q, name);
  if (id === undefined) throw new AdminError('not-found', `no experiment named '${name}'`);
  return id;
}

export async function createEnvironment(db: Db, who: AuditActor, input: unknown): Promise<Environment> {
  const v = parseInput(environmentCreateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await insertEnvironment(q, v.name, await experimentId(q, v.experiment));
      return getEnvironment(q, v.name);
    }),
  );
}

export async function updateEnvironment(db: Db, who: AuditActor, name: string, input: unknown): Promise<Environment> {
  const v = parseInput(environmentUpdateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      if (!(await moveEnvironment(q, name, await experimentId(q, v.experiment)))) {
        throw new AdminError('not-found', `no environment named '${name}' is registered`);
      }
      return getEnvironment(q, name);
    }),
  );
}

/** Unregisters: the environment then follows kernels.unregistered_environments (deny by default). */
export async function deleteEnvironment(db: Db, who: AuditActor, name: string): Promise<void> {
  await translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      if (!(await deleteEnvironmentRow(q, name))) throw new AdminError('not-found', `no environment named '${name}' is registered`);
    }),
  );
}
