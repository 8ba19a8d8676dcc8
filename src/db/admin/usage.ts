/** Usage repository: resources held by each experiment's live kernels (view experiment_usage, migration 004). */
import type { Queryable } from '../types';

/** What live kernels hold: their number and the sums of their requests and limits. */
export interface ReservedResources {
  kernels: number;
  cpu_request: number;
  cpu_limit: number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
}

export interface UsageRecord extends ReservedResources {
  experiment: string;
  active: boolean;
}

type Row = { [K in keyof UsageRecord]: UsageRecord[K] extends number ? number | string : UsageRecord[K] };

// NUMERIC and BIGINT sums arrive as strings from pg.
const toRecord = (r: Row): UsageRecord => ({
  experiment: r.experiment,
  active: r.active,
  kernels: Number(r.kernels),
  cpu_request: Number(r.cpu_request),
  cpu_limit: Number(r.cpu_limit),
  memory_request_mib: Number(r.memory_request_mib),
  memory_limit_mib: Number(r.memory_limit_mib),
  gpu_limit: Number(r.gpu_limit),
});

export async function selectUsage(q: Queryable): Promise<UsageRecord[]> {
  return (await q.query<Row>('SELECT * FROM experiment_usage ORDER BY experiment')).map(toRecord);
}

export async function selectExperimentUsage(q: Queryable, experiment: string): Promise<UsageRecord | undefined> {
  const [row] = await q.query<Row>('SELECT * FROM experiment_usage WHERE experiment = $1', [experiment]);
  return row ? toRecord(row) : undefined;
}
