/** Experiments: list, read, create, update (limits, name, active), deactivate. Never deleted: kernels and the audit refer to them. */
import type { Db, Queryable } from '../db';
import { withAuditActor, type AuditActor } from './audit-context';
import { AdminError, translatingDbErrors } from './errors';
import { experimentCreateSchema, experimentUpdateSchema, parseInput, type Experiment } from './schemas';

interface Row {
  name: string;
  cpu_request: string | number;
  cpu_limit: string | number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
  active: boolean;
  environments: string[] | null;
  members: string | number;
}

const SELECT = `
SELECT e.name, e.cpu_request, e.cpu_limit, e.memory_request_mib, e.memory_limit_mib, e.gpu_limit, e.active,
       COALESCE((SELECT array_agg(env.name ORDER BY env.name) FROM environments env WHERE env.experiment_id = e.id), '{}') AS environments,
       (SELECT count(*) FROM experiment_members m WHERE m.experiment_id = e.id) AS members
  FROM experiments e`;

function toModel(r: Row): Experiment {
  return {
    name: r.name,
    cpu_request: Number(r.cpu_request), // NUMERIC arrives as a string from pg
    cpu_limit: Number(r.cpu_limit),
    memory_request_mib: Number(r.memory_request_mib),
    memory_limit_mib: Number(r.memory_limit_mib),
    gpu_limit: Number(r.gpu_limit),
    active: r.active,
    environments: r.environments ?? [],
    members: Number(r.members),
  };
}

export async function listExperiments(q: Queryable, opts: { includeInactive?: boolean } = {}): Promise<Experiment[]> {
  const rows = await q.query<Row>(`${SELECT} WHERE e.active OR $1 ORDER BY e.name`, [opts.includeInactive ?? true]);
  return rows.map(toModel);
}

export async function getExperiment(q: Queryable, name: string): Promise<Experiment> {
  const [row] = await q.query<Row>(`${SELECT} WHERE e.name = $1`, [name]);
  if (!row) throw new AdminError('not-found', `no experiment named '${name}'`);
  return toModel(row);
}

export async function createExperiment(db: Db, who: AuditActor, input: unknown): Promise<Experiment> {
  const v = parseInput(experimentCreateSchema, input);
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      await q.query(
        `INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [v.name, v.cpu_request, v.cpu_limit, v.memory_request_mib, v.memory_limit_mib, v.gpu_limit, v.active],
      );
      return getExperiment(q, v.name);
    }),
  );
}

const UPDATABLE = ['name', 'cpu_request', 'cpu_limit', 'memory_request_mib', 'memory_limit_mib', 'gpu_limit', 'active'] as const;

export async function updateExperiment(db: Db, who: AuditActor, name: string, input: unknown): Promise<Experiment> {
  const v = parseInput(experimentUpdateSchema, input);
  const columns = UPDATABLE.filter((c) => v[c] !== undefined);
  // Column names come from the fixed list above; only values are parameters.
  const sets = columns.map((c, i) => `${c} = $${i + 2}`).join(', ');
  return translatingDbErrors(() =>
    withAuditActor(db, who, async (q) => {
      const rows = await q.query(`UPDATE experiments SET ${sets} WHERE name = $1 RETURNING id`, [name, ...columns.map((c) => v[c])]);
      if (rows.length === 0) throw new AdminError('not-found', `no experiment named '${name}'`);
      return getExperiment(q, v.name ?? name);
    }),
  );
}

export function setExperimentActive(db: Db, who: AuditActor, name: string, active: boolean): Promise<Experiment> {
  return updateExperiment(db, who, name, { active });
}
