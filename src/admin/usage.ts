/** Resources held by each experiment's live kernels, from the experiment_usage view (migration 004). */
import type { Queryable } from '../db';
import { AdminError } from './errors';
import type { Usage } from './schemas';

interface Row {
  experiment: string;
  active: boolean;
  kernels: number | string;
  cpu_request: number | string;
  cpu_limit: number | string;
  memory_request_mib: number | string;
  memory_limit_mib: number | string;
  gpu_limit: number | string;
}

// NUMERIC and BIGINT sums arrive as strings from pg.
const toModel = (r: Row): Usage => ({
  experiment: r.experiment,
  active: r.active,
  kernels: Number(r.kernels),
  cpu_request: Number(r.cpu_request),
  cpu_limit: Number(r.cpu_limit),
  memory_request_mib: Number(r.memory_request_mib),
  memory_limit_mib: Number(r.memory_limit_mib),
  gpu_limit: Number(r.gpu_limit),
});

export async function listUsage(q: Queryable): Promise<Usage[]> {
  return (await q.query<Row>('SELECT * FROM experiment_usage ORDER BY experiment')).map(toModel);
}

export async function getUsage(q: Queryable, experiment: string): Promise<Usage> {
  const [row] = await q.query<Row>('SELECT * FROM experiment_usage WHERE experiment = $1', [experiment]);
  if (!row) throw new AdminError('not-found', `no experiment named '${experiment}'`);
  return toModel(row);
}
