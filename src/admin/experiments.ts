/** Experiments: list, read, create, update (limits, name, active), deactivate. Never deleted: kernels and the audit refer to them. */
import { insertExperiment, selectExperiment, selectExperiments, updateExperimentRow, withAuditActor, type AuditActor, type Db, type Queryable } from '../db';
import { AdminError, translatingDbErrors } from './errors';
import { experimentCreateSchema, experimentUpdateSchema, parseInput, type Experiment } from './schemas';

export function listExperiments(q: Queryable, opts: { includeInactive?: boolean } = {}): Promise<Experiment[]> {
  return selectExperiments(q, opts);
}

export async function getExperiment(q: Queryable, name: string): Promise<Experiment> {
  const row = await selectExperiment(q, name);
  if (!row) throw new AdminError('not-found', `no experiment named '${name}'`);
  return row;
}

export async function createExperiment(db: Db, who: AuditActor, input: unknown): Promise<Experiment> {
  const v = parseInput(experimentCreateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await insertExperiment(q, v);
      return getExperiment(q, v.name);
    }),
  );
}

export async function updateExperiment(db: Db, who: AuditActor, name: string, input: unknown): Promise<Experiment> {
  const v = parseInput(experimentUpdateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      if (!(await updateExperimentRow(q, name, v))) throw new AdminError('not-found', `no experiment named '${name}'`);
      return getExperiment(q, v.name ?? name);
    }),
  );
}

export function setExperimentActive(db: Db, who: AuditActor, name: string, active: boolean): Promise<Experiment> {
  return updateExperiment(db, who, name, { active });
}
