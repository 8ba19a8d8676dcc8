/** Environments: register (name → experiment), move to another experiment, unregister. */
import type { Db, Queryable } from '../db';
import { withAuditActor, type AuditActor } from './audit-context';
import { AdminError, translatingDbErrors } from './errors';
import { environmentCreateSchema, environmentUpdateSchema, parseInput, type Environment } from './schemas';

const SELECT = `SELECT env.name, e.name AS experiment, e.active AS experiment_active
  FROM environments env JOIN experiments e ON e.id = env.experiment_id`;

export async function listEnvironments(q: Queryable, opts: { experiment?: string } = {}): Promise<Environment[]> {
  return q.query<Environment>(`${SELECT} WHERE $1::text IS NULL OR e.name = $1 ORDER BY env.name`, [opts.experiment ?? null]);
}

export async function getEnvironment(q: Queryable, name: string): Promise<Environment> {
  const [row] = await q.query<Environment>(`${SELECT} WHERE env.name = $1`, [name]);
  if (!row) throw new AdminError('not-found', `no environment named '${name}' is registered`);
  return row;
}

async function experimentId(q: Queryable, name: string): Promise<number> {
  const [row] = await q.query<{ id: string | number }>('SELECT id FROM experiments WHERE name = $1', [name]);
  if (!row) throw new AdminError('not-found', `no experiment named '${name}'`);
  return Number(row.id);
}

export async function createEnvironment(db: Db, who: AuditActor, input: unknown): Promise<Environment> {
  const v = parseInput(environmentCreateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await q.query('INSERT INTO environments (name, experiment_id) VALUES ($1, $2)', [v.name, await experimentId(q, v.experiment)]);
      return getEnvironment(q, v.name);
    }),
  );
}

export async function updateEnvironment(db: Db, who: AuditActor, name: string, input: unknown): Promise<Environment> {
  const v = parseInput(environmentUpdateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      const rows = await q.query('UPDATE environments SET experiment_id = $2 WHERE name = $1 RETURNING id', [name, await experimentId(q, v.experiment)]);
      if (rows.length === 0) throw new AdminError('not-found', `no environment named '${name}' is registered`);
      return getEnvironment(q, name);
    }),
  );
}

/** Unregisters: the environment then follows kernels.unregistered_environments (deny by default). */
export async function deleteEnvironment(db: Db, who: AuditActor, name: string): Promise<void> {
  await translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      const rows = await q.query('DELETE FROM environments WHERE name = $1 RETURNING id', [name]);
      if (rows.length === 0) throw new AdminError('not-found', `no environment named '${name}' is registered`);
    }),
  );
}
