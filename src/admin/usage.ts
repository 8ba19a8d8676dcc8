/** Resources held by each experiment's live kernels. */
import { selectExperimentUsage, selectUsage, type Queryable } from '../db';
import { AdminError } from './errors';
import type { Usage } from './schemas';

export function listUsage(q: Queryable): Promise<Usage[]> {
  return selectUsage(q);
}

export async function getUsage(q: Queryable, experiment: string): Promise<Usage> {
  const row = await selectExperimentUsage(q, experiment);
  if (!row) throw new AdminError('not-found', `no experiment named '${experiment}'`);
  return row;
}
