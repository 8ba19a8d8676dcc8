/** Rows the admin tests need that only the gateway would normally write. */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../src/db';

/** A kernel row of `experiment` in `state` holding `limits`, as the gateway records a launch. */
export async function insertKernel(q: Queryable, o: { experiment: string; username: string; state: string; limits: Record<string, number> }): Promise<string> {
  const id = randomUUID();
  await q.query(
    `INSERT INTO kernels (id, username, kernel_name, environment, experiment_id, experiment_name, limits, backend, workload_name, state, ports, key_ciphertext)
     SELECT $1, $2, 'python3', 'tf', e.id, e.name, $4, 'local', $5, $6, '{}', 'x' FROM experiments e WHERE e.name = $3`,
    [id, o.username, o.experiment, JSON.stringify(o.limits), `sg-krn-${id}`, o.state],
  );
  return id;
}
