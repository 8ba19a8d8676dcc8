/** Experiments repository: the rows behind the admin API's experiment operations (src/admin validates). */
import type { Queryable } from '../types';

export interface ExperimentRecord {
  name: string;
  cpu_request: number;
  cpu_limit: number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
  active: boolean;
  environments: string[];
  members: number;
}

export type ExperimentValues = Omit<ExperimentRecord, 'environments' | 'members'>;

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

function toRecord(r: Row): ExperimentRecord {
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

export async function selectExperiments(q: Queryable, opts: { includeInactive?: boolean } = {}): Promise<ExperimentRecord[]> {
  const rows = await q.query<Row>(`${SELECT} WHERE e.active OR $1 ORDER BY e.name`, [opts.includeInactive ?? true]);
  return rows.map(toRecord);
}

export async function selectExperiment(q: Queryable, name: string): Promise<ExperimentRecord | undefined> {
  const [row] = await q.query<Row>(`${SELECT} WHERE e.name = $1`, [name]);
  return row ? toRecord(row) : undefined;
}

export async function insertExperiment(q: Queryable, v: ExperimentValues): Promise<void> {
  await q.query(
    `INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit, active)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [v.name, v.cpu_request, v.cpu_limit, v.memory_request_mib, v.memory_limit_mib, v.gpu_limit, v.active],
  );
}

const UPDATABLE = ['name', 'cpu_request', 'cpu_limit', 'memory_request_mib', 'memory_limit_mib', 'gpu_limit', 'active'] as const;

/** Sets the given columns; false when no experiment has that name. */
export async function updateExperimentRow(q: Queryable, name: string, v: Partial<ExperimentValues>): Promise<boolean> {
  const columns = UPDATABLE.filter((c) => v[c] !== undefined);
  if (columns.length === 0) return (await q.query('SELECT 1 FROM experiments WHERE name = $1', [name])).length > 0;
  // Column names come from the fixed list above; only values are parameters.
  const sets = columns.map((c, i) => `${c} = $${i + 2}`).join(', ');
  const rows = await q.query(`UPDATE experiments SET ${sets} WHERE name = $1 RETURNING id`, [name, ...columns.map((c) => v[c])]);
  return rows.length > 0;
}

export async function experimentIdByName(q: Queryable, name: string): Promise<number | undefined> {
  const [row] = await q.query<{ id: string | number }>('SELECT id FROM experiments WHERE name = $1', [name]);
  return row ? Number(row.id) : undefined;
}
